package middleware

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/rules"

	"golang.org/x/crypto/bcrypt"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestParseBasicAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in   string
		user, pass string
		ok         bool
	}{
		{name: "plain", in: basic("alice", "s3cret"), user: "alice", pass: "s3cret", ok: true},
		{name: "scheme case", in: "bAsIc " + base64.StdEncoding.EncodeToString([]byte("a:b")), user: "a", pass: "b", ok: true},
		{name: "colon in password", in: basic("a", "b:c:d"), user: "a", pass: "b:c:d", ok: true},
		{name: "empty password", in: basic("a", ""), user: "a", pass: "", ok: true},
		{name: "unpadded", in: "Basic " + base64.RawStdEncoding.EncodeToString([]byte("ab:c")), user: "ab", pass: "c", ok: true},
		{name: "extra spaces", in: "Basic   " + base64.StdEncoding.EncodeToString([]byte("a:b")) + " ", user: "a", pass: "b", ok: true},
		{name: "utf-8", in: basic("jörg", "pässwörd"), user: "jörg", pass: "pässwörd", ok: true},
		{name: "empty user", in: basic("", "x")},
		{name: "no colon", in: "Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))},
		{name: "bad base64", in: "Basic !!!"},
		{name: "bearer", in: "Bearer abc"},
		{name: "no value", in: "Basic"},
		{name: "empty", in: ""},
		{name: "too long", in: basic("a", strings.Repeat("x", 5000))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user, pass, ok := ParseBasicAuth(tc.in)
			if user != tc.user || pass != tc.pass || ok != tc.ok {
				t.Errorf("ParseBasicAuth(%q) = %q, %q, %v, want %q, %q, %v", tc.in, user, pass, ok, tc.user, tc.pass, tc.ok)
			}
		})
	}
}

// FuzzParseBasicAuth: never panics; a parsed credential has a user, and
// encoding it again parses to the same credential.
func FuzzParseBasicAuth(f *testing.F) {
	// Well-formed values, odd schemes and spacing, bad base64, no colon,
	// empty user and very long values.
	for _, s := range []string{basic("alice", "pw"), "basic YTpi", "Basic  YTpi ", "Bearer x", "Basic !!",
		"Basic YWxpY2U=", "Basic Ojo=", basic("a", strings.Repeat("p", 4000)), "Basic\tYTpi"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		user, pass, ok := ParseBasicAuth(v)
		if !ok {
			if user != "" || pass != "" {
				t.Fatalf("ParseBasicAuth(%q) = %q, %q, false, want empty values", v, user, pass)
			}
			return
		}
		if user == "" || strings.Contains(user, ":") {
			t.Fatalf("ParseBasicAuth(%q) user = %q", v, user)
		}
		u2, p2, ok2 := ParseBasicAuth(basic(user, pass))
		if len(basic(user, pass)) <= maxAuthHeader && (!ok2 || u2 != user || p2 != pass) {
			t.Fatalf("round trip of %q:%q = %q, %q, %v", user, pass, u2, p2, ok2)
		}
	})
}

