//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gatehouse/rules/testenv"
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
		// row | 95 % banning answer | 50 % | 95 % | 100 % | banning answer → set median / p95 | in set after | answers mean / p95 / max | beyond maxretry | answered | failed / pending | entries | SYNs dropped
		if nth := num(t, s, 1); nth <= 0 {
			t.Errorf("row %q: 95 %% had their banning answer after %v s, want > 0", label, nth)
		}
		if got := num(t, s, 6); got != scanners {
			t.Errorf("row %q: %v scanners in the kernel set after the flood, want all %d\n%s", label, got, scanners, log)
		}
		if t95 := num(t, s, 3); t95 < 0 {
			t.Errorf("row %q: 95 %% banned after %v s, want a time ≥ 0", label, t95)
		}
		if lat := num(t, s, 5); lat < 0 {
			t.Errorf("row %q: banning answer → kernel set %v s, want ≥ 0", label, lat)
		}
		answers := strings.Fields(s[7]) // "mean / p95 / max"
		if len(answers) != 5 {
			t.Fatalf("row %q: answers cell %q", label, s[7])
		}
		if mean := num(t, []string{label, answers[0]}, 1); mean < maxRetry {
			t.Errorf("row %q: %v answers per scanner on average, want at least maxretry (%d): the probes before the ban", label, mean, maxRetry)
		}
		// answers beyond maxretry, mean / p95 / max
		if beyond := num(t, s, 8); beyond < 0 {
			t.Errorf("row %q: %v answers beyond maxretry, want ≥ 0", label, beyond)
		}
		// One entry per scanner: each is banned alone, nothing else is.
		if entries := num(t, s, 11); entries != scanners {
			t.Errorf("row %q: %v kernel entries after the flood, want %d (one per scanner)", label, entries, scanners)
		}
		if drops := num(t, s, 12); drops < 0 {
			t.Errorf("row %q: %v SYNs dropped, want a count", label, drops)
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

// TestAttackRotateSmoke runs `attack -ipv6-rotate` in smoke mode: a few
// IPv6 attackers, each from its own /48, a fresh address per probe and
// a fresh /64 every maxretry probes, against gatehouse with each kernel
// backend. With prefix escalation (when the gatehouse under test has
// it) every /48 must be cut off: one kernel entry covers it, and its
// /64 entries are gone. Without it, the /64s are banned but no /48 is
// ever covered, which pins that member entries do not count as a cut
// off. It needs root.
func TestAttackRotateSmoke(t *testing.T) {
	testenv.Root(t) // network namespaces, kernel sets
	for _, tool := range []string{"wrk", "ip", "ipset", "iptables", "ip6tables", "nft"} {
		testenv.Tool(t, tool)
	}
	bench, gatehouse := binaries(t)
	const attackers, maxRetry = 4, 3
	escalate := escalationSupported(t, gatehouse)
	t.Logf("prefix escalation in the gatehouse under test: %v", escalate)
	out, log := runTool(t, bench, "attack", "-gatehouse", gatehouse, "-dir", t.TempDir(), "-firewall", "ipset,nftables",
		"-ipv6-rotate", "-escalate="+strconv.FormatBool(escalate), "-scanners", strconv.Itoa(attackers), "-maxretry", strconv.Itoa(maxRetry),
		// Escalation takes five banned /64s, 15 answers per /48: room
		// for them on a busy machine.
		"-flood", "4s")
	legit := mdTable(t, out, "### Legit client")
	v6 := mdTable(t, out, "### IPv6 attackers, per /48")
	for _, label := range []string{"gatehouse (ipset)", "gatehouse (nftables)"} {
		if l, ok := legit[label]; !ok || strings.HasPrefix(l[1], "FAILED") {
			t.Errorf("row %q not measured: %q\n%s\n%s", label, l, out, log)
			continue
		}
		a := v6[label]
		// row | 50 % | 95 % | 100 % | cut off after | answers mean / p95 / max | /64s per /48 | last answer | answered | failed / pending | kernel entries | SYNs dropped
		if nets := num(t, a, 6); nets < 2 {
			t.Errorf("row %q: %v /64s per /48, want at least 2 (the attackers rotate)", label, nets)
		}
		if mean := num(t, a, 5); mean < maxRetry {
			t.Errorf("row %q: %v answers per /48, want at least maxretry (%d): a /64's probes before its ban", label, mean, maxRetry)
		}
		cut, entries := num(t, a, 4), num(t, a, 10)
		if escalate {
			if cut != attackers {
				t.Errorf("row %q: %v of %d /48s cut off after the flood, want all (escalation)\n%s", label, cut, attackers, log)
			}
			// after: 5 banned /64s per /48, replaced by one entry.
			if entries >= 5*attackers {
				t.Errorf("row %q: %v kernel entries after the flood, want fewer than the %d /64s escalation replaces", label, entries, 5*attackers)
			}
			continue
		}
		if cut != 0 {
			t.Errorf("row %q: %v /48s cut off without escalation, want 0: /64 entries must not count as covering the /48", label, cut)
		}
		if entries < attackers {
			t.Errorf("row %q: %v kernel entries after the flood, want at least one banned /64 per attacker (%d)\n%s", label, entries, attackers, log)
		}
	}
}

// escalationSupported reports whether gatehouse accepts the attack
// config with prefix escalation on the probes jail.
func escalationSupported(t *testing.T, gatehouse string) bool {
	t.Helper()
	dir := t.TempDir()
	conf, err := renderTemplate("attack.yaml", map[string]string{
		"BENCH_LISTEN": ":80", "BENCH_UPSTREAM": "http://" + attackUpAddr, "BENCH_STATE_DIR": filepath.Join(dir, "state"),
		"BENCH_LEGIT_IP": attackLegitIP, "BENCH_HOST": attackSrvIP, "BENCH_FIREWALL": "ipset", "BENCH_MAXRETRY": "3",
		"BENCH_ACCESS_LOG": filepath.Join(dir, "access.log"), "BENCH_ESCALATE": ", " + attackEscalate,
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gatehouse, "check", "-c", path).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "escalate") {
		t.Fatalf("gatehouse check of the attack config: %v\n%s", err, out)
	}
	return err == nil
}
