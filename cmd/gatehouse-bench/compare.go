package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"gatehouse/cmd/gatehouse-bench/procfs"
	"gatehouse/cmd/gatehouse-bench/role"
	"gatehouse/cmd/gatehouse-bench/wrk"
)

// compareConfig is what `gatehouse-bench compare` runs.
type compareConfig struct {
	gatehouse  string        // gatehouse binary; "" builds one from the repo
	dir        string        // scratch directory
	duration   time.Duration // one measured wrk run
	warmup     time.Duration // one unmeasured wrk run after start; 0: none
	runs       int
	conns      int
	threads    int
	wrkTimeout time.Duration
	drainMax   time.Duration // longest wait for an idle proxy before a run
	path       string        // request path: "/" (100 bytes) or "/big" (64 KiB)
	only       *regexp.Regexp
	smoke      bool // gatehouse and bare Go rows only
	place      cpuPlacement

	h2Conns, h2Streams int // h2load -c and -m
	tlsConns           int // concurrent connections of the handshake generator
	cert               benchCert
}

// cpuPlacement is where the parts of a benchmark run.
type cpuPlacement struct {
	sut, load, upstream []int // nil: not pinned
}

// defaultPlacement gives the proxy under test CPU 1, and the load
// generator CPU 0; the upstream gets CPU 2 when there is one, else it
// shares CPU 0 with the generator. One CPU: nothing is pinned.
func defaultPlacement(ncpu int) cpuPlacement {
	switch {
	case ncpu < 2:
		return cpuPlacement{}
	case ncpu == 2:
		return cpuPlacement{sut: []int{1}, load: []int{0}, upstream: []int{0}}
	default:
		return cpuPlacement{sut: []int{1}, load: []int{0}, upstream: []int{2}}
	}
}

// placementFlags registers the CPU placement flags on fs; apply fills in
// what was not given from defaultPlacement, or, with upstreamWithSUT, puts
// the upstream on the proxy's CPUs unless -upstream-cpus says otherwise.
func placementFlags(fs *flag.FlagSet, upstreamWithSUT bool) (apply func() (cpuPlacement, error)) {
	sut := fs.String("sut-cpus", "", "CPUs of the proxy under test, e.g. 1 or 2,3 (default 1)")
	load := fs.String("load-cpus", "", "CPUs of the load generator (default 0)")
	up := fs.String("upstream-cpus", "", "CPUs of the upstream app (default 2, or 0 on a 2-CPU machine)")
	pin := fs.Bool("pin", true, "pin processes to CPUs with taskset (false: let the scheduler place them)")
	return func() (cpuPlacement, error) {
		if !*pin {
			return cpuPlacement{}, nil
		}
		if _, err := lookTool("taskset"); err != nil {
			return cpuPlacement{}, fmt.Errorf("pinning: %w (install util-linux, or -pin=false)", err)
		}
		pl := defaultPlacement(runtime.NumCPU())
		for _, f := range []struct {
			v   string
			dst *[]int
		}{{*sut, &pl.sut}, {*load, &pl.load}, {*up, &pl.upstream}} {
			if f.v == "" {
				continue
			}
			cpus, err := parseCPUList(f.v)
			if err != nil {
				return pl, err
			}
			for _, c := range cpus {
				if c >= runtime.NumCPU() {
					return pl, fmt.Errorf("cpu %d: this machine has %d CPUs", c, runtime.NumCPU())
				}
			}
			*f.dst = cpus
		}
		if upstreamWithSUT && *up == "" {
			pl.upstream = pl.sut
		}
		return pl, nil
	}
}

// Kinds of server under test.
const (
	kindGatehouse = "gatehouse"
	kindBare      = "bare"
	kindNginx     = "nginx"
	kindCaddy     = "caddy"
	kindHAProxy   = "haproxy"
)

// compareRow is one server under test.
type compareRow struct {
	label    string
	kind     string
	template string   // gatehouse: config template
	args     []string // bare: extra flags
	auth     bool     // every request carries the bench user's credentials
	full     bool     // probes and hotlink are on: checked before loading
	ref      bool     // the row ratios are computed against
	peer     bool     // a third-party proxy: not in smoke mode, skipped when missing
	load     loadKind // what loads it: wrk (HTTP/1.1), h2load or the TLS handshake generator
	groups   string   // handshake rows: the key exchange groups offered (role.Handshake -groups)
	pair     bool     // two rows measured in one process: labelPairOpen and labelPairAuth
}

