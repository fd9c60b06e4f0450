package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/fleet/fleettest"
)

// TestFleetACMEWithPebble: three nodes with fleet.certificates share
// certmagic's storage in Redis. Pebble resolves the name to node a only;
// whichever node obtains the certificate, a answers the challenge from
// the shared storage. There is one issuance, and all three nodes serve
// the same certificate.
func TestFleetACMEWithPebble(t *testing.T) {
	t.Parallel()
	httpPort, httpsPort := freePort(t), freePort(t)
	dns := startDNS(t, "good.test")
	pb := startPebble(t, dns, httpPort, httpsPort)
	r := fleettest.Start(t)
	up := newEchoUpstream(t, "app")
	// c starts first and normally takes the issuance lock, while the
	// name resolves to a's address only: a must answer the CA's challenge
	// from the shared storage.
	nodes := make([]*gateway, 3)
	for i := 2; i >= 0; i-- {
		name := string(rune('a' + i))
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		nodes[i] = startGateway(t, fmt.Sprintf(`listen:
  http: %s:%d
  https: %s:%d
admin:
  listen: 127.0.0.1:0
state_dir: %s
tls:
  acme:
    email: ops@good.test
    ca: %s
    ca_root: %s
hosts:
  - match: [good.test]
    upstreams: [%s]
fleet:
  redis: redis://%s/0
  prefix: acme
  node: %s
  certificates: true
`, ip, httpPort, ip, httpsPort, t.TempDir(), pb.dir, pb.caPEM, up.URL(), r.Addr, name))
	}
	serials := map[string]string{}
	for i, g := range nodes {
		deadline := time.Now().Add(120 * time.Second)
		for {
			st, err := handshake(g.httpsAddr, "good.test", pb.roots, nil)
			if err == nil && len(st.VerifiedChains) > 0 {
				serials[g.httpsAddr] = st.PeerCertificates[0].SerialNumber.String()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: no certificate for good.test from Pebble within 120s: %v", i, err)
			}
			g.pause(t)
		}
	}
	var first string
	for addr, s := range serials {
		if first == "" {
			first = s
		}
		if s != first {
			t.Errorf("node at %s serves serial %s, another %s: want one certificate for the fleet", addr, s, first)
		}
	}
	obtained, by := 0, ""
	for i, g := range nodes {
		if n := strings.Count(g.stderr.String(), `msg="certificate obtained"`); n > 0 {
			obtained += n
			by = string(rune('a' + i))
		}
	}
	if obtained != 1 {
		t.Errorf("%d issuances logged across the fleet, want 1", obtained)
	}
	t.Logf("one certificate, serial %s, obtained by node %s, served by %d nodes", first, by, len(serials))
}
