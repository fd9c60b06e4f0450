package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"gatehouse/rules"
)

// TestChainOrder pins the order of the request chain, the gateway's
// security contract: first the lists themselves, then what the order
// means for requests that more than one stage would answer.
func TestChainOrder(t *testing.T) {
	t.Parallel()
	var names []string
	for _, st := range chain {
		names = append(names, st.name)
	}
	want := []string{"scope", "access_log", "client_ip", "ban_guard", "feeds", "rate_limit", "hygiene", "probes"}
	if !slices.Equal(names, want) {
		t.Errorf("chain = %q, want %q", names, want)
	}
	names = nil
	for _, st := range siteChain {
		names = append(names, st.name)
	}
	want = []string{"client_cert", "respond", "hotlink", "limit", "access", "geo", "signed_links", "basic_auth", "buffer_requests", "full_duplex"}
	if !slices.Equal(names, want) {
		t.Errorf("siteChain = %q, want %q", names, want)
	}

	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(up.Close)
	accessFile := filepath.Join(dir, "access.log")
	s, err := New(Options{Config: mustConfig(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
admin: {listen: "off"}
probes: {paths: ["/.env"], status: 404}
jails:
  probes: {maxretry: 1000, findtime: 10m, bantime: 1h}
  flood: {rate: 0.01, burst: 1, maxretry: 1000, findtime: 10m, bantime: 1h}
hosts:
  - match: [auth.example.com]
    upstreams: [%s]
    basic_auth: {htpasswd: %s}
    hotlink: {paths: [/media/], allow: [none, auth.example.com], action: {status: 410}}
    routes:
      - {paths: [/old/], respond: {status: 451}}
      - {paths: [/admin/], access: ["allow 10.0.0.0/8", "deny all"], limit: adm}
limits: {rates: {adm: {rate: 1r/m, delay: nodelay, key: "header:X-Key", status: 503}}}
log: {access: json, access_file: %s}
`, up.URL, users, accessFile))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopSink := context.WithCancel(t.Context())
	sinkDone := make(chan struct{})
	go func() { s.sinks.Run(ctx); close(sinkDone) }()

	banned := "203.0.113.66"
	if _, err := s.bans.Ban(rules.Ban{Prefix: netip.MustParsePrefix(banned + "/32"), Until: time.Now().Add(time.Hour), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	probes := func() uint64 { return s.current.Load().jails.Offences("probes") }

	// Each client is new (the flood jail's bucket holds one request), but
	// the rate_limit case's.
	for i, tc := range []struct {
		name           string
		client, host   string
		target         string
		referer        string
		wantStatus     int
		wantNoAuth     bool   // the answer must not ask for credentials
		wantProbeCount uint64 // offences in the probes jail after the request
	}{
		{name: "ban_guard before basic_auth", client: banned, host: "auth.example.com", target: "/",
			wantStatus: http.StatusForbidden, wantNoAuth: true},
		{name: "ban_guard before probes", client: banned, host: "auth.example.com", target: "/.env",
			wantStatus: http.StatusForbidden, wantNoAuth: true},
		{name: "probes before basic_auth", client: "203.0.113.1", host: "auth.example.com", target: "/.env",
			wantStatus: http.StatusNotFound, wantNoAuth: true, wantProbeCount: 1},
		{name: "probes before the host router", client: "203.0.113.2", host: "unknown.example.net", target: "/.env",
			wantStatus: http.StatusNotFound, wantProbeCount: 2},
		{name: "hygiene before probes and basic_auth", client: "203.0.113.3", host: "auth.example.com", target: "/.env/%2e%2e/%2e%2e/x",
			wantStatus: http.StatusBadRequest, wantNoAuth: true, wantProbeCount: 3},
		{name: "hotlink before basic_auth", client: "203.0.113.4", host: "auth.example.com", target: "/media/a.mp4",
			referer: "https://elsewhere.example.org/", wantStatus: http.StatusGone, wantNoAuth: true, wantProbeCount: 3},
		{name: "respond before basic_auth", client: "203.0.113.7", host: "auth.example.com", target: "/old/x",
			wantStatus: http.StatusUnavailableForLegalReasons, wantNoAuth: true, wantProbeCount: 3},
		{name: "access before basic_auth", client: "203.0.113.8", host: "auth.example.com", target: "/admin/",
			wantStatus: http.StatusForbidden, wantNoAuth: true, wantProbeCount: 3},
		// One X-Key, two clients: the second is over the limit, which
		// answers before access would deny it.
		{name: "limit before access", client: "203.0.113.9", host: "auth.example.com", target: "/admin/x",
			wantStatus: http.StatusServiceUnavailable, wantNoAuth: true, wantProbeCount: 3},
		{name: "basic_auth before the upstream", client: "203.0.113.5", host: "auth.example.com", target: "/",
			wantStatus: http.StatusUnauthorized, wantProbeCount: 3},
		{name: "the host router answers unknown hosts", client: "203.0.113.6", host: "unknown.example.net", target: "/",
			wantStatus: http.StatusMisdirectedRequest, wantProbeCount: 3},
		// The same client again, over its flood bucket, with a malformed
		// request: rate_limit answers before hygiene, which would count
		// a probe.
		{name: "rate_limit before hygiene", client: "203.0.113.6", host: "auth.example.com", target: "/.env/%2e%2e/%2e%2e/x",
			wantStatus: http.StatusTooManyRequests, wantNoAuth: true, wantProbeCount: 3},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://"+tc.host+tc.target, nil)
		r.RemoteAddr = tc.client + ":40000"
		if strings.HasPrefix(tc.target, "/admin/") {
			r.Header.Set("X-Key", "k1")
		}
		if tc.referer != "" {
			r.Header.Set("Referer", tc.referer)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != tc.wantStatus {
			t.Errorf("%d %s: status %d, want %d", i, tc.name, w.Code, tc.wantStatus)
		}
		if tc.wantNoAuth && w.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("%d %s: the answer asks for credentials", i, tc.name)
		}
		if got := probes(); got != tc.wantProbeCount {
			t.Errorf("%d %s: probes jail has %d offences, want %d", i, tc.name, got, tc.wantProbeCount)
		}
	}

	// access_log is outside every stage that answers: it saw each answer.
	stopSink()
	<-sinkDone
	f, err := os.Open(accessFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var statuses []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct{ Status int }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("access log line %q: %v", sc.Text(), err)
		}
		statuses = append(statuses, line.Status)
	}
	want2 := []int{403, 403, 404, 404, 400, 410, 451, 403, 503, 401, 421, 429}
	if !slices.Equal(statuses, want2) {
		t.Errorf("access log statuses = %v, want %v", statuses, want2)
	}
}
