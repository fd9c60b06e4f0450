package middleware

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineBuffer collects log lines; safe for concurrent use like a real sink.
type lineBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (lb *lineBuffer) Write(p []byte) (int, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.b.Write(p)
}

func (lb *lineBuffer) String() string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.b.String()
}

func serveLogged(t *testing.T, format string, h http.HandlerFunc, r *http.Request) (string, *httptest.ResponseRecorder) {
	t.Helper()
	out := &lineBuffer{}
	var done struct {
		status int
		size   int64
	}
	mw, err := AccessLog(AccessLogConfig{Format: format, Out: out,
		OnDone: func(_ *http.Request, _ *Scope, status int, size int64, _ time.Duration) {
			done.status, done.size = status, size
		}})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := ClientIP(ClientIPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	WithScope(mw(ip(h))).ServeHTTP(w, r)
	if done.status != w.Code || done.size != int64(w.Body.Len()) {
		t.Errorf("OnDone got status %d size %d, want %d %d", done.status, done.size, w.Code, w.Body.Len())
	}
	return out.String(), w
}

func TestAccessLogJSON(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "http://app.example.com/a%20b/c?sig=secret", nil)
	r.RemoteAddr = "203.0.113.5:4000"
	r.Header.Set("User-Agent", "curl/8 \"quoted\" \x01\xff")
	r.Header.Set("Referer", "https://example.com/")
	line, _ := serveLogged(t, FormatJSON, func(w http.ResponseWriter, r *http.Request) {
		ScopeFrom(r).Upstream = "127.0.0.1:3000"
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte("short and stout"))
	}, r)
	if !strings.HasSuffix(line, "}\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("JSON line = %q, want one object and a newline", line)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("JSON line %q does not parse: %v", line, err)
	}
	want := map[string]any{
		"client_ip": "203.0.113.5", "host": "app.example.com", "method": "GET", "path": "/a%20b/c",
		"status": 418.0, "bytes": 15.0, "upstream": "127.0.0.1:3000", "referer": "https://example.com/",
		"user_agent": "curl/8 \"quoted\" \x01\ufffd", "proto": "HTTP/1.1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("field %s = %#v, want %#v", k, got[k], v)
		}
	}
	if strings.Contains(line, "secret") {
		t.Errorf("JSON line %q carries the query string", line)
	}
	if _, err := time.Parse(time.RFC3339, got["time"].(string)); err != nil {
		t.Errorf("time %q: %v", got["time"], err)
	}
}

// combinedRE is nginx's combined format field by field, the shape
// fail2ban's nginx filters expect.
var combinedRE = regexp.MustCompile(`^(\S+) - (\S+) \[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"\n$`)

func TestAccessLogCombined(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("POST", "/wp-login.php?x=1", strings.NewReader("a=b"))
	r.RemoteAddr = "[2001:db8::7]:4000"
	r.Header.Set("User-Agent", `evil" 200 0 "-" "forged`)
	line, _ := serveLogged(t, FormatCombined, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}, r)
	m := combinedRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("combined line %q does not match the combined format", line)
	}
	if m[1] != "2001:db8::7" || m[4] != "POST /wp-login.php?x=1 HTTP/1.1" || m[5] != "403" || m[6] != "0" || m[7] != "-" {
		t.Errorf("combined fields = %q", m[1:])
	}
	if m[8] != `evil\x22 200 0 \x22-\x22 \x22forged` {
		t.Errorf("user agent field = %q, want quotes escaped as nginx does", m[8])
	}
}

func TestAccessLogDefaultStatusAndFlush(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/events", nil)
	line, w := serveLogged(t, FormatCombined, func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
	}, r)
	if !w.Flushed {
		t.Error("Flush did not reach the underlying writer")
	}
	if m := combinedRE.FindStringSubmatch(line); m == nil || m[5] != "200" {
		t.Errorf("line %q, want status 200", line)
	}
}

func TestAccessLogOff(t *testing.T) {
	t.Parallel()
	line, _ := serveLogged(t, FormatOff, func(w http.ResponseWriter, r *http.Request) {}, httptest.NewRequest("GET", "/", nil))
	if line != "" {
		t.Errorf("format off wrote %q", line)
	}
}

func TestAccessLogConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     AccessLogConfig
		wantErr string
	}{
		{name: "bad format", cfg: AccessLogConfig{Format: "xml", Out: &lineBuffer{}}, wantErr: `"xml" is not one of`},
		{name: "no writer", cfg: AccessLogConfig{Format: FormatJSON}, wantErr: "no output writer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := AccessLog(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("AccessLog(%+v) error = %v, want %q", tc.cfg, err, tc.wantErr)
			}
		})
	}
}

// BenchmarkAccessLog measures one line per format, for a plain request
// and for one whose Referer is a signed link (its signature redacted).
func BenchmarkAccessLog(b *testing.B) {
	for _, bc := range []struct{ name, format, referer string }{
		{"json", FormatJSON, ""},
		{"combined", FormatCombined, ""},
		{"json-signed-referer", FormatJSON, "https://media.example.com/paid/page.html?gh_expires=1900003600&gh_signature=74QNC3Te0aRBpil2XyHr-75zirE676673NDIhKETqnA"},
		{"combined-signed-referer", FormatCombined, "https://media.example.com/paid/page.html?gh_expires=1900003600&gh_signature=74QNC3Te0aRBpil2XyHr-75zirE676673NDIhKETqnA"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mw, err := AccessLog(AccessLogConfig{Format: bc.format, Out: discard{}})
			if err != nil {
				b.Fatal(err)
			}
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
			r := httptest.NewRequest("GET", "/index.html", nil)
			r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
			if bc.referer != "" {
				r.Header.Set("Referer", bc.referer)
			}
			r = r.WithContext(&scopeCtx{Context: r.Context()})
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// An aborted response (the proxy panics with http.ErrAbortHandler when an
// upstream dies mid-body) is still logged.
func TestAccessLogAbortedRequest(t *testing.T) {
	t.Parallel()
	out := &lineBuffer{}
	mw, err := AccessLog(AccessLogConfig{Format: FormatCombined, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	h := WithScope(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("partial"))
		panic(http.ErrAbortHandler)
	})))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("panic = %v, want it passed on", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/video.mp4", nil))
	}()
	if m := combinedRE.FindStringSubmatch(out.String()); m == nil || m[5] != "200" || m[6] != "7" {
		t.Errorf("log = %q, want the aborted request with its 7 bytes", out.String())
	}
}

// TestAccessLogRedactsSignatures: a gh_signature value in
// the request-target (a request refused before the signed-link check
// stripped it, or outside signed_links.paths) or in the Referer (a page
// opened through a signed link) is written as the fixed marker, in both
// formats, with the rest of the line intact.
func TestAccessLogRedactsSignatures(t *testing.T) {
	t.Parallel()
	const sig = "74QNC3Te0aRBpil2XyHr-75zirE676673NDIhKETqnA"
	for _, tc := range []struct {
		name, format, target, referer string
		want                          []string
	}{
		{name: "json referer", format: FormatJSON, target: "/paid/a.mp4?gh_expires=1&gh_signature=" + sig,
			referer: "https://media.example.com/paid/page.html?gh_expires=1&gh_signature=" + sig + "&t=1",
			want:    []string{`"referer":"https://media.example.com/paid/page.html?gh_expires=1&gh_signature=[redacted]&t=1"`, `"path":"/paid/a.mp4"`}},
		{name: "combined request and referer", format: FormatCombined, target: "/free/a.mp4?gh_expires=1&gh_signature=" + sig + "&t=1",
			referer: "https://app.example.com/login?next=%2Fpaid%2Fa%3Fgh_signature%3D" + sig,
			want: []string{`"GET /free/a.mp4?gh_expires=1&gh_signature=[redacted]&t=1 HTTP/1.1"`,
				`"https://app.example.com/login?next=%2Fpaid%2Fa%3Fgh_signature%3D[redacted]"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.target, nil)
			r.Header.Set("Referer", tc.referer)
			line, _ := serveLogged(t, tc.format, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusForbidden)
			}, r)
			if strings.Contains(line, sig) {
				t.Errorf("%s line %q carries the signature", tc.format, line)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("%s line %q lacks %q", tc.format, line, w)
				}
			}
		})
	}
}
