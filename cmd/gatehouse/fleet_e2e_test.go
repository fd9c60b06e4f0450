package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/fleet/fleettest"
)

// fleetNodeConfig is the config of one fleet node: its own state_dir,
// the fleet's Redis, the test client trusted to set X-Forwarded-For (so
// one test process can be many clients), probes counted by a jail that
// is shared when shared is set.
func fleetNodeConfig(t *testing.T, redisAddr, node, prefix, upstream string, shared bool) string {
	t.Helper()
	share := "[]"
	if shared {
		share = "[probes]"
	}
	return fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
state_dir: %s
trusted_proxies: [127.0.0.1/32]
`+opsAdmin+`hosts:
  - match: [www.test]
    upstreams: [%s]
probes: {presets: [wordpress, secrets]}
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: 1h}
fleet:
  redis: redis://%s/0
  prefix: %s
  node: %s
  share_jails: %s
`, filepath.Join(t.TempDir(), "state"), upstream, redisAddr, prefix, node, share)
}

// asClient sends GET path to g as client ip (X-Forwarded-For from the
// trusted loopback) and returns the status.
func asClient(t *testing.T, g *gateway, ip, path string) int {
	t.Helper()
	req, err := g.newRequest(t.Context(), http.MethodGet, "www.test", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", ip)
	resp, _ := g.mustDo(t, req)
	return resp.StatusCode
}

// adminCall sends an authenticated admin API request and returns the
// status and body.
func adminCall(t *testing.T, g *gateway, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+g.adminAddr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer ops-token")
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

func adminBan(t *testing.T, g *gateway, ip string) {
	t.Helper()
	if code, body := adminCall(t, g, http.MethodPost, "/v1/bans", map[string]any{"ip": ip, "duration": "1h", "reason": "fleet e2e"}); code != http.StatusCreated {
		t.Fatalf("POST /v1/bans %s = %d %s, want 201", ip, code, body)
	}
}

func adminUnban(t *testing.T, g *gateway, ip string) {
	t.Helper()
	if code, body := adminCall(t, g, http.MethodDelete, "/v1/bans/"+ip, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE /v1/bans/%s = %d %s, want 204", ip, code, body)
	}
}

// listedBans returns the addresses g's admin API lists as banned, sorted.
func listedBans(t *testing.T, g *gateway) []string {
	t.Helper()
	code, body := adminCall(t, g, http.MethodGet, "/v1/bans", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/bans = %d %s", code, body)
	}
	var bans []struct {
		IP string `json:"ip"`
	}
	if err := json.Unmarshal(body, &bans); err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(bans))
	for _, b := range bans {
		out = append(out, b.IP)
	}
	slices.Sort(out)
	return out
}

// waitUntil polls cond every poll interval until it holds, failing the
// test after timeout.
func waitUntil(t *testing.T, g *gateway, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		g.pause(t)
	}
}

// TestFleet runs three gateways on one Redis: bans made on one node
// answer 403 on the others (with the propagation latency logged),
// probes spread over the nodes add up in the shared jail, an outage of
// Redis with bans and an unban made meanwhile ends, after Redis comes
// back empty, with every node holding the same bans, and a node started
// late gets exactly the live bans.
func TestFleet(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	up := newEchoUpstream(t, "app")
	var nodes []*gateway
	for _, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, startGateway(t, fleetNodeConfig(t, r.Addr, name, "e2e", up.URL(), true)))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, g := range nodes {
		waitUntil(t, g, startTimeout, "redis up", func() bool { return g.metric(t, "gatehouse_fleet_redis_up") == 1 })
	}

	// Propagation: 50 bans on A, each must answer 403 on B and C.
	var latencies []time.Duration
	want := []string{}
	for i := range 50 {
		ip := fmt.Sprintf("198.51.100.%d", i+1)
		if got := asClient(t, b, ip, "/"); got != http.StatusOK {
			t.Fatalf("%s on b before the ban: %d, want 200", ip, got)
		}
		start := time.Now()
		adminBan(t, a, ip)
		for _, g := range []*gateway{b, c} {
			deadline := time.Now().Add(waitTimeout)
			for asClient(t, g, ip, "/") != http.StatusForbidden {
				if time.Now().After(deadline) {
					t.Fatalf("ban of %s made on a: no 403 on another node within %s", ip, waitTimeout)
				}
			}
		}
		latencies = append(latencies, time.Since(start))
		want = append(want, ip)
	}
	slices.Sort(latencies)
	t.Logf("ban propagation A → B and C over %d bans (admin call to 403 on both, polling): p50 %s, p99 %s, max %s",
		len(latencies), latencies[len(latencies)/2], latencies[len(latencies)*99/100], latencies[len(latencies)-1])

	// Shared jail: one probe per node, maxretry 3: banned everywhere.
	const prober = "203.0.113.50"
	for i, g := range nodes {
		if got := asClient(t, g, prober, "/wp-login.php"); got != http.StatusForbidden {
			t.Fatalf("probe %d on node %d: %d, want 403", i+1, i, got)
		}
	}
	for _, g := range nodes {
		waitUntil(t, g, waitTimeout, "the prober banned", func() bool { return asClient(t, g, prober, "/") == http.StatusForbidden })
	}
	want = append(want, prober)

	// Redis dies; bans and an unban are made on different nodes meanwhile.
	r.Kill()
	for _, g := range nodes {
		waitUntil(t, g, waitTimeout, "redis seen down", func() bool { return g.metric(t, "gatehouse_fleet_redis_up") == 0 })
	}
	adminBan(t, a, "192.0.2.101")
	adminBan(t, b, "192.0.2.102")
	adminUnban(t, c, "198.51.100.1")
	if got := asClient(t, a, "192.0.2.101", "/"); got != http.StatusForbidden {
		t.Errorf("ban made on a during the outage: %d on a, want 403 at once", got)
	}
	// The unban reaches the outbox asynchronously, after the API answered.
	waitUntil(t, c, waitTimeout, "c's unban waiting in its outbox during the outage", func() bool {
		return c.metric(t, "gatehouse_fleet_outbox_entries") >= 1
	})
	want = slices.DeleteFunc(want, func(ip string) bool { return ip == "198.51.100.1" })
	want = append(want, "192.0.2.101", "192.0.2.102")
	slices.Sort(want)

	r.Restart() // empty
	for i, g := range nodes {
		waitUntil(t, g, 3*waitTimeout, fmt.Sprintf("node %d converged", i), func() bool { return slices.Equal(listedBans(t, g), want) })
		waitUntil(t, g, 3*waitTimeout, fmt.Sprintf("node %d's outbox empty", i), func() bool {
			return g.metric(t, "gatehouse_fleet_outbox_entries") == 0
		})
		if got := asClient(t, g, "198.51.100.1", "/"); got != http.StatusOK {
			t.Errorf("node %d: the address unbanned during the outage answers %d, want 200", i, got)
		}
	}

	// A node started late ends with exactly the live bans.
	late := startGateway(t, fleetNodeConfig(t, r.Addr, "late", "e2e", up.URL(), true))
	waitUntil(t, late, 3*waitTimeout, "the late node has the live bans", func() bool { return slices.Equal(listedBans(t, late), want) })

	// Every node's heartbeat is back in the emptied Redis.
	var out string
	waitUntil(t, a, waitTimeout, "four nodes in fleet status", func() bool {
		var errOut string
		var code int
		out, errOut, code = runGatehouse(t, "fleet", "status", "-c", a.cfgPath)
		if code != 0 {
			t.Fatalf("fleet status = %d, %q", code, errOut)
		}
		for _, name := range []string{"a", "b", "c", "late"} {
			if !strings.Contains(out, "\n"+name+" ") {
				return false
			}
		}
		return true
	})
	if !strings.Contains(out, `fleet "e2e": epoch `) || !strings.Contains(out, "NODE") {
		t.Errorf("fleet status output:\n%s", out)
	}
	t.Logf("gatehouse fleet status:\n%s", out)
}

// TestFleetUnsharedJail: with share_jails empty, probes spread one per
// node are counted per node and ban nobody, while bans still propagate.
func TestFleetUnsharedJail(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	up := newEchoUpstream(t, "app")
	var nodes []*gateway
	for _, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, startGateway(t, fleetNodeConfig(t, r.Addr, name, "e2e", up.URL(), false)))
	}
	for _, g := range nodes {
		waitUntil(t, g, startTimeout, "redis up", func() bool { return g.metric(t, "gatehouse_fleet_redis_up") == 1 })
	}
	const prober = "203.0.113.60"
	for i, g := range nodes {
		if got := asClient(t, g, prober, "/wp-login.php"); got != http.StatusForbidden {
			t.Fatalf("probe on node %d: %d, want 403", i, got)
		}
	}
	// Local jails count synchronously: the answers above came after the
	// counting, and a ban would have been made already.
	for i, g := range nodes {
		if got := asClient(t, g, prober, "/"); got != http.StatusOK {
			t.Errorf("node %d: one probe per node banned the client (%d) with share_jails off", i, got)
		}
	}
	// The fleet itself works: a manual ban still reaches every node.
	adminBan(t, nodes[0], "203.0.113.61")
	for _, g := range nodes[1:] {
		waitUntil(t, g, waitTimeout, "the manual ban", func() bool { return asClient(t, g, "203.0.113.61", "/") == http.StatusForbidden })
	}
	// And the local jail still bans on its own count.
	for range 2 {
		asClient(t, nodes[0], prober, "/.env")
	}
	if got := asClient(t, nodes[0], prober, "/"); got != http.StatusForbidden {
		t.Errorf("three probes on one node: %d, want 403", got)
	}
}
