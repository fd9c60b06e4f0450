//go:build linux

package main

import (
	"gatehouse/rules/testenv"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestAttackSmoke runs `attack` in smoke mode (a few scanners for a
// couple of seconds) against gatehouse with each kernel backend, in
// namespaces the run creates, and checks what it reports: legit
// throughput measured, every scanner answered at least maxretry times
// (its probes were served, then it was banned) and every scanner in the
// kernel set once the flood is over. It needs root.
func TestAttackSmoke(t *testing.T) {
	testenv.Root(t) // network namespaces, kernel sets
	for _, tool := range []string{"wrk", "ip", "ipset", "iptables", "nft"} {
		testenv.Tool(t, tool)
	}
	bench, gatehouse := binaries(t)
	const scanners, maxRetry = 6, 3
	out, log := runTool(t, bench, "attack", "-gatehouse", gatehouse, "-dir", t.TempDir(), "-firewall", "ipset,nftables",
		"-scanners", "6", "-maxretry", "3")

	legit := mdTable(t, out, "### Legit client")
	scan := mdTable(t, out, "### Scanners")
	cpu := mdTable(t, out, "### CPU per legit request")
	for _, label := range []string{"gatehouse (ipset)", "gatehouse (nftables)"} {
		l, ok := legit[label]
		if !ok || strings.HasPrefix(l[1], "FAILED") {
			t.Errorf("row %q not measured: %q\n%s\n%s", label, l, out, log)
			continue
		}
		// row | clean req/s | during flood req/s | during ÷ clean | after req/s | after ÷ clean | p99 | errors
		if clean, flood := num(t, l, 1), num(t, l, 2); clean <= 0 || flood <= 0 {
			t.Errorf("row %q: legit req/s clean %v, during flood %v: want > 0", label, clean, flood)
		}
		s := scan[label]
		// row | 50 % | 95 % | 100 % | banning answer → set median / p95 | in set after | answers mean / p95 / max | answered | failed / pending
		if got := num(t, s, 5); got != scanners {
			t.Errorf("row %q: %v scanners in the kernel set after the flood, want all %d\n%s", label, got, scanners, log)
		}
		if t95 := num(t, s, 2); t95 < 0 {
			t.Errorf("row %q: 95 %% banned after %v s, want a time ≥ 0", label, t95)
		}
		if lat := num(t, s, 4); lat < 0 {
			t.Errorf("row %q: banning answer → kernel set %v s, want ≥ 0", label, lat)
		}
		answers := strings.Fields(s[6]) // "mean / p95 / max"
		if len(answers) != 5 {
			t.Fatalf("row %q: answers cell %q", label, s[6])
		}
		if mean := num(t, []string{label, answers[0]}, 1); mean < maxRetry {
			t.Errorf("row %q: %v answers per scanner on average, want at least maxretry (%d): the probes before the ban", label, mean, maxRetry)
		}
		c := cpu[label]
		if us := num(t, c, 1); us <= 0 {
			t.Errorf("row %q: %v µs CPU per clean legit request, want > 0", label, us)
		}
	}
	if strings.Contains(out, "nginx") && strings.Contains(out, "| nginx") {
		t.Errorf("smoke mode ran nginx rows:\n%s", out)
	}
	// Everything is cleaned up: no namespace of this process is left.
	nsOut, err := runCmd(t.Context(), placement{}, "ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(nsOut, netnsPrefix+strconv.Itoa(os.Getpid())+"-") {
		t.Errorf("namespaces left after the run:\n%s", nsOut)
	}
}
