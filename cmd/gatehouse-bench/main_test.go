package main

import (
	"bytes"
	"context"
	"fmt"
	"gatehouse/rules/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The smoke tests run the real tool: TestMain's directory holds a
// gatehouse-bench and a gatehouse built once, with the flags `make
// bench-compare` uses (-trimpath, no -race: the helpers and the proxy are
// measured, and race-instrumented servers are ten times slower), so they
// share its build cache.
func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gatehouse-bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	builds.dir = dir
	return m.Run()
}

var builds struct {
	dir              string // made and removed by TestMain
	once             sync.Once
	bench, gatehouse string
	err              error
}

// binaries builds gatehouse-bench and gatehouse once for the package's
// tests.
func binaries(t *testing.T) (bench, gatehouse string) {
	t.Helper()
	builds.once.Do(func() {
		build := func(dir, pkg, out string) error {
			cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
			cmd.Dir = dir
			if msg, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
			}
			return nil
		}
		bench := filepath.Join(builds.dir, "gatehouse-bench")
		gatehouse := filepath.Join(builds.dir, "gatehouse")
		if builds.err = build(".", ".", bench); builds.err != nil {
			return
		}
		if builds.err = build(filepath.Join("..", ".."), "./cmd/gatehouse", gatehouse); builds.err != nil {
			return
		}
		builds.bench, builds.gatehouse = bench, gatehouse
	})
	if builds.err != nil {
		t.Fatal(builds.err)
	}
	return builds.bench, builds.gatehouse
}

// mdTable returns the rows of the Markdown table that follows the line
// starting with header (the table's header row when header starts with
// "|"), each split into trimmed cells, keyed by the first cell.
func mdTable(t *testing.T, md, header string) map[string][]string {
	t.Helper()
	lines := strings.Split(md, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, header) {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("no table after %q in:\n%s", header, md)
	}
	rows := map[string][]string{}
	for _, l := range lines[start+1:] {
		if !strings.HasPrefix(l, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		if strings.HasPrefix(l, "|---") || strings.HasPrefix(l, "| row ") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[cells[0]] = cells
	}
	return rows
}

// num reads the leading number of a table cell: "134.9 (120.1–140.2)",
// "1.07×", "8 of 8".
func num(t *testing.T, row []string, col int) float64 {
	t.Helper()
	if col >= len(row) {
		t.Fatalf("row %q has no column %d", row[0], col)
	}
	f := strings.Fields(strings.TrimSuffix(row[col], "×"))
	if len(f) == 0 {
		t.Fatalf("row %q column %d is empty", row[0], col)
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "×"), 64)
	if err != nil {
		t.Fatalf("row %q column %d = %q: not a number", row[0], col, row[col])
	}
	return v
}

