package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"gatehouse/proxy/admin"
)

// gateConfig has an admin jail that bans at the first wrong token, a
// probe jail, no allow list, and admin.names.
const gateConfig = `listen: {http: "127.0.0.1:0"}
hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
jails:
  admin: {maxretry: 1, findtime: 10m, bantime: 1h}
  probes: {maxretry: 1, findtime: 10m, bantime: 1h}
admin:
  listen: "127.0.0.1:9901"
  names: [admin.example.com]
  tokens:
    - name: ops
      token: sha256:d9310c002af91822beb0b3487d8b04f85bf6bf1f8a5496bff7d35fc7c5a29def   # ops-token
      scopes: [bans:read, bans:write, ui]
`

func newGateServer(t *testing.T) (*Server, http.Handler, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := New(Options{Config: mustConfig(t, gateConfig),
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return s, s.admin, logs
}

// TestAdminGateHost: the Host rule of /ui/ holds for the whole admin
// listener (/v1 and /metrics answered a DNS rebinding page).
func TestAdminGateHost(t *testing.T) {
	t.Parallel()
	_, h, logs := newGateServer(t)
	for _, tc := range []struct {
		name, method, path, host string
		want                     int
	}{
		{"metrics, rebinding name", "GET", "/metrics", "rebind.attacker.example:9901", http.StatusMisdirectedRequest},
		{"bans, rebinding name", "GET", "/v1/bans", "rebind.attacker.example", http.StatusMisdirectedRequest},
		{"ban add, rebinding name", "POST", "/v1/bans", "rebind.attacker.example", http.StatusMisdirectedRequest},
		{"sign, rebinding name", "POST", "/v1/sign/s3", "rebind.attacker.example", http.StatusMisdirectedRequest},
		{"unknown path, rebinding name", "GET", "/nope", "rebind.attacker.example", http.StatusMisdirectedRequest},
		{"ui, rebinding name", "GET", "/ui/login", "rebind.attacker.example", http.StatusMisdirectedRequest},
		{"metrics, empty host", "GET", "/metrics", "", http.StatusMisdirectedRequest},
		{"metrics, name under a configured one", "GET", "/metrics", "x.admin.example.com", http.StatusMisdirectedRequest},
		{"metrics, configured address", "GET", "/metrics", "127.0.0.1:9901", http.StatusOK},
		{"metrics, localhost", "GET", "/metrics", "localhost:9901", http.StatusOK},
		{"metrics, admin.names", "GET", "/metrics", "Admin.Example.com.:9901", http.StatusOK},
		{"bans, configured address, no token", "GET", "/v1/bans", "127.0.0.1", http.StatusUnauthorized},
		{"healthz, any host", "GET", "/healthz", "lb-target.internal", http.StatusOK},
		{"readyz, no host", "GET", "/readyz", "", http.StatusServiceUnavailable}, // not started: not ready, but answered
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{}`))
			r.Host = tc.host
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%s %s with Host %q = %d %s, want %d", tc.method, tc.path, tc.host, w.Code, w.Body, tc.want)
			}
			if w.Code == http.StatusMisdirectedRequest {
				var e struct{ Error, Field string }
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Errorf("421 body %q is not the JSON error", w.Body)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), `"msg":"admin request refused"`) || !strings.Contains(logs.String(), `"host":"rebind.attacker.example"`) {
		t.Errorf("no audit line for the refused Host:\n%s", logs)
	}
}

// TestAdminGateArrivalAddress: on a wildcard listener the address a
// request arrived on is its name, as for /ui/.
func TestAdminGateArrivalAddress(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Config: mustConfig(t, strings.Replace(gateConfig, `listen: "127.0.0.1:9901"`, `listen: ":9901"`, 1))})
	if err != nil {
		t.Fatal(err)
	}
	h := s.admin
	for _, tc := range []struct {
		host string
		want int
	}{
		{"10.1.2.3:9901", http.StatusOK},
		{"10.9.9.9:9901", http.StatusMisdirectedRequest},
		{"localhost:9901", http.StatusMisdirectedRequest},
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.Host = tc.host
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 9901}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("GET /metrics with Host %q arriving on 10.1.2.3 = %d, want %d", tc.host, w.Code, tc.want)
		}
	}
}

// TestAdminGateCrossOrigin: a browser's cross-origin write is refused
// with 403 before the token is looked at; same-origin writes and
// requests without Origin (curl, the CLI) pass.
func TestAdminGateCrossOrigin(t *testing.T) {
	t.Parallel()
	s, h, _ := newGateServer(t)
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		want               int
	}{
		{"other origin", "POST", "/v1/bans", map[string]string{"Origin": "http://rebind.attacker.example"}, http.StatusForbidden},
		{"other port on the same host", "POST", "/v1/bans", map[string]string{"Origin": "http://127.0.0.1:3000"}, http.StatusForbidden},
		{"null origin", "POST", "/v1/bans", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"delete, other origin", "DELETE", "/v1/bans/203.0.113.1", map[string]string{"Origin": "http://example.net"}, http.StatusForbidden},
		{"cross-site fetch metadata", "POST", "/v1/bans", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site fetch metadata", "POST", "/v1/bans", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"sign, other origin", "POST", "/v1/sign/s3", map[string]string{"Origin": "http://rebind.attacker.example"}, http.StatusForbidden},
		{"same origin", "POST", "/v1/bans", map[string]string{"Origin": "http://127.0.0.1:9901"}, http.StatusCreated},
		{"same-origin fetch metadata", "POST", "/v1/bans", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusCreated},
		{"no origin (curl)", "POST", "/v1/bans", nil, http.StatusCreated},
		{"cross-origin read", "GET", "/v1/bans", map[string]string{"Origin": "http://rebind.attacker.example"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.method == "POST" && tc.path == "/v1/bans" {
				body = `{"ip":"203.0.113.1","duration":"1m"}`
			}
			r := adminRequest(tc.method, tc.path, strings.NewReader(body))
			r.Header.Set("Authorization", "Bearer ops-token")
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%s %s with %v = %d %s, want %d", tc.method, tc.path, tc.header, w.Code, w.Body, tc.want)
			}
		})
	}
	if _, banned := s.bans.Lookup(netip.MustParseAddr("203.0.113.1")); !banned {
		t.Error("no same-origin ban went through")
	}
}

// TestAdminLockout: one rule for the whole admin listener: a
// probe-jail ban locks nobody out of the API or the dashboard; an
// admin-jail ban locks the client out of both, and of /metrics, but not
// of /healthz.
func TestAdminLockout(t *testing.T) {
	t.Parallel()
	s, h, _ := newGateServer(t)
	get := func(path, client string) int {
		r := adminRequest("GET", path, nil)
		r.RemoteAddr = client + ":40000"
		r.Header.Set("Authorization", "Bearer ops-token")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	const prober, guesser = "198.51.100.20", "198.51.100.21"
	s.current.Load().jails.Report("probes", netip.MustParseAddr(prober), "probe")
	if b, banned := s.bans.Lookup(netip.MustParseAddr(prober)); !banned || b.Jail != "probes" {
		t.Fatalf("the probe jail did not ban %s: %+v", prober, b)
	}
	for _, tc := range []struct {
		path string
		want int
	}{{"/v1/bans", 200}, {"/ui/login", 200}, {"/metrics", 200}} {
		if got := get(tc.path, prober); got != tc.want {
			t.Errorf("GET %s from a client the probe jail banned = %d, want %d", tc.path, got, tc.want)
		}
	}
	s.current.Load().jails.Report(admin.Jail, netip.MustParseAddr(guesser), "bad admin token")
	for _, tc := range []struct {
		path string
		want int
	}{{"/v1/bans", 403}, {"/ui/login", 403}, {"/ui/", 403}, {"/metrics", 403}, {"/healthz", 200}} {
		if got := get(tc.path, guesser); got != tc.want {
			t.Errorf("GET %s from a client the admin jail banned = %d, want %d", tc.path, got, tc.want)
		}
	}
}

// TestAdminBodyLimit: a body over the admin API's bound is 413 with the
// JSON error (it was 400), whether Content-Length announces it
// or a chunked body runs over.
func TestAdminBodyLimit(t *testing.T) {
	t.Parallel()
	_, bansHandler, logs := newGateServer(t)
	sg, _ := newSignServer(t, "http://127.0.0.1:1")
	signHandler := sg.admin
	big := strings.Repeat(" ", admin.MaxBody) + `{"ip":"203.0.113.5","bucket":"media","key":"a"}`
	for _, tc := range []struct {
		name, path, token string
		h                 http.Handler
		chunked           bool
	}{
		{"bans, content-length", "/v1/bans", "ops-token", bansHandler, false},
		{"bans, chunked", "/v1/bans", "ops-token", bansHandler, true},
		{"sign, content-length", "/v1/sign/s3", tokenBackend, signHandler, false},
		{"sign, chunked", "/v1/sign/s3", tokenBackend, signHandler, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := adminRequest("POST", tc.path, strings.NewReader(big))
			if tc.chunked {
				r.ContentLength = -1
			}
			r.Header.Set("Authorization", "Bearer "+tc.token)
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, r)
			var e struct{ Error, Field string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); w.Code != http.StatusRequestEntityTooLarge || err != nil || e.Field != "body" {
				t.Fatalf("POST %s with %d bytes = %d %s, want 413 with field body", tc.path, len(big), w.Code, w.Body)
			}
		})
	}
	if !strings.Contains(logs.String(), `"status":413`) {
		t.Errorf("no audit line with status 413:\n%s", logs)
	}
	// At the bound exactly, the body is read.
	atBound := `{"ip":"203.0.113.5"}`
	atBound += strings.Repeat(" ", admin.MaxBody-len(atBound))
	if w, v := (adminCall{"POST", "/v1/bans", "ops-token", atBound}).do(t, bansHandler); w.Code != http.StatusCreated {
		t.Errorf("POST /v1/bans with %d bytes = %d %v, want 201", len(atBound), w.Code, v)
	}
}

// TestAdminBanFields: every validation error names its field, an unknown
// one included, and a duration over ten years is refused in every form
// ("100000d" as a string slipped past the cap).
func TestAdminBanFields(t *testing.T) {
	t.Parallel()
	_, h, _ := newGateServer(t)
	for _, tc := range []struct {
		name, body string
		want       int
		wantField  string
		wantErr    string
	}{
		{"unknown field", `{"ip":"203.0.113.8","forever":true}`, 400, "forever", "unknown field"},
		{"field in another case", `{"IP":"203.0.113.8"}`, 400, "IP", "unknown field"},
		{"field twice", `{"ip":"203.0.113.8","ip":"203.0.113.9"}`, 400, "ip", "given twice"},
		{"wrong type", `{"ip":7}`, 400, "ip", "want a JSON string"},
		{"not JSON", `ip=203.0.113.8`, 400, "body", "invalid JSON"},
		{"empty", ``, 400, "body", "empty body"},
		{"array", `[]`, 400, "body", "want a JSON object"},
		{"trailing data", `{"ip":"203.0.113.8"}{}`, 400, "body", "one JSON object"},
		{"string over the cap", `{"ip":"203.0.113.8","duration":"100000d"}`, 400, "duration", "more than the maximum ban of 3650d"},
		{"number over the cap", `{"ip":"203.0.113.8","duration":8640000000}`, 400, "duration", "more than the maximum ban of 3650d"},
		{"string just over the cap", `{"ip":"203.0.113.8","duration":"3650d1s"}`, 400, "duration", "more than the maximum ban"},
		{"number just over the cap", `{"ip":"203.0.113.8","duration":315360001}`, 400, "duration", "more than the maximum ban"},
		{"string beyond int64", `{"ip":"203.0.113.8","duration":"1000000d"}`, 400, "duration", "too large"},
		{"number beyond float", `{"ip":"203.0.113.8","duration":1e400}`, 400, "duration", ""},
		{"negative", `{"ip":"203.0.113.8","duration":-1}`, 400, "duration", "at least 0"},
		{"zero", `{"ip":"203.0.113.8","duration":0}`, 422, "duration", "greater than 0"},
		{"string at the cap", `{"ip":"203.0.113.8","duration":"3650d"}`, 201, "", ""},
		{"number at the cap", `{"ip":"203.0.113.9","duration":315360000}`, 201, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, v := (adminCall{"POST", "/v1/bans", "ops-token", tc.body}).do(t, h)
			if w.Code != tc.want {
				t.Fatalf("POST /v1/bans %s = %d %s, want %d", tc.body, w.Code, w.Body, tc.want)
			}
			if tc.want >= 400 && (v["field"] != tc.wantField || !strings.Contains(v["error"].(string), tc.wantErr)) {
				t.Errorf("POST /v1/bans %s = %v, want field %q and an error containing %q", tc.body, v, tc.wantField, tc.wantErr)
			}
		})
	}
}

// auditLine finds the last audit line of method path in a JSON log.
func auditLine(t *testing.T, logs, method, path string) map[string]any {
	t.Helper()
	var found map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "admin call" && m["method"] == method && m["path"] == path {
			found = m
		}
	}
	if found == nil {
		t.Fatalf("no audit line for %s %s in:\n%s", method, path, logs)
	}
	return found
}

// TestAdminAuditBans: audit lines of ban calls name the address or
// prefix, the duration asked and the result, refused calls included
// (resource was empty).
func TestAdminAuditBans(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	s, err := New(Options{Config: mustConfig(t, adminConfig),
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	h := s.admin
	for _, tc := range []struct {
		name     string
		call     adminCall
		want     int
		resource string
		banFor   string // "" : no ban_duration attribute
		result   string
	}{
		{"add", adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"203.0.113.7","duration":"2h"}`}, 201, "203.0.113.7/32", "2h", "ok"},
		{"add prefix, seconds", adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"198.51.100.0/24","duration":600}`}, 201, "198.51.100.0/24", "600", "ok"},
		{"add, default duration", adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"203.0.113.10"}`}, 201, "203.0.113.10/32", "", "ok"},
		{"allow-listed", adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"192.0.2.5","duration":"1h"}`}, 422, "192.0.2.5/32", "1h", "ip: 192.0.2.5/32 overlaps the allow list"},
		{"over the cap", adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"203.0.113.8","duration":"100000d"}`}, 400, "203.0.113.8/32", "100000d", "more than the maximum ban"},
		{"bad address", adminCall{"POST", "/v1/bans", "ops-token", `{"ip":"banana","duration":"1h"}`}, 422, "banana", "1h", `ip: "banana" is not an address`},
		{"missing scope", adminCall{"POST", "/v1/bans", "read-token", `{"ip":"203.0.113.9","duration":"1d"}`}, 403, "203.0.113.9/32", "1d", "lacks scope bans:write"},
		{"delete", adminCall{"DELETE", "/v1/bans/203.0.113.7", "ops-token", ""}, 204, "203.0.113.7/32", "", "ok"},
		{"delete, nothing", adminCall{"DELETE", "/v1/bans/203.0.113.7", "ops-token", ""}, 404, "203.0.113.7/32", "", "no ban for 203.0.113.7/32"},
		{"delete, missing scope", adminCall{"DELETE", "/v1/bans/198.51.100.0/24", "read-token", ""}, 403, "198.51.100.0/24", "", "lacks scope bans:write"},
		{"delete, no token", adminCall{"DELETE", "/v1/bans/198.51.100.0/24", "", ""}, 401, "198.51.100.0/24", "", "a bearer token is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.mu.Lock()
			logs.buf.Reset()
			logs.mu.Unlock()
			if w, _ := tc.call.do(t, h); w.Code != tc.want {
				t.Fatalf("%s %s = %d %s, want %d", tc.call.method, tc.call.path, w.Code, w.Body, tc.want)
			}
			line := auditLine(t, logs.String(), tc.call.method, tc.call.path)
			banFor, hasBanFor := line["ban_duration"]
			switch {
			case line["resource"] != tc.resource:
				t.Errorf("audit resource = %v, want %q; line %v", line["resource"], tc.resource, line)
			case tc.banFor != "" && banFor != tc.banFor, tc.banFor == "" && hasBanFor:
				t.Errorf("audit ban_duration = %v, want %q; line %v", banFor, tc.banFor, line)
			case !strings.Contains(line["result"].(string), tc.result):
				t.Errorf("audit result = %v, want it to contain %q; line %v", line["result"], tc.result, line)
			case line["status"] != float64(tc.want):
				t.Errorf("audit status = %v, want %d", line["status"], tc.want)
			}
		})
	}
}

// TestAdminAuditSignRefused: a signing call refused for its scope still
// names the resource asked for.
func TestAdminAuditSignRefused(t *testing.T) {
	t.Parallel()
	s, logs := newSignServer(t, "http://127.0.0.1:1")
	h := s.admin
	if code, _ := call(t, h, "/v1/sign/s3", tokenOps, `{"bucket":"media","key":"paid/a.mp4"}`, "192.0.2.1"); code != 403 {
		t.Fatalf("sign with a bans token = %d, want 403", code)
	}
	line := auditLine(t, logs.String(), "POST", "/v1/sign/s3")
	if line["resource"] != "s3://media/paid/a.mp4" || !strings.Contains(line["result"].(string), "lacks scope") {
		t.Errorf("audit line of a refused signing call = %v, want its resource and result", line)
	}
}