// writeHtpasswd writes a bcrypt (cost 4, for speed) htpasswd file.
func writeHtpasswd(t testing.TB, path string, users ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# test users\n")
	for i := 0; i+1 < len(users); i += 2 {
		h, err := bcrypt.GenerateFromPassword([]byte(users[i+1]), 4)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(users[i] + ":" + string(h) + "\n")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestCredentialsCacheAndRefresh(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	writeHtpasswd(t, path, "alice", "wonderland", "bob", "builder")
	c, err := NewCredentials(CredentialsConfig{Path: path, CacheTTL: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	check := func(user, pass string, want bool) {
		t.Helper()
		if got, err := c.Check(ctx, user, pass); got != want || err != nil {
			t.Errorf("Check(%q, %q) = %v, %v, want %v", user, pass, got, err, want)
		}
	}
	check("alice", "wonderland", true)
	if c.cache.Len() != 1 {
		t.Errorf("cache holds %d entries after one good login, want 1", c.cache.Len())
	}
	check("alice", "wonderland", true) // from the cache
	check("alice", "wrong", false)
	check("mallory", "wonderland", false)
	if c.cache.Len() != 1 {
		t.Errorf("cache holds %d entries after failed logins, want still 1", c.cache.Len())
	}

	// Expired entries are verified again, and re-cached.
	now = now.Add(2 * time.Minute)
	check("alice", "wonderland", true)

	// A changed password: the old one no longer works, even cached.
	writeHtpasswd(t, path, "alice", "looking-glass", "bob", "builder")
	if loaded, err := c.Refresh(); !loaded || err != nil {
		t.Fatalf("Refresh() = %v, %v, want a reload", loaded, err)
	}
	check("alice", "wonderland", false)
	check("alice", "looking-glass", true)
	if loaded, err := c.Refresh(); loaded || err != nil {
		t.Errorf("Refresh() of an unchanged file = %v, %v, want nothing loaded", loaded, err)
	}

	// A broken file keeps the previous users.
	if err := os.WriteFile(path, []byte("alice:\nthis is not htpasswd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(); err == nil {
		t.Error("Refresh() of a broken file = nil error")
	}
	check("bob", "builder", true)
}

func TestCredentialsWaitHonoursContext(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	writeHtpasswd(t, path, "alice", "pw")
	c, err := NewCredentials(CredentialsConfig{Path: path, MaxConcurrent: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.sem <- struct{}{} // every slot busy
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, err := c.Check(ctx, "alice", "pw"); ok || err == nil {
		t.Errorf("Check with all slots busy and a cancelled context = %v, %v, want an error", ok, err)
	}
}

func TestBasicAuthMiddleware(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	writeHtpasswd(t, path, "alice", "wonderland")
	creds, err := NewCredentials(CredentialsConfig{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jails := newTestJails(t)
	mw, err := BasicAuth(BasicAuthConfig{Realm: "Staging", Paths: []string{"/admin"}}, creds, jails, nil)
	if err != nil {
		t.Fatal(err)
	}
	var upstream atomic.Pointer[http.Request]
	ip, _ := ClientIP(ClientIPConfig{})
	h := WithScope(ip(CanonicalPath(nil)(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstream.Store(r)
		if u := ScopeFrom(r).User; u != r.Header.Get("X-Forwarded-User") {
			t.Errorf("scope user %q != header %q", u, r.Header.Get("X-Forwarded-User"))
		}
	})))))
	tests := []struct {
		name       string
		path       string
		auth       []string
		spoofUser  string
		wantStatus int
		wantUser   string // X-Forwarded-User at the upstream
		offence    bool
	}{
		{name: "unprotected path passes, spoofed user removed", path: "/public", spoofUser: "root", wantStatus: 200},
		{name: "no credentials", path: "/admin/x", wantStatus: 401},
		{name: "bypass with double slash", path: "//admin", wantStatus: 401},
		{name: "bypass with encoding", path: "/%61dmin", wantStatus: 401},
		{name: "bypass with trailing dot", path: "/admin./x", wantStatus: 401},
		{name: "bypass with params", path: "/admin;x/", wantStatus: 401},
		{name: "wrong password", path: "/admin", auth: []string{basic("alice", "nope")}, wantStatus: 401, offence: true},
		{name: "unknown user", path: "/admin", auth: []string{basic("eve", "wonderland")}, wantStatus: 401, offence: true},
		{name: "malformed", path: "/admin", auth: []string{"Basic ###"}, wantStatus: 401},
		{name: "two authorization headers", path: "/admin", auth: []string{basic("alice", "wonderland"), basic("eve", "x")}, wantStatus: 400},
		{name: "good login", path: "/admin", auth: []string{basic("alice", "wonderland")}, spoofUser: "root", wantStatus: 200, wantUser: "alice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			upstream.Store(nil)
			before := jails.Offences(rules.JailAuth)
			r := httptest.NewRequest("GET", "http://staging.example.com"+tc.path, nil)
			r.Header["Authorization"] = tc.auth
			if tc.spoofUser != "" {
				r.Header.Set("X-Forwarded-User", tc.spoofUser)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantStatus {
				t.Fatalf("%s %v: status %d, want %d", tc.path, tc.auth, w.Code, tc.wantStatus)
			}
			if tc.wantStatus == 401 {
				if got, want := w.Header().Get("WWW-Authenticate"), `Basic realm="Staging", charset="UTF-8"`; got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
			}
			if got := jails.Offences(rules.JailAuth) - before; got != map[bool]uint64{true: 1}[tc.offence] {
				t.Errorf("offences reported = %d, want %v", got, tc.offence)
			}
			up := upstream.Load()
			if (up != nil) != (tc.wantStatus == 200) {
				t.Fatalf("upstream reached = %v, want %v", up != nil, tc.wantStatus == 200)
			}
			if up == nil {
				return
			}
			if got := up.Header.Get("X-Forwarded-User"); got != tc.wantUser {
				t.Errorf("upstream X-Forwarded-User = %q, want %q", got, tc.wantUser)
			}
			if tc.wantUser != "" && up.Header.Get("Authorization") != "" {
				t.Error("upstream received the Authorization header")
			}
		})
	}
}

func BenchmarkBasicAuthCached(b *testing.B) {
	path := filepath.Join(b.TempDir(), "users")
	h, err := bcrypt.GenerateFromPassword([]byte("wonderland"), 10)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("alice:"+string(h)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	creds, err := NewCredentials(CredentialsConfig{Path: path}, nil)
	if err != nil {
		b.Fatal(err)
	}
	mw, err := BasicAuth(BasicAuthConfig{}, creds, newTestJails(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	handler := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(&scopeCtx{Context: r.Context()})
	auth := []string{basic("alice", "wonderland")}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r.Header["Authorization"] = auth
		handler.ServeHTTP(w, r)
	}
}