// loadKind is the load generator of a row and so the table it is
// reported in.
type loadKind int

const (
	loadWrk        loadKind = iota // wrk over plain HTTP/1.1: the main table
	loadH2                         // h2load over TLS: the HTTP/2 table
	loadTLSFull                    // new connections, full handshakes: the TLS table
	loadTLSResumed                 // new connections resuming a session
)

// Labels the targets are computed from.
const (
	labelBare     = "bare Go ReverseProxy"
	labelPlain    = "gatehouse, plain proxy"
	labelFull     = "gatehouse, full chain"
	labelAuth     = "gatehouse, basic auth (bcrypt cost 10)"
	labelFullAuth = "gatehouse, full chain + basic auth"
	labelIntel    = "gatehouse, full chain + CDN ranges + 2 feeds of 100k"
	labelCaddy    = "Caddy reverse_proxy"
	labelNginx    = "nginx"

	labelPairOpen = "gatehouse, paired hosts: no auth"
	labelPairAuth = "gatehouse, paired hosts: basic auth (warm cache)"

	labelTLSFull         = "gatehouse, TLS full handshake"
	labelTLSResumed      = "gatehouse, TLS resumed handshake"
	labelTLSFullPQ       = "gatehouse, TLS full handshake, X25519MLKEM768 offered"
	labelNginxTLSFull    = "nginx, TLS full handshake"
	labelNginxTLSResumed = "nginx, TLS resumed handshake"
	labelH2              = "gatehouse, HTTP/2"
	labelNginxH2         = "nginx, HTTP/2"
)

func compareRows(smoke bool) []compareRow {
	rows := []compareRow{
		{label: labelBare, kind: kindBare, ref: true},
		{label: "bare Go ReverseProxy + BufferPool", kind: kindBare, args: []string{"-bufpool"}},
		{label: labelPlain, kind: kindGatehouse, template: "compare-plain.yaml"},
		{label: labelFull, kind: kindGatehouse, template: "compare-full.yaml", full: true},
		{label: labelIntel, kind: kindGatehouse, template: "compare-intel.yaml", full: true},
		{label: labelAuth, kind: kindGatehouse, template: "compare-auth.yaml", auth: true},
		{label: labelFullAuth, kind: kindGatehouse, template: "compare-full-auth.yaml", auth: true, full: true},
		{label: labelNginx, kind: kindNginx, peer: true},
		{label: labelCaddy, kind: kindCaddy, peer: true},
		{label: "HAProxy", kind: kindHAProxy, peer: true},
		// One gatehouse with two hosts, with and without basic auth, loaded
		// alternately with the same wrk settings (measurePair).
		{label: labelPairOpen + " / basic auth", kind: kindGatehouse, template: "compare-pair.yaml", pair: true},
		{label: labelH2, kind: kindGatehouse, template: "compare-tls.yaml", load: loadH2},
		{label: labelNginxH2, kind: kindNginx, load: loadH2, peer: true},
		{label: labelTLSFull, kind: kindGatehouse, template: "compare-tls.yaml", load: loadTLSFull, groups: "x25519"},
		{label: labelNginxTLSFull, kind: kindNginx, load: loadTLSFull, groups: "x25519", peer: true},
		{label: labelTLSResumed, kind: kindGatehouse, template: "compare-tls.yaml", load: loadTLSResumed, groups: "x25519"},
		{label: labelNginxTLSResumed, kind: kindNginx, load: loadTLSResumed, groups: "x25519", peer: true},
		{label: labelTLSFullPQ, kind: kindGatehouse, template: "compare-tls.yaml", load: loadTLSFull, groups: "default"},
	}
	if !smoke {
		return rows
	}
	var out []compareRow
	for _, r := range rows {
		if r.kind == kindGatehouse || r.ref {
			out = append(out, r)
		}
	}
	return out
}

// The bench user of the basic-auth rows.
const (
	benchUser = "bench"
	benchPass = "correct-horse-battery-staple"
)

