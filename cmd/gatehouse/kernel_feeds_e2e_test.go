//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/testenv"
)

// TestKernelFeeds: a drop feed's sources are dropped by the kernel, with
// ipset and with nftables; a changed list moves the drop to its new
// entries; and without a firewall the HTTP path closes a listed direct
// client's connection without an answer.
func TestKernelFeeds(t *testing.T) {
	for _, bk := range []struct {
		name   string
		tools  []string
		subnet int
	}{
		{"ipset", []string{"ipset", "iptables"}, 21},
		{"nftables", []string{"nft"}, 22},
		{"none", nil, 23},
	} {
		t.Run(bk.name, func(t *testing.T) {
			t.Parallel()
			testenv.Netns(t, bk.tools...)
			p := newNetnsPair(t, bk.subnet)
			list := writeFile(t, "blocked.txt", "# feed\n"+p.cliIP+"\n198.51.100.0/24\n")
			cfg := writeFile(t, "gatehouse.yaml", fmt.Sprintf(`listen: {http: "%s:8080"}
hosts:
  - match: ["%s"]
    upstreams: [http://127.0.0.1:1]
intel:
  feeds:
    - {name: local, file: %s}
firewall: {backend: %s, ports: [8080], reconcile: 1s}
admin: {listen: "127.0.0.1:9901"}
log: {level: debug}
`, p.srvIP, p.srvIP, list, bk.name))
			serveInNetns(t, p.srv, cfg)
			waitFor(t, "gateway up", func() bool { return connects(p, p.other) })

			if bk.name == "none" {
				// Over HTTP: the listed client's connection is closed
				// without an answer; the other address is served.
				conn, err := dialFrom(p.cli, p.cliIP, p.srvIP+":8080", 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", p.srvIP)
				if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
					t.Errorf("listed client got an answer: %s", resp.Status)
				}
				if code := getFrom(t, p, p.other, "/"); code != http.StatusBadGateway {
					t.Errorf("unlisted client: %d, want 502 (the upstream is down)", code)
				}
				return
			}
			waitFor(t, "the listed client dropped by the kernel", func() bool { return !connects(p, p.cliIP) })
			if !connects(p, p.other) {
				t.Fatal("an unlisted address is dropped too")
			}
			// The list changes: the drop follows it.
			if err := os.WriteFile(list, []byte(p.other+"/32\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the drop moved to the new entry", func() bool { return !connects(p, p.other) && connects(p, p.cliIP) })
			// firewall status lists the feed set.
			out := nsOutput(t, p.srv, gatehouseBin, "firewall", "status", "-c", cfg)
			if !strings.Contains(out, "local") {
				t.Errorf("firewall status does not list the feed:\n%s", out)
			}
		})
	}
}
