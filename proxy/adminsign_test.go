package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/proxy/admin"
	"gatehouse/signer"
)

// cfKey is one CloudFront test key for the package; 2048-bit keys are
// slow to generate.
var cfKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// The admin tokens of signConfig.
const (
	tokenBackend = "backend-token" // every sign scope, no prefixes
	tokenLimited = "limited-token" // every sign scope, public prefixes only
	tokenOps     = "ops-token"     // bans only
)

// The signed-link keys of signConfig: the new one signs, both verify.
const (
	linkKeyNew = "new-link-key-0123456789abcdef0123"
	linkKeyOld = "old-link-key-0123456789abcdef0123"
)

func digest(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

// signConfig is a gateway with every signer, a host with signed links in
// front of upstream, and an admin jail of three strikes.
func signConfig(t *testing.T, upstream string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"cf.pem":     string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(cfKey())})),
		"link-new":   linkKeyNew,
		"link-old":   linkKeyOld,
		"aws-id":     "AKIDGATEHOUSE",
		"aws-secret": "aws-secret-access-key-for-tests",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
hosts:
  - match: [media.example.com, "*.media.example.com"]
    upstreams: [%[2]s]
    signed_links:
      paths: ["/paid/"]
      keys: [file:%[1]s/link-new, file:%[1]s/link-old]
      max_expires: 2h
  - match: [www.example.com]
    upstreams: [%[2]s]
jails:
  admin: {maxretry: 3, findtime: 10m, bantime: 1h}
admin:
  listen: "127.0.0.1:0"
  tokens:
    - {name: backend, token: "sha256:%[3]s", scopes: [sign:s3, sign:cloudfront, sign:link]}
    - {name: limited, token: "sha256:%[4]s", scopes: [sign:s3, sign:cloudfront, sign:link], prefixes: [media/public/, paid/public/, videos/public/]}
    - {name: ops, token: "sha256:%[5]s", scopes: [bans:read, bans:write]}
signer:
  s3:
    region: eu-west-1
    endpoint: http://127.0.0.1:7070
    path_style: true
    access_key_id: file:%[1]s/aws-id
    secret_access_key: file:%[1]s/aws-secret
    max_expires: 2h
  cloudfront:
    key_pair_id: K2JCJMDEHXQW5F
    private_key: file:%[1]s/cf.pem
    max_expires: 1h
    domains: [cdn.example.com]