// runResult is one measured run. The h2load and handshake rows fill wrk
// with their own counts: Requests is requests or handshakes, RPS their
// rate, Errors the failures; they leave the percentiles zero.
type runResult struct {
	wrk        wrk.Result
	mean       time.Duration // h2load: mean time per request
	resumed    uint64        // handshake rows: handshakes that resumed a session
	group      string        // handshake rows: the key exchange the server chose
	cpuTicks   uint64        // CPU of the server's process tree during the run
	wall       time.Duration // the run's length
	loadBusy   uint64        // busy ticks of the load CPUs
	loadTotal  uint64
	upstreamTk uint64 // CPU of the upstream during the run
}

func (r runResult) cpuUSPerReq() float64 {
	if r.wrk.Requests == 0 {
		return math.NaN()
	}
	return float64(r.cpuTicks) / clkTck * 1e6 / float64(r.wrk.Requests)
}

func (r runResult) cpuPct() float64 {
	return 100 * float64(r.cpuTicks) / clkTck / r.wall.Seconds()
}

func (r runResult) loadPct() float64 {
	if r.loadTotal == 0 {
		return math.NaN()
	}
	return 100 * float64(r.loadBusy) / float64(r.loadTotal)
}

// rowResult is what compare measured for one row.
type rowResult struct {
	row     compareRow
	err     error // the row could not be measured
	runs    []runResult
	rssIdle uint64 // after start, before any load
	rss     uint64 // after the last run
}

func (rr *rowResult) values(f func(runResult) float64) spread {
	vs := make([]float64, len(rr.runs))
	for i, r := range rr.runs {
		vs[i] = f(r)
	}
	return spreadOf(vs)
}

func (rr *rowResult) cpu() spread { return rr.values(runResult.cpuUSPerReq) }
func (rr *rowResult) rps() spread { return rr.values(func(r runResult) float64 { return r.wrk.RPS }) }

// compareReport is the outcome of a compare run.
type compareReport struct {
	cfg     compareConfig
	started time.Time
	rows    []*rowResult
	env     []string // machine and versions, one Markdown bullet each
}

// row returns the result labelled label, nil if none was measured.
func (rep *compareReport) row(label string) *rowResult {
	for _, r := range rep.rows {
		if r.row.label == label && r.err == nil && len(r.runs) > 0 {
			return r
		}
	}
	return nil
}

// compareMain is `gatehouse-bench compare`.
func compareMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	smoke := os.Getenv("BENCH_SMOKE") == "1"
	cfg := compareConfig{runs: 3, duration: 10 * time.Second, warmup: 2 * time.Second, smoke: smoke}
	if smoke {
		cfg.runs, cfg.duration, cfg.warmup = 1, time.Second, 0
	}
	fs.StringVar(&cfg.gatehouse, "gatehouse", "", "gatehouse `binary` to measure (default: build ./cmd/gatehouse of this module)")
	fs.StringVar(&cfg.dir, "dir", filepath.Join(os.TempDir(), "gatehouse-bench-compare"), "scratch `directory`: configs, logs, raw wrk output, results.md")
	fs.DurationVar(&cfg.duration, "d", cfg.duration, "length of one measured run")
	fs.DurationVar(&cfg.warmup, "warmup", cfg.warmup, "unmeasured run after each start (0: none)")
	fs.IntVar(&cfg.runs, "runs", cfg.runs, "measured runs per row")
	fs.IntVar(&cfg.conns, "c", 64, "wrk connections")
	fs.IntVar(&cfg.threads, "t", 1, "wrk threads")
	fs.IntVar(&cfg.h2Conns, "h2-c", 1, "HTTP/2 rows: h2load connections")
	fs.IntVar(&cfg.h2Streams, "h2-m", 100, "HTTP/2 rows: h2load concurrent streams per connection")
	fs.IntVar(&cfg.tlsConns, "tls-c", 8, "TLS handshake rows: concurrent connections of the handshake generator")
	fs.DurationVar(&cfg.wrkTimeout, "wrk-timeout", 10*time.Second, "wrk's request timeout")
	fs.StringVar(&cfg.path, "path", "/", "request path: / (100-byte answer) or /big (64 KiB)")
	only := fs.String("only", "", "run only the rows whose label matches this `regexp`")
	place := placementFlags(fs, false)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: compare: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if cfg.runs < 1 || cfg.conns < 1 || cfg.threads < 1 || cfg.h2Conns < 1 || cfg.h2Streams < 1 || cfg.tlsConns < 1 || cfg.duration < time.Second {
		return fmt.Errorf("%w: compare: -runs, -c, -t, -h2-c, -h2-m and -tls-c must be at least 1 and -d at least 1s", errUsage)
	}
	if cfg.path != "/" && cfg.path != "/big" {
		return fmt.Errorf("%w: compare: -path %q is not / or /big", errUsage, cfg.path)
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return fmt.Errorf("%w: compare: -only: %v", errUsage, err)
		}
		cfg.only = re
	}
	var err error
	if cfg.place, err = place(); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	cfg.drainMax = 30 * time.Second
	if smoke {
		cfg.drainMax = 5 * time.Second
	}
	rep, err := runCompare(ctx, cfg, stderr)
	if rep != nil {
		err = errors.Join(err, writeResults(stdout, cfg.dir, rep.markdown()))
	}
	return err
}

