package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const adminConfig = `listen: {http: "127.0.0.1:0"}
allow: [192.0.2.0/24]
hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
admin:
  listen: "127.0.0.1:0"
  tokens:
    - name: ops
      token: sha256:d9310c002af91822beb0b3487d8b04f85bf6bf1f8a5496bff7d35fc7c5a29def   # ops-token
      scopes: [bans:read, bans:write]
    - name: reader
      token: sha256:0328587016f9e316b9c31c94f944a2c453e1494a564062b5eab68039c75b58bf   # read-token
      scopes: [bans:read]
`

// adminRequest is an httptest request to the admin listener of the test
// configs (admin.listen 127.0.0.1:0), with a Host the listener answers.
func adminRequest(method, path string, body io.Reader) *http.Request {
	r := httptest.NewRequest(method, path, body)
	r.Host = "127.0.0.1:9901"
	return r
}

type adminCall struct {
	method, path, token, body string
}

func (c adminCall) do(t *testing.T, h http.Handler) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	r := adminRequest(c.method, c.path, strings.NewReader(c.body))
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var v map[string]any
	if strings.HasPrefix(strings.TrimSpace(w.Body.String()), "{") {
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", c.method, c.path, w.Body.String(), err)
		}
	}
	if w.Code >= 400 {
		if _, ok := v["error"]; !ok {
			t.Errorf("%s %s: %d without a JSON error: %q", c.method, c.path, w.Code, w.Body.String())
		}
	}
	return w, v
}

func TestAdminBansAPI(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Config: mustConfig(t, adminConfig)})
	if err != nil {
		t.Fatal(err)
	}
	h := s.admin
	tests := []struct {
		name      string
		call      adminCall
		want      int
		wantField string
		check     func(t *testing.T, body map[string]any)
	}{
		{name: "no token", call: adminCall{"GET", "/v1/bans", "", ""}, want: 401},
		{name: "wrong token", call: adminCall{"GET", "/v1/bans", "nope", ""}, want: 401},
		{name: "missing scope", call: adminCall{"POST", "/v1/bans", "read-token", `{"ip":"203.0.113.7"}`}, want: 403},
		{name: "add", call: adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"203.0.113.7","duration":"2h","reason":"abuse"}`}, want: 201,
			check: func(t *testing.T, b map[string]any) {
				until, err := time.Parse(time.RFC3339, b["until"].(string))
				if b["ip"] != "203.0.113.7" || b["reason"] != "abuse" || err != nil || time.Until(until) < 119*time.Minute {
					t.Errorf("ban = %v, want 203.0.113.7 for 2h", b)
				}
			}},
		{name: "add prefix, seconds", call: adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"198.51.100.0/24","duration":600}`}, want: 201,
			check: func(t *testing.T, b map[string]any) {
				if b["ip"] != "198.51.100.0/24" {
					t.Errorf("ban = %v, want the /24 kept", b)
				}
			}},
		{name: "allowed client", call: adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"192.0.2.5"}`}, want: 422, wantField: "ip"},
		{name: "bad ip", call: adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"banana"}`}, want: 422, wantField: "ip"},
		{name: "host bits", call: adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"198.51.100.1/24"}`}, want: 422, wantField: "ip"},
		// A ban of everyone, and a zoned
		// address whose zone would be dropped silently.
		{name: "every IPv4 address", call: adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"0.0.0.0/0"}`}, want: 422, wantField: "ip"},
		{name: "every IPv6 address", call: adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"::/0"}`}, want: 422, wantField: "ip"},
		{name: "zoned address", call: adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"fe80::1%eth0"}`}, want: 422, wantField: "ip"},
		{name: "bad duration", call: adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"203.0.113.8","duration":"soon"}`}, want: 400, wantField: "duration"},
		{name: "unknown field", call: adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"203.0.113.8","forever":true}`}, want: 400},
		{name: "not json", call: adminCall{"POST", "/v1/bans", "ops-token", `ip=1.2.3.4`}, want: 400},
		{name: "delete", call: adminCall{"DELETE", "/v1/bans/203.0.113.7", "ops-token", ""}, want: 204},
		{name: "delete again", call: adminCall{"DELETE", "/v1/bans/203.0.113.7", "ops-token", ""}, want: 404, wantField: "ip"},
		{name: "delete prefix", call: adminCall{"DELETE", "/v1/bans/198.51.100.0/24", "ops-token", ""}, want: 204},
		{name: "wrong method", call: adminCall{"PUT", "/v1/bans", "ops-token", ""}, want: 405},
		{name: "unknown endpoint", call: adminCall{"GET", "/v1/nope", "ops-token", ""}, want: 404},
	}
	for _, tc := range tests {
		w, body := tc.call.do(t, h)
		if w.Code != tc.want {
			t.Errorf("%s: %s %s = %d %s, want %d", tc.name, tc.call.method, tc.call.path, w.Code, w.Body.String(), tc.want)
			continue
		}
		if tc.wantField != "" && body["field"] != tc.wantField {
			t.Errorf("%s: field = %v, want %q", tc.name, body["field"], tc.wantField)
		}
		if tc.check != nil {
			tc.check(t, body)
		}
	}
}

func TestAdminBansListAndGuard(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Config: mustConfig(t, adminConfig)})
	if err != nil {
		t.Fatal(err)
	}
	h := s.admin
	if w, _ := (adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"2001:db8::7","duration":"1h"}`}).do(t, h); w.Code != 201 {
		t.Fatalf("add: %d %s", w.Code, w.Body.String())
	}
	r := adminRequest("GET", "/v1/bans", nil)
	r.Header.Set("Authorization", "Bearer read-token")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var list []struct{ IP string }
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list) != 1 || list[0].IP != "2001:db8::7" {
		t.Fatalf("GET /v1/bans = %s (%v), want the one ban", w.Body.String(), err)
	}
	// The public listener refuses the banned client at once.
	req := httptest.NewRequest("GET", "http://www.example.com/", nil)
	req.RemoteAddr = "[2001:db8::7]:5000"
	pw := httptest.NewRecorder()
	s.ServeHTTP(pw, req)
	if pw.Code != http.StatusForbidden {
		t.Errorf("banned client on the public listener: %d, want 403", pw.Code)
	}
}

func TestBanMetrics(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Config: mustConfig(t, adminConfig+"jails:\n  probes: {maxretry: 1}\n")})
	if err != nil {
		t.Fatal(err)
	}
	h := s.admin
	if w, _ := (adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"203.0.113.9"}`}).do(t, h); w.Code != 201 {
		t.Fatal(w.Body.String())
	}
	s.current.Load().jails.Report("probes", netip.MustParseAddr("203.0.113.10"), "probe")
	r := adminRequest("GET", "/metrics", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	for _, want := range []string{
		`gatehouse_bans_active{jail="manual"} 1`,
		`gatehouse_bans_active{jail="probes"} 1`,
		`gatehouse_jail_offences_total{jail="probes"} 1`,
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
