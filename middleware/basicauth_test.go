package middleware

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/middleware/htpasswd"
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
		{name: "several spaces after the scheme", in: "Basic   " + base64.StdEncoding.EncodeToString([]byte("a:b")), user: "a", pass: "b", ok: true},
		// only the canonical encoding is a credential.
		{name: "unpadded", in: "Basic " + base64.RawStdEncoding.EncodeToString([]byte("ab:c"))},
		{name: "trailing space", in: "Basic " + base64.StdEncoding.EncodeToString([]byte("a:b")) + " "},
		{name: "stray byte after padding", in: basic("ab", "c") + "x"},
		{name: "stray padding", in: basic("a", "b") + "="},
		{name: "space inside", in: "Basic YWxp Y2U6cHc="},
		{name: "line break inside", in: "Basic YWxp\r\nY2U6cHc="},
		{name: "LF inside", in: "Basic YWxpY2U6\ncHc="},
		{name: "URL alphabet", in: "Basic " + base64.URLEncoding.EncodeToString([]byte("a:~~~"))},
		{name: "standard alphabet of the same", in: "Basic " + base64.StdEncoding.EncodeToString([]byte("a:~~~")), user: "a", pass: "~~~", ok: true},
		{name: "non-zero padding bits", in: "Basic YTpiYx=="},
		{name: "tab after the scheme", in: "Basic\t" + base64.StdEncoding.EncodeToString([]byte("a:b"))},
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
	// Non-canonical encodings: unpadded, URL alphabet, stray
	// bytes, split by whitespace or line breaks, non-zero padding bits.
	for _, s := range []string{"Basic YTpi", "Basic YTpiYw", "Basic YTpiYw==x", "Basic YT pi", "Basic YT\r\npi",
		"Basic YTp-fn4=", "Basic YTpiYx==", "Basic YTpiYw== "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		user, pass, ok := ParseBasicAuth(v)
		// Canonical: an accepted value is the scheme, spaces and exactly
		// the standard padded encoding of what it decoded to.
		if ok {
			tok := strings.TrimLeft(v[len("basic"):], " ")
			if tok != base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) {
				t.Fatalf("ParseBasicAuth(%q) accepted a non-canonical encoding of %q:%q", v, user, pass)
			}
		}
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
	writeHtpasswd(t, path, "alice", "wonderland", "nopw", "")
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
		{name: "malformed", path: "/admin", auth: []string{"Basic ###"}, wantStatus: 401, offence: true},
		{name: "another scheme: no offence", path: "/admin", auth: []string{"Bearer abc"}, wantStatus: 401},
		{name: "good login unpadded", path: "/admin", auth: []string{strings.TrimRight(basic("alice", "wonderland"), "=")}, wantStatus: 401, offence: true},
		{name: "good login with a stray byte", path: "/admin", auth: []string{basic("alice", "wonderland") + "A"}, wantStatus: 401, offence: true},
		{name: "login in URL alphabet", path: "/admin", auth: []string{"Basic " + base64.URLEncoding.EncodeToString([]byte("alice:~~~"))}, wantStatus: 401, offence: true},
		{name: "empty password of an empty-password entry", path: "/admin", auth: []string{basic("nopw", "")}, wantStatus: 401, offence: true},
		{name: "empty password", path: "/admin", auth: []string{basic("alice", "")}, wantStatus: 401, offence: true},
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

// TestCredentialsEmptyPasswordWarning pins the load-time warning:
// each entry made from the empty password is logged once per load at
// warn, with file, line and user and never the hash; a reload re-warns
// without re-hashing an unchanged line, and Check refuses the empty
// password.
func TestCredentialsEmptyPasswordWarning(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	writeHtpasswd(t, path, "alice", "wonderland", "nopw", "", "bob", "builder")
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := NewCredentials(CredentialsConfig{Path: path}, log)
	if err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if n := strings.Count(out, "empty password"); n != 1 {
		t.Fatalf("log after load:\n%s\nwant one empty-password warning", out)
	}
	for _, want := range []string{"level=WARN", "path=" + path, "line=3", "user=nopw"} {
		if !strings.Contains(out, want) {
			t.Errorf("warning %q lacks %q", out, want)
		}
	}
	if f := c.users.Load(); f != nil {
		e, _ := f.Lookup("nopw")
		if strings.Contains(out, e.Hash) || strings.Contains(out, "alice") || strings.Contains(out, "bob") {
			t.Errorf("warning %q names the hash or other users", out)
		}
	}
	if ok, err := c.Check(context.Background(), "nopw", ""); ok || err != nil {
		t.Errorf("Check(nopw, \"\") = %v, %v, want false", ok, err)
	}
	if len(c.empty) != 3 {
		t.Errorf("verdicts remembered for %d hashes, want 3", len(c.empty))
	}
}

// TestCredentialsSlowHashes: a store refuses a file with a slow hash
// unless AllowSlowHashes, and a refresh to such a file keeps
// the previous users.
func TestCredentialsSlowHashes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	const slow = "slow:$2y$18$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW\n"
	if err := os.WriteFile(path, []byte(slow), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCredentials(CredentialsConfig{Path: path}, nil); !errors.Is(err, htpasswd.ErrSlowHash) || !strings.Contains(err.Error(), path+":1:") {
		t.Errorf("NewCredentials(cost-18 file) = %v, want ErrSlowHash at %s:1", err, path)
	}

	writeHtpasswd(t, path, "alice", "wonderland")
	c, err := NewCredentials(CredentialsConfig{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// alice's cost-4 entry stays, so the unknown-user dummy (never slow,
	// but at cost 17 with only slow users) is cheap to compute.
	grown, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	grown = append(grown, slow...)
	if err := os.WriteFile(path, grown, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCredentials(CredentialsConfig{Path: path, AllowSlowHashes: true}, nil); err != nil {
		t.Errorf("NewCredentials(file with a cost-18 entry, AllowSlowHashes) = %v", err)
	}
	if _, err := c.Refresh(); !errors.Is(err, htpasswd.ErrSlowHash) {
		t.Errorf("Refresh to a cost-18 file = %v, want ErrSlowHash", err)
	}
	if ok, _ := c.Check(context.Background(), "alice", "wonderland"); !ok {
		t.Error("after a refused refresh alice no longer logs in")
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
