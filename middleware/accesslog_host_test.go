package middleware

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// combinedHostRE is combinedRE with nginx's $host in front (vcombined).
var combinedHostRE = regexp.MustCompile(`^(\S+) (\S+) - (\S+) \[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"\n$`)

func TestAccessLogCombinedHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		host        string // Host header
		requestHost string // Scope.RequestHost, as the hygiene layer sets it
		user        string
		wantHost    string
		wantUser    string
	}{
		{name: "request host", host: "App.Example.com:8080", requestHost: "app.example.com", wantHost: "app.example.com", wantUser: "-"},
		{name: "before hygiene: Host header without port, lower case", host: "App.Example.com:8080", wantHost: "app.example.com", wantUser: "-"},
		{name: "IPv6 literal with port", host: "[2001:db8::1]:443", wantHost: "[2001:db8::1]", wantUser: "-"},
		{name: "crafted host cannot add fields", host: `a" b`, wantHost: `a\x22`, wantUser: "-"},
		{name: "no host", host: "", wantHost: "-", wantUser: "-"},
		{name: "user", host: "staging.example.com", requestHost: "staging.example.com", user: "alice", wantHost: "staging.example.com", wantUser: "alice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/a?b=1", nil)
			r.Host = tc.host
			r.RemoteAddr = "203.0.113.5:4000"
			line, _ := serveLogged(t, FormatCombinedHost, func(w http.ResponseWriter, r *http.Request) {
				s := ScopeFrom(r)
				s.RequestHost, s.User = tc.requestHost, tc.user
				w.Write([]byte("hello"))
			}, r)
			if tc.name == "crafted host cannot add fields" {
				// The host field ends at the first space: the rest of the
				// crafted value stays inside it, escaped.
				if !strings.HasPrefix(line, `a\x22 b 203.0.113.5 - - [`) {
					t.Errorf("line = %q, want the quote escaped", line)
				}
				return
			}
			m := combinedHostRE.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("line %q does not match the combined_host format", line)
			}
			if m[1] != tc.wantHost || m[2] != "203.0.113.5" || m[3] != tc.wantUser || m[5] != "GET /a?b=1 HTTP/1.1" || m[6] != "200" || m[7] != "5" {
				t.Errorf("combined_host fields = %q, want host %q, user %q", m[1:], tc.wantHost, tc.wantUser)
			}
			// The rest of the line is the combined format, unchanged.
			if combinedRE.FindStringSubmatch(line[len(m[1])+1:]) == nil {
				t.Errorf("line %q after the host is not the combined format", line)
			}
		})
	}
}

// TestAccessLogJSONUser: the JSON line carries the authenticated user
// under "user", and has no such key when nobody logged in.
func TestAccessLogJSONUser(t *testing.T) {
	t.Parallel()
	for _, user := range []string{"alice", ""} {
		line, _ := serveLogged(t, FormatJSON, func(w http.ResponseWriter, r *http.Request) {
			ScopeFrom(r).User = user
		}, httptest.NewRequest("GET", "/", nil))
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("JSON line %q: %v", line, err)
		}
		v, ok := got["user"]
		if user == "" && ok {
			t.Errorf("no login: line has user %v, want no user key", v)
		}
		if user != "" && v != user {
			t.Errorf("user %q: line has user %v", user, v)
		}
	}
}

// TestAccessLogPerHost: requests of a host with its own target go there in
// its format, the others to the global one; a request refused before
// routing (Scope.Host empty) follows HostOf.
func TestAccessLogPerHost(t *testing.T) {
	t.Parallel()
	global, shop, blog := &lineBuffer{}, &lineBuffer{}, &lineBuffer{}
	mw, err := AccessLog(AccessLogConfig{
		Format: FormatJSON, Out: global,
		Hosts: map[string]AccessLogTarget{
			"shop.example.com":  {Format: FormatCombinedHost, Out: shop},
			"blog.example.com":  {Format: FormatCombined, Out: blog},
			"quiet.example.com": {Format: FormatOff},
		},
		HostOf: func(h string) string {
			if strings.HasPrefix(h, "shop.example.com") {
				return "shop.example.com"
			}
			return ""
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := WithScope(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The router names the host, except for the probe, refused before.
		if r.URL.Path != "/.env" {
			ScopeFrom(r).Host = r.Host
		}
	})))
	for _, req := range []struct{ host, path string }{
		{"shop.example.com", "/cart"},
		{"blog.example.com", "/post"},
		{"other.example.com", "/x"},
		{"quiet.example.com", "/hidden"},
		{"shop.example.com:80", "/.env"},
	} {
		r := httptest.NewRequest("GET", req.path, nil)
		r.Host = req.host
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	check := func(name string, lb *lineBuffer, re *regexp.Regexp, paths ...string) {
		t.Helper()
		lines := strings.SplitAfter(lb.String(), "\n")
		lines = lines[:len(lines)-1]
		if len(lines) != len(paths) {
			t.Fatalf("%s log has %d lines, want %d:\n%s", name, len(lines), len(paths), lb)
		}
		for i, l := range lines {
			if re != nil && !re.MatchString(l) {
				t.Errorf("%s log line %q is not in its format", name, l)
			}
			if !strings.Contains(l, paths[i]) {
				t.Errorf("%s log line %d = %q, want path %s", name, i, l, paths[i])
			}
		}
	}
	check("shop", shop, combinedHostRE, "/cart", "/.env")
	check("blog", blog, combinedRE, "/post")
	check("global", global, regexp.MustCompile(`^\{.*\}\n$`), "/x")
	if strings.Contains(global.String(), "/hidden") {
		t.Errorf("a host with format off was logged globally:\n%s", global)
	}
}

func TestAccessLogHostConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		target  AccessLogTarget
		wantErr string
	}{
		{"bad format", AccessLogTarget{Format: "vcombined", Out: &lineBuffer{}}, `host a.example: access log format "vcombined" is not one of json, combined, combined_host, off`},
		{"no writer", AccessLogTarget{Format: FormatCombinedHost}, "host a.example: access log: no output writer"},
	} {
		_, err := AccessLog(AccessLogConfig{Format: FormatJSON, Out: &lineBuffer{}, Hosts: map[string]AccessLogTarget{"a.example": tc.target}})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: AccessLog error = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

// BenchmarkAccessLogPerHost is BenchmarkAccessLog's combined case with
// per-host logs configured: the cost of picking the target.
func BenchmarkAccessLogPerHost(b *testing.B) {
	for _, bc := range []struct{ name, format, host string }{
		{"combined_host", FormatCombinedHost, "www.example.com"},
		{"routed-before-host", FormatCombined, ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mw, err := AccessLog(AccessLogConfig{Format: FormatCombined, Out: discard{},
				Hosts:  map[string]AccessLogTarget{"www.example.com": {Format: bc.format, Out: discard{}}},
				HostOf: func(string) string { return "www.example.com" }})
			if err != nil {
				b.Fatal(err)
			}
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
			r := httptest.NewRequest("GET", "/index.html", nil)
			r.Host = "www.example.com:8080"
			r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
			sc := &scopeCtx{Context: r.Context()}
			sc.scope.Host = bc.host
			r = r.WithContext(sc)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