`, dir, upstream, digest(tokenBackend), digest(tokenLimited), digest(tokenOps))
}

// syncBuffer is a log destination safe for the handlers' goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newSignServer(t *testing.T, upstream string) (*Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := New(Options{Config: mustConfig(t, signConfig(t, upstream)),
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

// call posts body to path on h as token from client, and decodes the
// JSON answer into a map.
func call(t *testing.T, h http.Handler, path, token, body, client string) (int, map[string]any) {
	t.Helper()
	r := adminRequest(http.MethodPost, path, strings.NewReader(body))
	r.RemoteAddr = client + ":40000"
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var v map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("POST %s: body %q is not a JSON object: %v", path, w.Body.String(), err)
	}
	if w.Code >= 400 {
		if _, ok := v["error"]; !ok {
			t.Errorf("POST %s: %d without a JSON error: %q", path, w.Code, w.Body.String())
		}
	}
	return w.Code, v
}

func TestAdminSignAPI(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(up.Close)
	s, logs := newSignServer(t, up.URL)
	h := s.admin
	tests := []struct {
		name      string
		path      string
		token     string
		body      string
		want      int
		wantField string
		wantErr   string
		check     func(t *testing.T, v map[string]any)
	}{
		{name: "no token", path: "/v1/sign/s3", body: `{"bucket":"media","key":"a"}`, want: 401},
		{name: "bad token", path: "/v1/sign/s3", token: "guess", body: `{"bucket":"media","key":"a"}`, want: 401},
		{name: "wrong scope", path: "/v1/sign/link", token: tokenOps, body: `{"url":"https://media.example.com/paid/a"}`, want: 403, wantErr: "lacks scope sign:link"},
		{name: "s3 GET", path: "/v1/sign/s3", token: tokenBackend, body: `{"bucket":"media","key":"videos/a.mp4","expires":"30m"}`, want: 200,
			check: func(t *testing.T, v map[string]any) {
				u, err := url.Parse(v["url"].(string))
				if err != nil || u.Host != "127.0.0.1:7070" || u.Path != "/media/videos/a.mp4" || u.Query().Get("X-Amz-Expires") != "1800" ||
					u.Query().Get("X-Amz-Signature") == "" || v["method"] != "GET" {
					t.Errorf("answer %v: want a path-style GET URL for 30m", v)
				}
				at, err := time.Parse(time.RFC3339, v["expires_at"].(string))
				if err != nil || at.Location() != time.UTC || time.Until(at) > 30*time.Minute || time.Until(at) < 29*time.Minute {
					t.Errorf("expires_at = %v (%v), want RFC 3339 UTC in 30 minutes", v["expires_at"], err)
				}
			}},
		{name: "s3 PUT", path: "/v1/sign/s3", token: tokenBackend, body: `{"bucket":"media","key":"up/b.mp4","method":"PUT","content_type":"video/mp4","expires":600}`, want: 200,
			check: func(t *testing.T, v map[string]any) {
				if hd, _ := v["headers"].(map[string]any); v["method"] != "PUT" || hd["Content-Type"] != "video/mp4" {
					t.Errorf("answer %v: want PUT with the Content-Type header to send", v)
				}
			}},
		{name: "s3 over the cap", path: "/v1/sign/s3", token: tokenBackend, body: `{"bucket":"media","key":"a","expires":"3h"}`, want: 422, wantField: "expires", wantErr: "3h is over the maximum of 2h"},
		{name: "s3 bad bucket", path: "/v1/sign/s3", token: tokenBackend, body: `{"bucket":"Media","key":"a"}`, want: 422, wantField: "bucket"},
		{name: "s3 prefix violation", path: "/v1/sign/s3", token: tokenLimited, body: `{"bucket":"media","key":"private/a"}`, want: 403, wantField: "key", wantErr: `"media/private/a" is outside the token's prefixes`},
		{name: "s3 inside prefix", path: "/v1/sign/s3", token: tokenLimited, body: `{"bucket":"media","key":"public/a"}`, want: 200},
		{name: "s3 unknown field", path: "/v1/sign/s3", token: tokenBackend, body: `{"bucket":"media","key":"a","acl":"public-read"}`, want: 400, wantErr: "unknown field"},
		{name: "s3 bad expires", path: "/v1/sign/s3", token: tokenBackend, body: `{"bucket":"media","key":"a","expires":"soon"}`, want: 400, wantField: "expires"},
		{name: "cloudfront URL", path: "/v1/sign/cloudfront", token: tokenBackend, body: `{"url":"https://cdn.example.com/videos/a.mp4"}`, want: 200,
			check: func(t *testing.T, v map[string]any) {
				if u, _ := v["url"].(string); !strings.Contains(u, "&Signature=") || !strings.Contains(u, "Key-Pair-Id=K2JCJMDEHXQW5F") {
					t.Errorf("answer %v: want a signed CloudFront URL", v)
				}
			}},
		{name: "cloudfront cookies", path: "/v1/sign/cloudfront", token: tokenBackend, body: `{"url":"https://cdn.example.com/videos/*","cookies":true,"ip_range":"203.0.113.0/24"}`, want: 200,
			check: func(t *testing.T, v map[string]any) {
				if c, _ := v["cookies"].([]any); len(c) != 3 || v["url"] != nil {
					t.Errorf("answer %v: want three cookies", v)
				}
			}},
		{name: "cloudfront domain not listed", path: "/v1/sign/cloudfront", token: tokenBackend, body: `{"url":"https://evil.example.com/videos/a.mp4"}`, want: 422, wantField: "url", wantErr: "signer.cloudfront.domains"},
		{name: "cloudfront over the cap", path: "/v1/sign/cloudfront", token: tokenBackend, body: `{"url":"https://cdn.example.com/videos/a.mp4","expires":7200}`, want: 422, wantField: "expires"},
		{name: "cloudfront prefix violation", path: "/v1/sign/cloudfront", token: tokenLimited, body: `{"url":"https://cdn.example.com/videos/*","cookies":true}`, want: 403, wantField: "url"},
		{name: "link", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://media.example.com/paid/a.mp4?t=10","ip":"203.0.113.7"}`, want: 200,
			check: func(t *testing.T, v map[string]any) {
				if u, _ := v["url"].(string); !strings.HasPrefix(u, "https://media.example.com/paid/a.mp4?t=10&gh_expires=") || !strings.Contains(u, "&gh_ip=1&gh_signature=") {
					t.Errorf("answer %v: want a bound link keeping the query", v)
				}
			}},
		{name: "link wildcard host", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://eu.media.example.com/paid/a.mp4"}`, want: 200},
		{name: "link host without signed_links", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://www.example.com/paid/a.mp4"}`, want: 422, wantField: "url", wantErr: "www.example.com has no signed_links"},
		{name: "link unknown host", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://evil.example.com/paid/a.mp4"}`, want: 422, wantField: "url"},
		{name: "link path not protected", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://media.example.com/free/a.mp4"}`, want: 422, wantField: "url", wantErr: "not under hosts[0].signed_links.paths"},
		{name: "link unsafe path", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://media.example.com/paid/..%2f..%2fetc"}`, want: 422, wantField: "url"},
		{name: "link over the cap", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://media.example.com/paid/a.mp4","expires":"1d"}`, want: 422, wantField: "expires", wantErr: "over the maximum of 2h"},
		{name: "link prefix violation", path: "/v1/sign/link", token: tokenLimited, body: `{"url":"https://media.example.com/paid/private/a.mp4"}`, want: 403, wantField: "url"},
		{name: "link dot segments do not escape the prefix", path: "/v1/sign/link", token: tokenLimited, body: `{"url":"https://media.example.com/paid/public/../private/a.mp4"}`, want: 422, wantField: "url",
			wantErr: `path "/paid/public/../private/a.mp4" is not in canonical form; sign "/paid/private/a.mp4"`},
		// a link is checked against the raw path, so only the
		// one canonical spelling of a path is signed.
		{name: "link double slash", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://media.example.com/paid//a.mp4"}`, want: 422, wantField: "url", wantErr: `not in canonical form; sign "/paid/a.mp4"`},
		{name: "link dot segment", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://media.example.com/paid/./a.mp4"}`, want: 422, wantField: "url", wantErr: `not in canonical form; sign "/paid/a.mp4"`},
		{name: "link needless escape", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://media.example.com/paid/%61.mp4"}`, want: 422, wantField: "url", wantErr: `not in canonical form; sign "/paid/a.mp4"`},
		{name: "link lower-case escape", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://media.example.com/paid/caf%c3%a9.mp4"}`, want: 422, wantField: "url", wantErr: `sign "/paid/caf%C3%A9.mp4"`},
		{name: "link path parameter", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://media.example.com/paid/a.mp4;v=1"}`, want: 422, wantField: "url", wantErr: `sign "/paid/a.mp4"`},
		{name: "link escaped space and sub-delims", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://media.example.com/paid/my%20video(1)!.mp4"}`, want: 200,
			check: func(t *testing.T, v map[string]any) {
				if u, _ := v["url"].(string); !strings.HasPrefix(u, "https://media.example.com/paid/my%20video(1)!.mp4?gh_expires=") {
					t.Errorf("answer %v: want the path as given", v)
				}
			}},
		{name: "link query with a reserved parameter", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://media.example.com/paid/a.mp4?gh_x=1"}`, want: 422, wantField: "url", wantErr: "already carries a gh_x parameter"},
		{name: "link HEAD", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"https://media.example.com/paid/a.mp4","method":"HEAD"}`, want: 200},
		{name: "link inside prefix", path: "/v1/sign/link", token: tokenLimited, body: `{"url":"https://media.example.com/paid/public/a.mp4"}`, want: 200},
		{name: "link not a URL", path: "/v1/sign/link", token: tokenBackend, body: `{"url":"/paid/a.mp4"}`, want: 422, wantField: "url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, v := call(t, h, tc.path, tc.token, tc.body, "192.0.2.10")
			if code != tc.want {
				t.Fatalf("POST %s %s = %d %v, want %d", tc.path, tc.body, code, v, tc.want)
			}
			if tc.wantField != "" && v["field"] != tc.wantField {
				t.Errorf("field = %v, want %q", v["field"], tc.wantField)
			}
			if msg, _ := v["error"].(string); !strings.Contains(msg, tc.wantErr) {
				t.Errorf("error = %q, want it to contain %q", msg, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, v)
			}
		})
	}

	// One audit line per call, naming token, action, resource and client,
	// and never a token, a signature or a signed URL.
	log := logs.String()
	var audit []map[string]any
	for line := range strings.Lines(log) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err == nil && rec["component"] == "audit" {
			audit = append(audit, rec)
		}
	}
	if len(audit) != len(tests) {
		t.Errorf("%d audit lines for %d calls", len(audit), len(tests))
	}
	want := map[string]any{"token": "backend", "action": "sign:s3", "resource": "s3://media/videos/a.mp4", "client_ip": "192.0.2.10", "status": float64(200), "path": "/v1/sign/s3"}
	found := false
	for _, rec := range audit {
		match := true
		for k, v := range want {
			match = match && rec[k] == v
		}
		found = found || match
	}
	if !found {
		t.Errorf("no audit line with %v in\n%s", want, log)
	}
	for _, secret := range []string{tokenBackend, tokenLimited, tokenOps, "guess", "X-Amz-Signature", "gh_signature", "Signature=", "CloudFront-Signature", "aws-secret-access-key", linkKeyNew} {
		if strings.Contains(log, secret) {
			t.Errorf("the log contains %q:\n%s", secret, log)
		}
	}
}

func TestAdminSignMethods(t *testing.T) {
	t.Parallel()
	s, _ := newSignServer(t, "http://127.0.0.1:1")
	h := s.admin
	for _, path := range []string{"/v1/sign/s3", "/v1/sign/cloudfront", "/v1/sign/link"} {
		r := adminRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer "+tokenBackend)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
			t.Errorf("GET %s = %d (Allow %q), want 405 with Allow: POST", path, w.Code, w.Header().Get("Allow"))
		}
	}
	r := adminRequest(http.MethodPost, "/v1/sign/gcs", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNotFound {
		t.Errorf("POST /v1/sign/gcs = %d, want 404", w.Code)
	}
}

// TestAdminJail: wrong tokens are offences for the admin jail; the third
// bans the client, whose next call is refused even with a good token,
// while other clients and missing tokens are not counted.
func TestAdminJail(t *testing.T) {
	t.Parallel()
	s, logs := newSignServer(t, "http://127.0.0.1:1")
	h := s.admin
	body := `{"bucket":"media","key":"a"}`
	for range 5 {
		if code, _ := call(t, h, "/v1/sign/s3", "", body, "198.51.100.7"); code != 401 {
			t.Fatalf("no token: %d, want 401", code)
		}
	}
	for i := range 3 {
		if code, _ := call(t, h, "/v1/sign/s3", fmt.Sprintf("guess-%d", i), body, "198.51.100.7"); code != 401 {
			t.Fatalf("wrong token %d: %d, want 401", i, code)
		}
	}
	if got := s.current.Load().jails.Offences(admin.Jail); got != 3 {
		t.Errorf("admin jail offences = %d, want 3 (missing tokens are not counted)", got)
	}
	if code, v := call(t, h, "/v1/sign/s3", tokenBackend, body, "198.51.100.7"); code != 403 || v["error"] != "banned" {
		t.Errorf("banned client with a good token: %d %v, want 403 banned", code, v)
	}
	if code, _ := call(t, h, "/v1/sign/s3", tokenBackend, body, "198.51.100.8"); code != 200 {
		t.Errorf("another client: %d, want 200", code)
	}
	if !strings.Contains(logs.String(), `"jail":"admin"`) {
		t.Errorf("no ban by the admin jail in the log:\n%s", logs)
	}
	// Another jail's ban, or a manual one, does not lock out the admin
	// API: the operator must be able to lift it.
	if code, v := call(t, h, "/v1/bans", tokenOps, `{"ip":"198.51.100.9","duration":"1h"}`, "198.51.100.8"); code != 201 {
		t.Fatalf("manual ban: %d %v", code, v)
	}
	if code, v := call(t, h, "/v1/sign/s3", tokenBackend, body, "198.51.100.9"); code != 200 {
		t.Errorf("manually banned client with a good token: %d %v, want 200", code, v)
	}
}

// TestAdminSignLinkVerifies: a link from the admin API passes the public
// listener's check, with its parameters stripped before the upstream;
// the same link from another client, for another path or after
// tampering does not. Both keys verify.
func TestAdminSignLinkVerifies(t *testing.T) {
	t.Parallel()
	var got struct {
		sync.Mutex
		uris []string
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Lock()
		got.uris = append(got.uris, r.RequestURI)
		got.Unlock()
	}))
	t.Cleanup(up.Close)
	s, _ := newSignServer(t, up.URL)
	h := s.admin
	code, v := call(t, h, "/v1/sign/link", tokenBackend, `{"url":"http://media.example.com/paid/a.mp4?t=10","ip":"203.0.113.7"}`, "192.0.2.1")
	if code != 200 {
		t.Fatalf("sign: %d %v", code, v)
	}
	link := v["url"].(string)
	get := func(target, client string) int {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.RemoteAddr = client + ":5000"
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code
	}
	if c := get(link, "203.0.113.7"); c != 200 {
		t.Fatalf("GET signed link = %d, want 200", c)
	}
	got.Lock()
	if len(got.uris) != 1 || got.uris[0] != "/paid/a.mp4?t=10" {
		t.Errorf("upstream received %q, want /paid/a.mp4?t=10 without the link parameters", got.uris)
	}
	got.Unlock()
	// A link signed before the rotation, with the key now second.
	old, err := signer.NewLinks(signer.LinkConfig{Keys: [][]byte{[]byte(linkKeyOld)}})
	if err != nil {
		t.Fatal(err)
	}
	oldLink := "http://media.example.com/paid/a.mp4?" + old.Sign("GET", "media.example.com", "/paid/a.mp4", "", time.Now().Add(time.Minute), netip.Addr{})
	if c := get(oldLink, "203.0.113.9"); c != 200 {
		t.Errorf("GET a link signed with the old key = %d, want 200", c)
	}
	for _, tc := range []struct {
		name, target, client string
	}{
		{"wrong client", link, "203.0.113.8"},
		{"other path", strings.Replace(link, "/paid/a.mp4", "/paid/b.mp4", 1), "203.0.113.7"},
		{"tampered expiry", strings.Replace(link, "gh_expires=1", "gh_expires=2", 1), "203.0.113.7"},
		{"no parameters", "http://media.example.com/paid/a.mp4", "203.0.113.7"},
	} {
		if c := get(tc.target, tc.client); c != 403 {
			t.Errorf("%s: GET = %d, want 403", tc.name, c)
		}
	}
}