// runTool runs the gatehouse-bench binary in smoke mode.
func runTool(t *testing.T, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "BENCH_SMOKE=1")
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) } // it cleans up on SIGTERM
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("gatehouse-bench %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "compare") {
		t.Errorf("run() = %d, stderr %q; want 2 and the usage", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"compare", "-runs", "0"}, &out, &errb); code != 2 {
		t.Errorf("compare -runs 0: exit %d, want 2 (usage); stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

// TestCompareSmoke runs `compare` in smoke mode against a gatehouse
// built from this repository and checks that every gatehouse row and the
// bare Go row were measured, with sane positive numbers: the HTTP/1.1
// rows with the paired auth rows, the HTTP/2 row and the TLS handshake
// rows.
func TestCompareSmoke(t *testing.T) {
	testenv.Tool(t, "wrk")
	testenv.Tool(t, "h2load")
	bench, gatehouse := binaries(t)
	out, log := runTool(t, bench, "compare", "-gatehouse", gatehouse, "-dir", t.TempDir(), "-tls-c", "2")
	rows := mdTable(t, out, "| row | CPU µs/req | CPU vs bare Go")
	for _, label := range []string{labelBare + " (ref)", labelPlain, labelFull, labelAuth, labelFullAuth, labelPairOpen, labelPairAuth} {
		r, ok := rows[label]
		if !ok {
			t.Errorf("no row %q in:\n%s\n%s", label, out, log)
			continue
		}
		if strings.HasPrefix(r[1], "FAILED") {
			t.Errorf("row %q: %s\n%s", label, r[1], log)
			continue
		}
		// row | CPU µs/req | CPU vs bare | req/s | req/s vs bare | p50 | p99 | proxy CPU % | load CPU % | errors | RSS idle | RSS
		cpu, rps, p50, p99 := num(t, r, 1), num(t, r, 3), num(t, r, 5), num(t, r, 6)
		if cpu <= 0 || cpu > 1e6 {
			t.Errorf("row %q: CPU µs/req = %v, want a positive number below a second", label, cpu)
		}
		if rps <= 0 {
			t.Errorf("row %q: req/s = %v, want > 0", label, rps)
		}
		if p50 <= 0 || p99 < p50 {
			t.Errorf("row %q: p50 %v ms, p99 %v ms: want 0 < p50 ≤ p99", label, p50, p99)
		}
		if ratio := num(t, r, 2); ratio <= 0 {
			t.Errorf("row %q: CPU ratio %v, want > 0", label, ratio)
		}
		if errs := num(t, r, 9); errs != 0 {
			t.Errorf("row %q: %v wrk errors (non-2xx answers or socket errors), want 0", label, errs)
		}
		if idle, rss := num(t, r, 10), num(t, r, 11); idle <= 0 || rss <= 0 {
			t.Errorf("row %q: RSS idle %v MiB, after %v MiB: want > 0", label, idle, rss)
		}
	}

	// HTTP/2: row | CPU µs/req | CPU vs nginx | req/s | mean ms | proxy CPU % | load CPU % | errors
	h2 := mdTable(t, out, "| row | CPU µs/req | CPU vs nginx")
	if r, ok := h2[labelH2]; !ok || strings.HasPrefix(r[1], "FAILED") {
		t.Errorf("HTTP/2 row %q missing or failed: %q\n%s\n%s", labelH2, r, out, log)
	} else {
		if cpu, rps, mean := num(t, r, 1), num(t, r, 3), num(t, r, 4); cpu <= 0 || cpu > 1e6 || rps <= 0 || mean <= 0 {
			t.Errorf("HTTP/2 row: CPU µs/req %v, req/s %v, mean %v ms: want positive numbers", cpu, rps, mean)
		}
		if errs := num(t, r, 7); errs != 0 {
			t.Errorf("HTTP/2 row: %v h2load errors, want 0", errs)
		}
	}

	// TLS: row | CPU µs/handshake | CPU vs nginx | handshakes/s | resumed (group) | proxy CPU % | load CPU % | errors
	hs := mdTable(t, out, "| row | CPU µs/handshake")
	for _, tc := range []struct {
		label, resumed string
	}{
		{labelTLSFull, "0.0% (X25519)"},
		{labelTLSResumed, "100.0% (X25519)"},
		{labelTLSFullPQ, "0.0% (X25519MLKEM768)"},
	} {
		r, ok := hs[tc.label]
		if !ok || strings.HasPrefix(r[1], "FAILED") {
			t.Errorf("TLS row %q missing or failed: %q\n%s\n%s", tc.label, r, out, log)
			continue
		}
		if cpu, rate := num(t, r, 1), num(t, r, 3); cpu <= 0 || cpu > 1e6 || rate <= 0 {
			t.Errorf("TLS row %q: CPU µs/handshake %v, handshakes/s %v: want positive numbers", tc.label, cpu, rate)
		}
		if r[4] != tc.resumed {
			t.Errorf("TLS row %q: resumed %q, want %q", tc.label, r[4], tc.resumed)
		}
		if errs := num(t, r, 7); errs != 0 {
			t.Errorf("TLS row %q: %v failed handshakes, want 0", tc.label, errs)
		}
	}

	for _, table := range []map[string][]string{rows, h2, hs} {
		for label := range table {
			for _, peer := range []string{"nginx", "Caddy", "HAProxy", "BufferPool"} {
				if strings.Contains(label, peer) {
					t.Errorf("smoke mode ran row %q; want gatehouse and bare Go rows only", label)
				}
			}
		}
	}
	for _, target := range []string{"full chain CPU/req ÷ bare Go CPU/req", "paired hosts: basic auth (warm cache) ÷ no auth"} {
		if !strings.Contains(out, target) {
			t.Errorf("no target line %q in:\n%s", target, out)
		}
	}
}

// TestTemplatesCheck renders every config template the benchmarks run and
// has `gatehouse check` validate it, so a config schema change that
// breaks them fails here rather than in a long benchmark run.
func TestTemplatesCheck(t *testing.T) {
	_, bin := binaries(t)
	dir := t.TempDir()
	htpasswd, _, err := writeHtpasswd(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := writeBenchCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	feed := filepath.Join(dir, "feed.txt")
	if err := os.WriteFile(feed, []byte("# bench feed\n1.0.1.0/24\n1.0.3.7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"BENCH_TLS_LISTEN": "127.0.0.1:18443",
		"BENCH_CERT":       cert.cert,
		"BENCH_KEY":        cert.key,
		"BENCH_LISTEN":     "127.0.0.1:18080",
		"BENCH_UPSTREAM":   "http://127.0.0.1:18100",
		"BENCH_ACCESS_LOG": filepath.Join(dir, "access.log"),
		"BENCH_HTPASSWD":   htpasswd,
		"BENCH_FEED_A":     feed, // check reads the feeds as serve does
		"BENCH_FEED_B":     feed,
		"BENCH_STATE_DIR":  filepath.Join(dir, "state"),
		"BENCH_LEGIT_IP":   attackLegitIP,
		"BENCH_HOST":       attackSrvIP,
		"BENCH_FIREWALL":   "ipset",
		"BENCH_MAXRETRY":   "3",
		"BENCH_ESCALATE":   "",
		// memory-full.yaml: any readable file serves as the link key.
		"BENCH_ADMIN_LISTEN": "127.0.0.1:18101",
		"BENCH_LINK_KEY":     htpasswd,
		"BENCH_TOKEN_SHA256": strings.Repeat("ab", 32),
	}
	ents, err := templates.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) < 8 {
		t.Fatalf("%d templates embedded, want the 6 compare, the attack and the memory one", len(ents))
	}
	for _, e := range ents {
		conf, err := renderTemplate(e.Name(), vars)
		if err != nil {
			t.Errorf("render %s: %v", e.Name(), err)
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "check", "-c", path).CombinedOutput()
		if err != nil {
			t.Errorf("gatehouse check %s: %v\n%s", e.Name(), err, out)
		}
	}
	if _, err := renderTemplate("compare-full.yaml", map[string]string{"BENCH_LISTEN": "x"}); err == nil ||
		!strings.Contains(err.Error(), "BENCH_UPSTREAM") {
		t.Errorf("renderTemplate with BENCH_UPSTREAM missing: error %v, want one naming it", err)
	}
}