// writeResults prints a run's Markdown report and keeps it as
// dir/results.md.
func writeResults(stdout io.Writer, dir, md string) error {
	_, err := io.WriteString(stdout, md)
	return errors.Join(err, os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644))
}

// bench holds what a benchmark run shares: the scratch directory, the
// processes it started, its log.
type bench struct {
	dir   string
	procs *procs
	log   io.Writer
	self  string // this executable, which runs the helper roles
}

// feedPrefixes is the size of each bench feed.
const feedPrefixes = 100_000

// feedFiles writes two blocklist feeds of feedPrefixes prefixes each
// into the bench directory, once, and returns their paths. The prefixes
// are spread over the public IPv4 space and never cover 127.0.0.0/8, so
// the load generator is looked up and never listed.
func (b *bench) feedFiles() (string, string, error) {
	a, c := filepath.Join(b.dir, "feed-a.txt"), filepath.Join(b.dir, "feed-b.txt")
	if _, err := os.Stat(c); err == nil {
		return a, c, nil
	}
	for i, path := range []string{a, c} {
		var sb strings.Builder
		sb.WriteString("# gatehouse-bench feed\n")
		for j := range feedPrefixes {
			// Odd /24s for one file, even ones for the other, from 1.0.0.0
			// up; every tenth entry a single address.
			n := uint32(1<<24) + uint32(2*j+i)<<8
			if n>>24 == 127 {
				n += 1 << 24
			}
			if j%10 == 0 {
				fmt.Fprintf(&sb, "%d.%d.%d.7\n", n>>24, n>>16&0xff, n>>8&0xff)
				continue
			}
			fmt.Fprintf(&sb, "%d.%d.%d.0/24\n", n>>24, n>>16&0xff, n>>8&0xff)
		}
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			return "", "", err
		}
	}
	return a, c, nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "[bench] "+format+"\n", args...)
}

// startRole starts one of gatehouse-bench's helper roles as a process.
func (b *bench) startRole(ctx context.Context, name string, pl placement, role string, args ...string) (*proc, error) {
	return b.procs.start(ctx, name, pl, nil, append([]string{b.self, role}, args...)...)
}

