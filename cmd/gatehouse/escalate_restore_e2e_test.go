package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A network escalated before a restart that now holds an allowed address
// comes back as the pieces of it outside allow: the allowed address is
// served, its attacking neighbours stay banned (their own bans were
// replaced by the network's, so dropping it would have freed them).
func TestEscalatedBanRestoredAroundAllow(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	state := t.TempDir() + "/state"
	conf := func(allow string) string {
		return fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
state_dir: %s
trusted_proxies: [127.0.0.1/32]
%shosts:
  - match: [www.test]
    upstreams: [%s]
probes: {presets: [secrets]}
jails:
  probes: {maxretry: 1, findtime: 10m, bantime: 1h, escalate: {ipv4: 24, after: 3}}
log: {level: debug}
`, state, allow, up.URL())
	}
	status := func(g *gateway, client, path string) int {
		t.Helper()
		req, err := g.newRequest(context.Background(), http.MethodGet, "www.test", path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", client)
		resp, _ := g.mustDo(t, req)
		return resp.StatusCode
	}
	g := startGateway(t, conf(""))
	for _, c := range []string{"192.0.3.1", "192.0.3.2", "192.0.3.3"} {
		status(g, c, "/.env")
	}
	if got := status(g, "192.0.3.77", "/"); got != http.StatusForbidden {
		t.Fatalf("a neighbour after the escalation: %d, want 403", got)
	}
	g.waitLog(t, waitTimeout, "the network written", func(log string) bool {
		return strings.Contains(log, `msg="ban store batch written"`) && strings.Contains(log, "192.0.3.0/24")
	})
	g.stop()

	g2 := startGateway(t, conf("allow: [192.0.3.50/32]\n"))
	g2.waitLog(t, waitTimeout, "restored around allow", func(log string) bool {
		return strings.Contains(log, `msg="saved ban restored around the allow list"`) && strings.Contains(log, "pieces=8")
	})
	for _, tc := range []struct {
		client string
		want   int
	}{
		{"192.0.3.50", http.StatusOK},
		{"192.0.3.1", http.StatusForbidden},
		{"192.0.3.51", http.StatusForbidden},
		{"192.0.3.200", http.StatusForbidden},
		{"192.0.4.1", http.StatusOK},
	} {
		if got := status(g2, tc.client, "/"); got != tc.want {
			t.Errorf("after restart with %s allowed: %s gets %d, want %d", "192.0.3.50", tc.client, got, tc.want)
		}
	}
}