// newBench prepares dir (a fresh run/ inside it) and the process table.
func newBench(dir string, log io.Writer) (*bench, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	run := filepath.Join(dir, "run")
	if err := os.RemoveAll(run); err != nil {
		return nil, err
	}
	// 0755: nginx workers run as nobody when the benchmark is root, and
	// read their config and the htpasswd file from here (so dir and its
	// parents must be searchable by others too; the default is).
	if err := os.MkdirAll(run, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(run, 0o755); err != nil { // whatever the umask
		return nil, err
	}
	return &bench{dir: run, procs: &procs{dir: run}, log: log, self: self}, nil
}

func runCompare(ctx context.Context, cfg compareConfig, log io.Writer) (*compareReport, error) {
	wrkPath, err := lookTool("wrk")
	if err != nil {
		return nil, fmt.Errorf("compare: %w (make bench-deps installs it)", err)
	}
	b, err := newBench(cfg.dir, log)
	if err != nil {
		return nil, fmt.Errorf("compare: scratch dir: %w", err)
	}
	defer b.procs.stopAll()
	rep := &compareReport{cfg: cfg, started: time.Now()}

	if cfg.gatehouse == "" {
		if cfg.gatehouse, err = buildGatehouse(ctx, b); err != nil {
			return nil, err
		}
	}
	htpasswd, authHeader, err := writeHtpasswd(b.dir)
	if err != nil {
		return nil, err
	}
	if cfg.cert, err = writeBenchCert(b.dir); err != nil {
		return nil, fmt.Errorf("compare: certificate: %w", err)
	}

	upPort, err := freePort()
	if err != nil {
		return nil, err
	}
	upAddr := "127.0.0.1:" + strconv.Itoa(upPort)
	up, err := b.startRole(ctx, "upstream", placement{cpus: cfg.place.upstream}, "upstream", "-listen", upAddr)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, up, "http://"+upAddr+"/", nil, 20*time.Second); err != nil {
		return nil, fmt.Errorf("compare: upstream: %w", err)
	}
	rep.env = benchEnv(ctx, cfg, wrkPath, cfg.gatehouse)

	for _, row := range compareRows(cfg.smoke) {
		if cfg.only != nil && !cfg.only.MatchString(row.label) {
			continue
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		rr := &rowResult{row: row}
		if row.peer {
			if _, err := lookTool(row.kind); err != nil {
				b.logf("%s: skipped: %v", row.label, err)
				continue
			}
		}
		b.logf("%s", row.label)
		switch {
		case row.pair:
			rep.rows = append(rep.rows, b.measurePair(ctx, cfg, row, upAddr, up, htpasswd, authHeader)...)
			continue
		case row.load == loadWrk:
			rr.err = b.measureRow(ctx, cfg, rr, upAddr, up, htpasswd, authHeader)
		default:
			rr.err = b.measureTLSRow(ctx, cfg, rr, upAddr, up, htpasswd)
		}
		if rr.err != nil {
			b.logf("  %s: %v", row.label, rr.err)
		}
		rep.rows = append(rep.rows, rr)
	}
	return rep, ctx.Err()
}

// buildGatehouse builds ./cmd/gatehouse of the module the working
// directory is in.
func buildGatehouse(ctx context.Context, b *bench) (string, error) {
	gomod, err := runCmd(ctx, placement{}, "go", "env", "GOMOD")
	gomod = strings.TrimSpace(gomod)
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("compare: no -gatehouse binary and not inside the gatehouse module (go env GOMOD: %q, %v)", gomod, err)
	}
	bin := filepath.Join(b.dir, "gatehouse")
	b.logf("building gatehouse from %s", filepath.Dir(gomod))
	// As `make build` and the Dockerfile build it: static, without the
	// symbol table, so RSS counts the executable that ships.
	cmd := []string{"env", "CGO_ENABLED=0", "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/gatehouse"}
	if _, err := runCmdIn(ctx, filepath.Dir(gomod), cmd...); err != nil {
		return "", fmt.Errorf("compare: build gatehouse: %w", err)
	}
	return bin, nil
}

// gatehouseServe is the command line that runs bin on the config file
// path: no config polling (--watch 0), and, when the benchmark runs as
// root and bin knows the flag, --allow-root. The attack needs root for
// the kernel ban sets; compare runs as whoever runs it.
func gatehouseServe(ctx context.Context, bin, path string) []string {
	argv := []string{bin, "serve", "-c", path, "--watch", "0"}
	if os.Geteuid() == 0 {
		help, _ := runCmdCombined(ctx, bin, "serve", "-h")
		if strings.Contains(help, "allow-root") {
			argv = append(argv, "--allow-root")
		}
	}
	return argv
}

// writeHtpasswd writes the bench user with a bcrypt cost-10 hash and
// returns the file and the Authorization header that logs in.
func writeHtpasswd(dir string) (path, header string, err error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPass), 10)
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "bench.htpasswd")
	if err := os.WriteFile(path, []byte(benchUser+":"+string(hash)+"\n"), 0o644); err != nil {
		return "", "", err
	}
	req, _ := http.NewRequest("GET", "http://127.0.0.1/", nil)
	req.SetBasicAuth(benchUser, benchPass)
	return path, "Authorization: " + req.Header.Get("Authorization"), nil
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers 200 (with headers), p exits, or
// timeout passes.
func waitHTTP(ctx context.Context, p *proc, url string, headers map[string]string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up:\n%s", p.name, p.tail())
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 on %s within %v:\n%s", p.name, url, timeout, p.tail())
		case <-t.C:
		}
	}
}

// expectation is one pre-flight check: a request and the status it must
// get (and, for 200, the body size).
type expectation struct {
	host    string // Host header; "": the one of base
	path    string
	headers map[string]string
	status  int
	size    int64 // for 200; -1: any
}

func (e expectation) check(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", base+e.path, nil)
	if err != nil {
		return err
	}
	if e.host != "" {
		req.Host = e.host
	}
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("check GET %s: %w", e.path, err)
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != e.status || (e.status == http.StatusOK && e.size >= 0 && n != e.size) {
		return fmt.Errorf("check GET %s%s %v: got %d with %d bytes, want %d", e.host, e.path, e.headers, resp.StatusCode, n, e.status)
	}
	return nil
}

// startSUT starts the server under test of row on 127.0.0.1:port, and,
// for a row loaded over TLS (gatehouse and nginx only), its HTTPS
// listener on 127.0.0.1:tlsPort.
func (b *bench) startSUT(ctx context.Context, cfg compareConfig, row compareRow, port, tlsPort int, upAddr, htpasswd string) (*proc, error) {
	pl := placement{cpus: cfg.place.sut}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	name := fmt.Sprintf("%s-%d", row.kind, port)
	workers := max(1, len(cfg.place.sut))
	switch row.kind {
	case kindBare:
		return b.startRole(ctx, name, pl, "bare", append([]string{"-listen", listen, "-upstream", "http://" + upAddr}, row.args...)...)
	case kindGatehouse:
		feedA, feedB, err := b.feedFiles()
		if err != nil {
			return nil, err
		}
		conf, err := renderTemplate(row.template, map[string]string{
			"BENCH_FEED_A":     feedA,
			"BENCH_FEED_B":     feedB,
			"BENCH_LISTEN":     listen,
			"BENCH_UPSTREAM":   "http://" + upAddr,
			"BENCH_ACCESS_LOG": filepath.Join(b.dir, name+".access.log"),
			"BENCH_HTPASSWD":   htpasswd,
			"BENCH_TLS_LISTEN": "127.0.0.1:" + strconv.Itoa(tlsPort),
			"BENCH_CERT":       cfg.cert.cert,
			"BENCH_KEY":        cfg.cert.key,
		})
		if err != nil {
			return nil, err
		}
		path := filepath.Join(b.dir, name+".yaml")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		return b.procs.start(ctx, name, pl, []string{"GATEHOUSE_CONFIG="}, gatehouseServe(ctx, cfg.gatehouse, path)...)
	case kindNginx:
		dir := filepath.Join(b.dir, name)
		if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
			return nil, err
		}
		conf := nginxConf(dir, workers, listen, upAddr, "access_log off;")
		if row.load != loadWrk {
			conf = nginxTLSConf(dir, workers, "127.0.0.1:"+strconv.Itoa(tlsPort), upAddr, cfg.cert)
		}
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
			return nil, err
		}
		return b.procs.start(ctx, name, pl, nil, "nginx", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"),
			"-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	case kindCaddy:
		dir := filepath.Join(b.dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		conf := fmt.Sprintf(`{
	admin off
	auto_https off
}
http://%s {
	bind 127.0.0.1
	reverse_proxy %s {
		transport http {
			keepalive 2m
			keepalive_idle_conns_per_host 128
		}
	}
}
`, listen, upAddr)
		if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(conf), 0o644); err != nil {
			return nil, err
		}
		return b.procs.start(ctx, name, pl, []string{"HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "XDG_DATA_HOME=" + dir},
			"caddy", "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
	case kindHAProxy:
		conf := fmt.Sprintf(`global
    nbthread %d
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    option forwardfor
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind %s
    default_backend be
backend be
    server up %s
`, workers, listen, upAddr)
		path := filepath.Join(b.dir, name+".cfg")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		return b.procs.start(ctx, name, pl, nil, "haproxy", "-db", "-f", path)
	}
	return nil, fmt.Errorf("unknown kind %q", row.kind)
}

// nginxConf is an nginx reverse proxy on listen with upstream keep-alive
// and workers worker processes; logLine sets its access log.
func nginxConf(dir string, workers int, listen, upAddr, logLine string) string {
	user := ""
	if os.Geteuid() == 0 {
		user = "user nobody nogroup;"
	}
	return fmt.Sprintf(`# generated by gatehouse-bench
worker_processes %d;
%s
pid %s/nginx.pid;
error_log %s/error.log error;
events { worker_connections 8192; }
http {
    %s
    client_body_temp_path %s/tmp/body;
    proxy_temp_path %s/tmp/proxy;
    fastcgi_temp_path %s/tmp/fastcgi;
    uwsgi_temp_path %s/tmp/uwsgi;
    scgi_temp_path %s/tmp/scgi;
    upstream up {
        server %s;
        keepalive 128;
    }
    server {
        listen %s backlog=4096;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
`, workers, user, dir, dir, logLine, dir, dir, dir, dir, dir, upAddr, listen)
}

// measureRow starts row's server, checks it, loads it cfg.runs times and
// stops it.
func (b *bench) measureRow(ctx context.Context, cfg compareConfig, rr *rowResult, upAddr string, up *proc, htpasswd, authHeader string) error {
	row := rr.row
	port, err := freePort()
	if err != nil {
		return err
	}
	sut, err := b.startSUT(ctx, cfg, row, port, 0, upAddr, htpasswd)
	if err != nil {
		return err
	}
	defer b.procs.stop(sut, 10*time.Second)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	var hdr map[string]string
	if row.auth {
		k, v, _ := strings.Cut(authHeader, ": ")
		hdr = map[string]string{k: v}
	}
	if err := waitHTTP(ctx, sut, base+"/", hdr, 20*time.Second); err != nil {
		return err
	}
	size := int64(role.SmallBody)
	if cfg.path == "/big" {
		size = role.BigBody
	}
	checks := []expectation{{path: cfg.path, headers: hdr, status: http.StatusOK, size: size}}
	if row.auth {
		checks = append(checks, expectation{path: "/", status: http.StatusUnauthorized})
	}
	if row.full {
		checks = append(checks,
			expectation{path: "/.env", headers: hdr, status: http.StatusForbidden},
			expectation{path: "/wp-login.php", headers: hdr, status: http.StatusForbidden},
			expectation{path: "/media/clip.mp4", headers: withHeader(hdr, "Referer", "https://hotlinker.example.net/page"), status: http.StatusForbidden},
			expectation{path: "/media/clip.mp4", headers: hdr, status: http.StatusOK, size: -1},
		)
	}
	for _, e := range checks {
		if err := e.check(ctx, base); err != nil {
			return err
		}
	}
	rr.rssIdle = procfs.TreeRSS(sut.pid())

	url := base + cfg.path
	var wrkHeaders []string
	if row.auth {
		wrkHeaders = append(wrkHeaders, authHeader)
	}
	if cfg.warmup > 0 {
		if _, err := runCmd(ctx, placement{cpus: cfg.place.load}, cfg.wrkArgs(cfg.warmup, url, wrkHeaders...)...); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	for i := range cfg.runs {
		r, err := b.loadOnce(ctx, cfg, sut, up, fmt.Sprintf("%s.%d.wrk", filepath.Base(sut.log), i+1), cfg.wrkArgs(cfg.duration, url, wrkHeaders...), parseWrkRun)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		rr.runs = append(rr.runs, r)
		b.logRun(i+1, r)
	}
	rr.rss = procfs.TreeRSS(sut.pid())
	return nil
}

// loadOnce runs the load generator argv once on the load CPUs, after
// waiting for sut to be idle, and measures the CPU time of sut's and
// up's process trees and of the load CPUs around it. Its raw output is
// kept as name in the scratch directory; parse reads the result.
func (b *bench) loadOnce(ctx context.Context, cfg compareConfig, sut, up *proc, name string, argv []string, parse func(string) (runResult, error)) (runResult, error) {
	loadPl := placement{cpus: cfg.place.load}
	drain(ctx, sut.pid(), cfg.drainMax)
	c0, u0 := procfs.TreeTicks(sut.pid(), false), procfs.TreeTicks(up.pid(), false)
	l0, w0 := procfs.CoreTicks(cfg.place.load)
	t0 := time.Now()
	out, err := runCmd(ctx, loadPl, argv...)
	wall := time.Since(t0)
	l1, w1 := procfs.CoreTicks(cfg.place.load)
	c1, u1 := procfs.TreeTicks(sut.pid(), false), procfs.TreeTicks(up.pid(), false)
	_ = os.WriteFile(filepath.Join(b.dir, name), []byte(out), 0o644) // raw output is a convenience
	if err != nil {
		return runResult{}, err
	}
	if sut.exited() {
		return runResult{}, fmt.Errorf("%s exited:\n%s", sut.name, sut.tail())
	}
	r, err := parse(out)
	if err != nil {
		return runResult{}, err
	}
	r.cpuTicks, r.wall, r.loadBusy, r.loadTotal, r.upstreamTk = c1-c0, wall, l1-l0, w1-w0, u1-u0
	return r, nil
}

// wrkArgs is the wrk command line of a measured run of d on url, with
// the request headers ("Name: value").
func (cfg compareConfig) wrkArgs(d time.Duration, url string, headers ...string) []string {
	a := []string{"wrk", "-t" + strconv.Itoa(cfg.threads), "-c" + strconv.Itoa(cfg.conns), "-d" + wrkDuration(d),
		"--timeout", wrkDuration(cfg.wrkTimeout), "--latency"}
	for _, h := range headers {
		a = append(a, "-H", h)
	}
	return append(a, url)
}

// parseWrkRun reads a wrk run.
func parseWrkRun(out string) (runResult, error) {
	res, err := wrk.Parse(out)
	return runResult{wrk: res}, err
}

// logRun logs run i of a row.
func (b *bench) logRun(i int, r runResult) {
	b.logf("  run %d: %.0f req/s, %.1f µs CPU/req, p50 %v p99 %v, errors %d, proxy CPU %.0f%%, load CPU %s%%",
		i, r.wrk.RPS, r.cpuUSPerReq(), r.wrk.P50, r.wrk.P99, r.wrk.Errors, r.cpuPct(), fmtNum(r.loadPct(), 0))
}

func withHeader(h map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for hk, hv := range h {
		out[hk] = hv
	}
	return out
}

// wrkDuration formats d for wrk: whole seconds ("10s"), at least 1.
func wrkDuration(d time.Duration) string {
	return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) + "s"
}

// drain waits until pid's process tree is idle (at most 1 tick in 250
// ms), at most max: work left over from the previous run (closing
// connections, garbage collection) is not charged to the next.
func drain(ctx context.Context, pid int, maxWait time.Duration) {
	deadline := time.Now().Add(maxWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		a := procfs.TreeTicks(pid, false)
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
		if procfs.TreeTicks(pid, false)-a <= 1 {
			return
		}
	}
}

// benchEnv describes the machine, the tools and the settings, one
// Markdown bullet each.
func benchEnv(ctx context.Context, cfg compareConfig, wrkPath, gatehouse string) []string {
	env := []string{
		fmt.Sprintf("date: %s, one run of `gatehouse-bench compare` (BENCH_SMOKE=%v)", time.Now().UTC().Format("2006-01-02 15:04 MST"), cfg.smoke),
		"machine: " + machine(),
		"gatehouse: " + toolBanner(ctx, gatehouse, "version") + "; " + runtime.Version() + " (bench tool, bare proxy, upstream)",
		"wrk " + versionOf(toolBanner(ctx, wrkPath, "-v")),
	}
	if h2load, err := lookTool("h2load"); err == nil {
		env[len(env)-1] += "; h2load " + versionOf(toolBanner(ctx, h2load, "--version"))
	}
	var peers []string
	for _, p := range []struct{ name, arg string }{{"nginx", "-v"}, {"caddy", "version"}, {"haproxy", "-v"}} {
		if path, err := lookTool(p.name); err == nil {
			peers = append(peers, p.name+" "+versionOf(toolBanner(ctx, path, p.arg)))
		}
	}
	if len(peers) > 0 && !cfg.smoke {
		env = append(env, "peers: "+strings.Join(peers, "; "))
	}
	env = append(env,
		fmt.Sprintf("load: wrk -t%d -c%d -d%s --latency GET %s, %v warm-up after each start, %d measured run(s) per row (median, min–max); the proxy is idle before each run",
			cfg.threads, cfg.conns, wrkDuration(cfg.duration), cfg.path, cfg.warmup, cfg.runs),
		"placement: "+cfg.place.String())
	return env
}

func (p cpuPlacement) String() string {
	if p.sut == nil {
		return "not pinned"
	}
	return fmt.Sprintf("proxy on CPU %s (nginx worker_processes and haproxy nbthread = %d, Go GOMAXPROCS follows the CPU set), wrk on CPU %s, upstream on CPU %s",
		cpuList(p.sut), len(p.sut), cpuList(p.load), cpuList(p.upstream))
}
