//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// attackConfig is what `gatehouse-bench attack` runs.
type attackConfig struct {
	gatehouse   string
	dir         string
	scanners    int
	clean       time.Duration // legit load alone
	flood       time.Duration // legit load with the scanners
	warmup      time.Duration
	runs        int
	conns       int
	threads     int
	maxRetry    int
	scanTimeout time.Duration
	scanPause   time.Duration
	poll        time.Duration
	f2bAction   string
	firewalls   []string
	only        *regexp.Regexp
	smoke       bool
	place       cpuPlacement
}

// attackRow is one defender.
type attackRow struct {
	label    string
	kind     string // kindGatehouse or kindNginx
	firewall string // gatehouse: firewall.backend
	fail2ban bool
}

func attackRows(cfg attackConfig) []attackRow {
	var rows []attackRow
	for _, fw := range cfg.firewalls {
		rows = append(rows, attackRow{label: "gatehouse (" + fw + ")", kind: kindGatehouse, firewall: fw})
	}
	if cfg.smoke {
		return rows
	}
	return append(rows,
		attackRow{label: "nginx (no banning)", kind: kindNginx},
		attackRow{label: "nginx + fail2ban", kind: kindNginx, fail2ban: true})
}

// attackRun is what one run of one row measured.
type attackRun struct {
	cleanRPS, floodRPS       float64 // wrk
	cleanRate                float64 // upstream-counted legit req/s, clean phase
	beforeRate, afterRate    float64 // upstream-counted, flood start → 95 % banned → end; NaN: not reached
	t50, t95, t100           float64 // s from flood start until that share of scanners was in the kernel set; NaN: never
	bannedEnd                int     // scanners in the kernel set at the end of the flood
	answered                 []int   // HTTP answers per scanner
	failed, pending          int
	banLatency               []float64 // s from a scanner's maxretry-th answer to its first reading in the kernel set
	proxyUSClean, proxyUSFld float64   // proxy CPU µs per legit request
	defCPUClean, defCPUFlood float64   // fail2ban CPU s (with its children)
	stackUSClean, stackUSFld float64   // proxy + fail2ban CPU µs per legit request
	cleanP99, floodP99       time.Duration
	cleanErrs, floodErrs     uint64
	probeStatus              int // what the pre-flight probe got
}

// attackMain is `gatehouse-bench attack`.
func attackMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("attack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	smoke := os.Getenv("BENCH_SMOKE") == "1"
	cfg := attackConfig{scanners: 200, clean: 10 * time.Second, flood: 20 * time.Second, warmup: time.Second, runs: 3, smoke: smoke}
	if smoke {
		cfg.scanners, cfg.clean, cfg.flood, cfg.warmup, cfg.runs = 8, time.Second, 2*time.Second, 0, 1
	}
	fs.StringVar(&cfg.gatehouse, "gatehouse", "", "gatehouse `binary` (default: build ./cmd/gatehouse of this module)")
	fs.StringVar(&cfg.dir, "dir", filepath.Join(os.TempDir(), "gatehouse-bench-attack"), "scratch `directory`")
	fs.IntVar(&cfg.scanners, "scanners", cfg.scanners, "scanner source addresses, 1 to 2000")
	fs.DurationVar(&cfg.clean, "clean", cfg.clean, "legit load alone, before the flood")
	fs.DurationVar(&cfg.flood, "flood", cfg.flood, "legit load during the flood")
	fs.DurationVar(&cfg.warmup, "warmup", cfg.warmup, "unmeasured legit load after each start")
	fs.IntVar(&cfg.runs, "runs", cfg.runs, "runs per row")
	fs.IntVar(&cfg.conns, "c", 32, "wrk connections of the legit client")
	fs.IntVar(&cfg.threads, "t", 1, "wrk threads")
	fs.IntVar(&cfg.maxRetry, "maxretry", 3, "probes that ban a scanner (gatehouse's and fail2ban's jail)")
	fs.DurationVar(&cfg.scanTimeout, "scan-timeout", 2*time.Second, "a scanner's per-probe timeout")
	fs.DurationVar(&cfg.scanPause, "scan-pause", 200*time.Millisecond, "a scanner's pause after a failed probe")
	fs.DurationVar(&cfg.poll, "poll", 100*time.Millisecond, "how often the kernel ban sets are read")
	fs.StringVar(&cfg.f2bAction, "fail2ban-action", "iptables-ipset-proto6-allports", "fail2ban banaction (an ipset or nftables one, so bans can be counted)")
	fwDefault := "ipset,nftables,none"
	if smoke {
		fwDefault = "ipset"
	}
	fws := fs.String("firewall", fwDefault, "gatehouse firewall backends, one row each: ipset, nftables, none (bans in memory only)")
	only := fs.String("only", "", "run only the rows whose label matches this `regexp`")
	// The "server box": the app (and fail2ban) share the proxy's CPUs,
	// as on a one-box server; wrk, the scanner and the ban poller are
	// the internet.
	place := placementFlags(fs, true)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: attack: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if cfg.scanners < 1 || cfg.scanners > 2000 || cfg.runs < 1 || cfg.conns < 1 || cfg.threads < 1 ||
		cfg.clean < time.Second || cfg.flood < time.Second || cfg.maxRetry < 1 || cfg.poll < 10*time.Millisecond {
		return fmt.Errorf("%w: attack: -scanners 1 to 2000; -runs, -c, -t, -maxretry at least 1; -clean and -flood at least 1s", errUsage)
	}
	for fw := range strings.SplitSeq(*fws, ",") {
		if fw = strings.TrimSpace(fw); fw != "ipset" && fw != "nftables" && fw != "none" {
			return fmt.Errorf("%w: attack: -firewall %q: want ipset, nftables or none (bans in memory only)", errUsage, fw)
		}
		cfg.firewalls = append(cfg.firewalls, strings.TrimSpace(fw))
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return fmt.Errorf("%w: attack: -only: %v", errUsage, err)
		}
		cfg.only = re
	}
	var err error
	if cfg.place, err = place(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("attack needs root: it creates network namespaces and kernel ban sets (sudo)")
	}
	for _, t := range []string{"ip", "wrk"} {
		if _, err := lookTool(t); err != nil {
			return fmt.Errorf("attack: %w", err)
		}
	}
	// A bound on the whole run: every row's phases, plus start-up and
	// clean-up allowances.
	perRun := cfg.warmup + cfg.clean + cfg.flood + cfg.scanTimeout + 60*time.Second
	rows := attackRows(cfg)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute+time.Duration(cfg.runs*len(rows))*perRun)
	defer cancel()
	rep, err := runAttack(ctx, cfg, rows, stderr)
	if rep != nil {
		err = errors.Join(err, writeResults(stdout, cfg.dir, rep.markdown()))
	}
	return err
}

// attackReport is the outcome of an attack run.
type attackReport struct {
	cfg  attackConfig
	env  []string
	rows []*attackRowResult
}

type attackRowResult struct {
	row  attackRow
	err  error
	runs []attackRun
}

// netns is the pair of namespaces of one attack run.
type netns struct {
	srv, cli string
}

func runAttack(ctx context.Context, cfg attackConfig, rows []attackRow, log io.Writer) (*attackReport, error) {
	b, err := newBench(cfg.dir, log)
	if err != nil {
		return nil, err
	}
	// Clean-up runs even when ctx is done (a signal): it gets its own
	// bounded context.
	ns := netns{srv: fmt.Sprintf("%s%d-srv", netnsPrefix, os.Getpid()), cli: fmt.Sprintf("%s%d-cli", netnsPrefix, os.Getpid())}
	defer func() {
		b.procs.stopAll()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		deleteNetns(cctx, ns.srv, ns.cli)
	}()
	deleteStaleNetns(ctx, b)

	if cfg.gatehouse == "" {
		if cfg.gatehouse, err = buildGatehouse(ctx, b); err != nil {
			return nil, err
		}
	}
	b.logf("network namespaces %s and %s, %d scanner addresses", ns.srv, ns.cli, cfg.scanners)
	scanAddrs := scannerAddrs(netip.MustParseAddr(attackScanIP), cfg.scanners)
	if err := setupNetns(ctx, b, ns, scanAddrs); err != nil {
		return nil, err
	}
	statsPath := filepath.Join(b.dir, "upstream.stats")
	up, err := b.startRole(ctx, "upstream", placement{netns: ns.srv, cpus: cfg.place.upstream}, "upstream",
		"-listen", attackUpAddr, "-stats", statsPath, "-notfound")
	if err != nil {
		return nil, err
	}
	rep := &attackReport{cfg: cfg, env: attackEnv(ctx, cfg)}
	for _, row := range rows {
		if cfg.only != nil && !cfg.only.MatchString(row.label) {
			continue
		}
		rr := &attackRowResult{row: row}
		rep.rows = append(rep.rows, rr)
		if err := rowTools(row, cfg); err != nil {
			rr.err = err
			b.logf("%s: skipped: %v", row.label, err)
			continue
		}
		b.logf("%s", row.label)
		for i := range cfg.runs {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			if up.exited() {
				return rep, fmt.Errorf("upstream exited:\n%s", up.tail())
			}
			r, err := b.attackOnce(ctx, cfg, ns, row, i+1, scanAddrs, statsPath)
			resetFirewall(ctx, ns.srv)
			if err != nil {
				b.logf("  run %d: %v", i+1, err)
				rr.err = err
				continue
			}
			rr.runs = append(rr.runs, r)
		}
	}
	return rep, ctx.Err()
}

// rowTools checks the programs a row needs.
func rowTools(row attackRow, cfg attackConfig) error {
	var tools []string
	switch {
	case row.kind == kindNginx:
		tools = append(tools, "nginx")
	case row.firewall == "ipset":
		tools = append(tools, "ipset", "iptables")
	case row.firewall == "nftables":
		tools = append(tools, "nft")
	}
	if row.fail2ban {
		tools = append(tools, "fail2ban-server", "fail2ban-client", "ipset", "iptables")
		if strings.HasPrefix(cfg.f2bAction, "nftables") {
			tools = append(tools, "nft")
		}
	}
	for _, t := range tools {
		if _, err := lookTool(t); err != nil {
			return err
		}
	}
	return nil
}

// setupNetns creates the two namespaces and the veth pair between them
// and waits until packets pass.
func setupNetns(ctx context.Context, b *bench, ns netns, scanners []netip.Addr) error {
	steps := [][]string{
		{"ip", "netns", "add", ns.srv},
		{"ip", "netns", "add", ns.cli},
		{"ip", "-n", ns.srv, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", ns.cli},
		{"ip", "-n", ns.srv, "addr", "add", attackSrvIP + "/16", "dev", "veth0"},
		{"ip", "-n", ns.srv, "link", "set", "lo", "up"},
		{"ip", "-n", ns.srv, "link", "set", "veth0", "up"},
		{"ip", "-n", ns.cli, "addr", "add", attackLegitIP + "/16", "dev", "veth1"},
		{"ip", "-n", ns.cli, "link", "set", "lo", "up"},
		{"ip", "-n", ns.cli, "link", "set", "veth1", "up"},
		// Per-namespace settings only.
		{"ip", "netns", "exec", ns.srv, "sysctl", "-qw", "net.core.somaxconn=4096"},
		{"ip", "netns", "exec", ns.cli, "sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 65000"},
	}
	for _, s := range steps {
		if _, err := runCmd(ctx, placement{}, s...); err != nil {
			return fmt.Errorf("network namespaces: %w", err)
		}
	}
	var batch strings.Builder
	fmt.Fprintf(&batch, "addr add %s/32 dev veth1\n", attackCheckIP)
	for _, a := range scanners {
		fmt.Fprintf(&batch, "addr add %s/32 dev veth1\n", a)
	}
	batchFile := filepath.Join(b.dir, "addrs.batch")
	if err := os.WriteFile(batchFile, []byte(batch.String()), 0o644); err != nil {
		return err
	}
	if _, err := runCmd(ctx, placement{}, "ip", "-n", ns.cli, "-batch", batchFile); err != nil {
		return fmt.Errorf("network namespaces: scanner addresses: %w", err)
	}
	// The server knows every client's MAC address from the start: 200
	// addresses resolved by ARP at the same moment overflow the kernel's
	// queue of packets waiting for a neighbour (unres_qlen), and the
	// dropped SYNs are retried a second later, a delay that has nothing
	// to do with the proxy under test.
	out, err := runCmd(ctx, placement{}, "ip", "-n", ns.cli, "-j", "link", "show", "veth1")
	if err != nil {
		return fmt.Errorf("network namespaces: %w", err)
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 || links[0].Address == "" {
		return fmt.Errorf("network namespaces: MAC address of veth1 in %q: %v", out, err)
	}
	batch.Reset()
	for _, a := range append([]netip.Addr{netip.MustParseAddr(attackLegitIP), netip.MustParseAddr(attackCheckIP)}, scanners...) {
		fmt.Fprintf(&batch, "neigh replace %s lladdr %s dev veth0 nud permanent\n", a, links[0].Address)
	}
	if err := os.WriteFile(batchFile, []byte(batch.String()), 0o644); err != nil {
		return err
	}
	if _, err := runCmd(ctx, placement{}, "ip", "-n", ns.srv, "-batch", batchFile); err != nil {
		return fmt.Errorf("network namespaces: neighbour entries: %w", err)
	}
	// The link is up when a SYN to a closed port is refused (veth
	// carrier and duplicate address detection take a moment).
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := runCmd(ctx, placement{netns: ns.cli}, b.self, "get", "-source", attackCheckIP, "-timeout", "300ms", "http://"+attackSrvIP+":1/")
		if err == nil && strings.TrimSpace(out) == "refused" {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("network namespaces: no traffic between %s and %s: %v", ns.cli, ns.srv, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deleteNetns stops what still runs inside the namespaces (processes
// this run started there) and deletes them.
func deleteNetns(ctx context.Context, names ...string) {
	for _, n := range names {
		out, err := runCmd(ctx, placement{}, "ip", "netns", "pids", n)
		if err != nil {
			continue // no such namespace
		}
		for f := range strings.FieldsSeq(out) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL) // it may be gone already
			}
		}
		_, _ = runCmd(ctx, placement{}, "ip", "netns", "del", n) // best effort: clean-up of a run that failed
	}
}

// deleteStaleNetns deletes the namespaces of earlier runs that were
// killed before their clean-up: named like ours, with the PID of a
// process that no longer exists.
func deleteStaleNetns(ctx context.Context, b *bench) {
	out, err := runCmd(ctx, placement{}, "ip", "netns", "list")
	if err != nil {
		return
	}
	re := regexp.MustCompile(`^` + netnsPrefix + `(\d+)-(srv|cli)$`)
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := re.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); pid == os.Getpid() || alive(pid) {
			continue
		}
		b.logf("deleting namespace %s left by an earlier run", f[0])
		deleteNetns(ctx, f[0])
	}
}

// resetFirewall removes every rule, table and set in the server
// namespace (ours alone), so each run starts without bans.
func resetFirewall(ctx context.Context, srv string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	pl := placement{netns: srv}
	for _, c := range [][]string{
		{"iptables", "-w", "-t", "raw", "-F"}, {"iptables", "-w", "-F"}, {"iptables", "-w", "-X"},
		{"ip6tables", "-w", "-t", "raw", "-F"}, {"ip6tables", "-w", "-F"}, {"ip6tables", "-w", "-X"},
		{"nft", "flush", "ruleset"}, {"ipset", "destroy"},
	} {
		if _, err := lookTool(c[0]); err != nil {
			continue
		}
		_, _ = runCmd(ctx, pl, c...) // empty already is fine
	}
}

// bansIn returns the ranges in the server namespace's kernel ban sets:
// ipset members or nftables set elements.
func bansIn(ctx context.Context, srv, mode string, load []int) ([]addrRange, error) {
	pl := placement{netns: srv, cpus: load}
	if mode == "nft" {
		out, err := runCmd(ctx, pl, "nft", "-j", "list", "ruleset")
		if err != nil {
			return nil, err
		}
		return parseNftRanges([]byte(out))
	}
	out, err := runCmd(ctx, pl, "ipset", "list")
	if err != nil {
		return nil, err
	}
	return parseIPSetMembers(out), nil
}

// banMode says how a row's bans are read: "ipset", "nft" or "" (none).
func banMode(row attackRow, cfg attackConfig) string {
	switch {
	case row.kind == kindGatehouse && row.firewall == "nftables":
		return "nft"
	case row.kind == kindGatehouse && row.firewall == "ipset":
		return "ipset"
	case row.fail2ban && strings.HasPrefix(cfg.f2bAction, "nftables"):
		return "nft"
	case row.fail2ban:
		return "ipset"
	}
	return ""
}

// banPoint is one reading of the kernel sets.
type banPoint struct {
	at      time.Time
	covered int
}

// attackOnce runs one row once: start, clean phase, flood phase, stop.
func (b *bench) attackOnce(ctx context.Context, cfg attackConfig, ns netns, row attackRow, i int, scanAddrs []netip.Addr, statsPath string) (attackRun, error) {
	var r attackRun
	resetFirewall(ctx, ns.srv)
	name := fmt.Sprintf("%s.%d", strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(row.label), "-"), "-"), i)
	dir := filepath.Join(b.dir, name)
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return r, err
	}
	srvPl := placement{netns: ns.srv, cpus: cfg.place.sut}
	accessLog := filepath.Join(dir, "access.log")
	var sut *proc
	var err error
	switch row.kind {
	case kindGatehouse:
		conf, rerr := renderTemplate("attack.yaml", map[string]string{
			"BENCH_LISTEN":     attackSrvIP + ":80",
			"BENCH_UPSTREAM":   "http://" + attackUpAddr,
			"BENCH_STATE_DIR":  filepath.Join(dir, "state"),
			"BENCH_LEGIT_IP":   attackLegitIP,
			"BENCH_HOST":       attackSrvIP,
			"BENCH_FIREWALL":   row.firewall,
			"BENCH_MAXRETRY":   strconv.Itoa(cfg.maxRetry),
			"BENCH_ACCESS_LOG": accessLog,
		})
		if rerr != nil {
			return r, rerr
		}
		path := filepath.Join(dir, "gatehouse.yaml")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return r, err
		}
		sut, err = b.procs.start(ctx, name+".proxy", srvPl, []string{"GATEHOUSE_CONFIG="}, gatehouseServe(ctx, cfg.gatehouse, path)...)
	case kindNginx:
		conf := nginxConf(dir, max(1, len(cfg.place.sut)), attackSrvIP+":80", attackUpAddr, "access_log "+accessLog+" combined;")
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
			return r, err
		}
		sut, err = b.procs.start(ctx, name+".proxy", srvPl, nil, "nginx", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"),
			"-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	}
	if err != nil {
		return r, err
	}
	defer b.procs.stop(sut, 10*time.Second)
	get := func(source, path string) (int, error) {
		out, err := runCmd(ctx, placement{netns: ns.cli}, b.self, "get", "-source", source, "-timeout", "2s", "http://"+attackSrvIP+path)
		if err != nil {
			return 0, err
		}
		f := strings.Fields(out)
		if len(f) != 2 { // "refused", or not our output
			return 0, fmt.Errorf("get %s: %q", path, strings.TrimSpace(out))
		}
		return strconv.Atoi(f[0])
	}
	ready := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		if sut.exited() {
			return r, fmt.Errorf("%s exited during start-up:\n%s", sut.name, sut.tail())
		}
		if code, err := get(attackCheckIP, "/"); err == nil && code == 200 {
			ready = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !ready {
		return r, fmt.Errorf("%s did not answer 200 on %s:80:\n%s", sut.name, attackSrvIP, sut.tail())
	}
	// One probe from the check address: gatehouse blocks it (403),
	// nginx passes it to the app (404).
	if r.probeStatus, err = get(attackCheckIP, "/.env"); err != nil {
		return r, fmt.Errorf("probe check: %w", err)
	}
	want := map[string]int{kindGatehouse: 403, kindNginx: 404}[row.kind]
	if r.probeStatus != want {
		return r, fmt.Errorf("probe check: /.env answered %d, want %d", r.probeStatus, want)
	}

	loadPl := placement{netns: ns.cli, cpus: cfg.place.load}
	wrk := func(d time.Duration) (wrkResult, error) {
		out, err := runCmd(ctx, loadPl, "wrk", "-t"+strconv.Itoa(cfg.threads), "-c"+strconv.Itoa(cfg.conns),
			"-d"+wrkDuration(d), "--timeout", "10s", "--latency", "http://"+attackSrvIP+"/")
		if err != nil {
			return wrkResult{}, err
		}
		return parseWrk(out)
	}
	if cfg.warmup > 0 {
		if _, err := wrk(cfg.warmup); err != nil {
			return r, fmt.Errorf("warm-up: %w", err)
		}
	}
	if row.kind == kindNginx {
		if err := os.Truncate(accessLog, 0); err != nil {
			return r, err
		}
	}
	var f2b *proc
	if row.fail2ban {
		if f2b, err = b.startFail2ban(ctx, cfg, ns, filepath.Join(dir, "fail2ban"), accessLog); err != nil {
			return r, err
		}
		defer b.stopFail2ban(f2b, filepath.Join(dir, "fail2ban"))
	}
	f2bTicks := func() uint64 {
		if f2b == nil {
			return 0
		}
		return treeTicks(f2b.pid(), true)
	}

	// Clean phase.
	drain(ctx, sut.pid(), 10*time.Second)
	c0, f0, t0 := treeTicks(sut.pid(), false), f2bTicks(), time.Now()
	clean, err := wrk(cfg.clean)
	if err != nil {
		return r, fmt.Errorf("clean phase: %w", err)
	}
	c1, f1, t1 := treeTicks(sut.pid(), false), f2bTicks(), time.Now()
	r.cleanRPS, r.cleanP99, r.cleanErrs = clean.RPS, clean.P99, clean.Errors
	r.proxyUSClean = usPer(c1-c0, clean.Requests)
	r.defCPUClean = float64(f1-f0) / clkTck
	r.stackUSClean = usPer(c1-c0+f1-f0, clean.Requests)

	// Flood phase: the scanners, wrk and the ban poller together.
	mode := banMode(row, cfg)
	var points []banPoint
	firstSeen := make([]time.Time, len(scanAddrs)) // first reading with each scanner in the kernel set
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	var wg sync.WaitGroup
	if mode != "" {
		wg.Go(func() {
			t := time.NewTicker(cfg.poll)
			defer t.Stop()
			for pollCtx.Err() == nil {
				rs, err := bansIn(pollCtx, ns.srv, mode, cfg.place.load)
				if err == nil {
					now, n := time.Now(), 0
					for k, in := range coveredSet(scanAddrs, rs) {
						if in {
							n++
							if firstSeen[k].IsZero() {
								firstSeen[k] = now
							}
						}
					}
					points = append(points, banPoint{now, n})
					if n == len(scanAddrs) {
						// All in: further reads would only cost the
						// load CPU; the set is read once more at the end.
						return
					}
				}
				select {
				case <-pollCtx.Done():
				case <-t.C:
				}
			}
		})
	}
	c2, f2 := treeTicks(sut.pid(), false), f2bTicks()
	type result struct {
		out string
		err error
	}
	scanned := make(chan result, 1)
	go func() { // bounded by the scanner's -d and -timeout, and by ctx
		out, err := runCmd(ctx, loadPl, b.self, "scanner", "-target", attackSrvIP+":80", "-base", attackScanIP,
			"-n", strconv.Itoa(cfg.scanners), "-d", cfg.flood.String(), "-timeout", cfg.scanTimeout.String(),
			"-pause", cfg.scanPause.String(), "-maxretry", strconv.Itoa(cfg.maxRetry))
		scanned <- result{out, err}
	}()
	flood, werr := wrk(cfg.flood)
	c3, f3 := treeTicks(sut.pid(), false), f2bTicks()
	// The scanner ends a moment later (its last probes time out); the
	// poller keeps reading until then.
	sr := <-scanned
	stopPoll()
	wg.Wait()
	if mode != "" {
		if rs, err := bansIn(ctx, ns.srv, mode, cfg.place.load); err == nil {
			points = append(points, banPoint{time.Now(), covered(scanAddrs, rs)})
		}
	}
	if werr != nil {
		return r, fmt.Errorf("flood phase: %w", werr)
	}
	if sr.err != nil {
		return r, fmt.Errorf("scanner: %w", sr.err)
	}
	scanOut := sr.out
	var scan scanReport
	if err := json.Unmarshal([]byte(scanOut), &scan); err != nil {
		return r, fmt.Errorf("scanner output: %w", err)
	}
	_ = os.WriteFile(filepath.Join(dir, "scanner.json"), []byte(scanOut), 0o644) // kept for reading, not needed
	r.floodRPS, r.floodP99, r.floodErrs = flood.RPS, flood.P99, flood.Errors
	r.proxyUSFld = usPer(c3-c2, flood.Requests)
	r.defCPUFlood = float64(f3-f2) / clkTck
	r.stackUSFld = usPer(c3-c2+f3-f2, flood.Requests)
	r.answered = scan.Answered
	for i, n := range scan.Failed {
		r.failed += n
		if i < len(scan.Pending) {
			r.pending += scan.Pending[i]
		}
	}

	floodStart := time.UnixMilli(scan.T0)
	for k, ms := range scan.NthAnswerMS {
		if k < len(firstSeen) && ms >= 0 && !firstSeen[k].IsZero() {
			r.banLatency = append(r.banLatency, max(0, firstSeen[k].Sub(floodStart.Add(time.Duration(ms)*time.Millisecond)).Seconds()))
		}
	}
	r.t50, r.t95, r.t100 = math.NaN(), math.NaN(), math.NaN()
	var timeline strings.Builder
	timeline.WriteString("seconds_from_flood_start\tscanners_in_kernel_set\n")
	for _, p := range points {
		s := p.at.Sub(floodStart).Seconds()
		fmt.Fprintf(&timeline, "%.3f\t%d\n", s, p.covered)
		if p.covered*100 >= cfg.scanners*50 && math.IsNaN(r.t50) {
			r.t50 = s
		}
		if p.covered*100 >= cfg.scanners*95 && math.IsNaN(r.t95) {
			r.t95 = s
		}
		if p.covered >= cfg.scanners && math.IsNaN(r.t100) {
			r.t100 = s
		}
		r.bannedEnd = p.covered // the last reading: after the flood
	}
	_ = os.WriteFile(filepath.Join(dir, "bans.tsv"), []byte(timeline.String()), 0o644) // kept for reading, not needed
	stats, _ := os.ReadFile(statsPath)
	ss := parseUpstreamStats(string(stats))
	r.cleanRate, _ = legitRate(ss, t0.UnixMilli(), t1.UnixMilli())
	r.beforeRate, r.afterRate = math.NaN(), math.NaN()
	if !math.IsNaN(r.t95) {
		t95 := floodStart.Add(time.Duration(r.t95 * float64(time.Second))).UnixMilli()
		if v, ok := legitRate(ss, floodStart.UnixMilli(), t95); ok {
			r.beforeRate = v
		}
		if v, ok := legitRate(ss, t95, floodStart.Add(cfg.flood).UnixMilli()); ok {
			r.afterRate = v
		}
	}
	mean, p95, mx := answersSummary(r.answered)
	b.logf("  run %d: legit clean %.0f req/s, flood %.0f req/s, after 95%% banned %s req/s | 95%% in kernel set %s s (ban → set p95 %s s), in set at end %d/%d | answers/scanner mean %.1f p95 %d max %d | proxy %s → %s µs/legit req, fail2ban %.2f s",
		i, r.cleanRPS, r.floodRPS, fmtNum(r.afterRate, 0), fmtNum(r.t95, 2), fmtNum(percentile(r.banLatency, 95), 2), r.bannedEnd, cfg.scanners, mean, p95, mx,
		fmtNum(r.proxyUSClean, 1), fmtNum(r.proxyUSFld, 1), r.defCPUFlood)
	return r, nil
}

func usPer(ticks, requests uint64) float64 {
	if requests == 0 {
		return math.NaN()
	}
	return float64(ticks) / clkTck * 1e6 / float64(requests)
}

// startFail2ban runs fail2ban-server in the server namespace with a
// private copy of /etc/fail2ban holding one jail: nginx-botsearch's
// filter with its list widened to every probe the scanner sends, over
// nginx's access log.
func (b *bench) startFail2ban(ctx context.Context, cfg attackConfig, ns netns, dir, accessLog string) (*proc, error) {
	if _, err := runCmd(ctx, placement{}, "cp", "-a", "/etc/fail2ban/.", dir+"/"); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if _, err := runCmd(ctx, placement{}, "cp", "-a", "/etc/fail2ban/.", dir+"/"); err != nil {
			return nil, fmt.Errorf("fail2ban config: %w", err)
		}
	}
	for _, g := range []string{"jail.d/*", "fail2ban.d/*", "jail.local", "fail2ban.local"} {
		matches, _ := filepath.Glob(filepath.Join(dir, g))
		for _, m := range matches {
			_ = os.RemoveAll(m) // absent is fine
		}
	}
	files := map[string]string{
		"fail2ban.local": fmt.Sprintf("[Definition]\nloglevel = INFO\nlogtarget = %[1]s/fail2ban.log\nsocket = %[1]s/fail2ban.sock\npidfile = %[1]s/fail2ban.pid\ndbfile = %[1]s/fail2ban.sqlite3\n", dir),
		"filter.d/bench-botsearch.conf": `[INCLUDES]
before = nginx-botsearch.conf
[Init]
block = \/?(<webmail>|<phpmyadmin>|<wordpress>|wp-admin|xmlrpc\.php|cgi-bin|mysqladmin|\.env|\.git/|\.aws/|vendor/phpunit|admin/config\.php)[^,]*
`,
		"jail.local": fmt.Sprintf(`[DEFAULT]
enabled = false
[%s]
enabled   = true
port      = http,https
filter    = bench-botsearch
logpath   = %s
backend   = auto
maxretry  = %d
findtime  = 10m
bantime   = 1h
banaction = %s
`, attackJail, accessLog, cfg.maxRetry, cfg.f2bAction),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	sock := filepath.Join(dir, "fail2ban.sock")
	p, err := b.procs.start(ctx, "fail2ban-"+filepath.Base(filepath.Dir(dir)), placement{netns: ns.srv, cpus: cfg.place.sut}, nil,
		"fail2ban-server", "-f", "-x", "-c", dir, "-s", sock, "-p", filepath.Join(dir, "fail2ban.pid"))
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		if p.exited() {
			return nil, fmt.Errorf("fail2ban exited during start-up:\n%s", p.tail())
		}
		if _, err := runCmd(ctx, placement{}, "fail2ban-client", "-s", sock, "status", attackJail); err == nil {
			return p, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.procs.stop(p, 5*time.Second)
	return nil, fmt.Errorf("fail2ban did not come up:\n%s", p.tail())
}

func (b *bench) stopFail2ban(p *proc, dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, _ = runCmd(ctx, placement{}, "fail2ban-client", "-s", filepath.Join(dir, "fail2ban.sock"), "stop") // then by PID anyway
	b.procs.stop(p, 10*time.Second)
}

// attackEnv describes the machine, the tools and the settings.
func attackEnv(ctx context.Context, cfg attackConfig) []string {
	v := func(argv ...string) string {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		// Some print their version and exit 1 (wrk -v): the first line
		// of output counts, whatever the exit status.
		out, _ := runCmdCombined(ctx, argv...)
		if first := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]); first != "" {
			return first
		}
		return "?"
	}
	env := []string{
		fmt.Sprintf("date: %s, one run of `gatehouse-bench attack` (BENCH_SMOKE=%v)", time.Now().UTC().Format("2006-01-02 15:04 MST"), cfg.smoke),
		"machine: " + machine(),
		"gatehouse: " + v(cfg.gatehouse, "version") + "; wrk " + versionOf(v("wrk", "-v")),
	}
	if !cfg.smoke {
		env = append(env, "peers: nginx "+versionOf(v("nginx", "-v"))+"; fail2ban "+versionOf(v("fail2ban-server", "-V"))+
			" (banaction "+cfg.f2bAction+", backend auto)")
	}
	env = append(env,
		fmt.Sprintf("jail: maxretry %d, findtime 10m, bantime 1h; gatehouse: every probe preset, access log combined to a file; nginx: access_log combined", cfg.maxRetry),
		fmt.Sprintf("legit client: wrk -t%d -c%d from %s: %s alone (clean), then %s with the flood; %d run(s) per row (median, min–max)",
			cfg.threads, cfg.conns, attackLegitIP, wrkDuration(cfg.clean), wrkDuration(cfg.flood), cfg.runs),
		fmt.Sprintf("flood: %d scanner addresses, each a new connection per probe as fast as answered, %v timeout, %v pause after a failure; kernel sets read every %v",
			cfg.scanners, cfg.scanTimeout, cfg.scanPause, cfg.poll))
	if cfg.place.sut != nil {
		env = append(env, fmt.Sprintf("placement: proxy and fail2ban on CPU %s, upstream app on CPU %s; wrk, scanner and ban poller on CPU %s",
			cpuList(cfg.place.sut), cpuList(cfg.place.upstream), cpuList(cfg.place.load)))
	}
	return env
}

func (rep *attackReport) markdown() string {
	var sb strings.Builder
	sb.WriteString("## gatehouse-bench attack\n\n")
	for _, e := range rep.env {
		sb.WriteString("- " + e + "\n")
	}
	med := func(rr *attackRowResult, f func(attackRun) float64) spread {
		vs := make([]float64, len(rr.runs))
		for i, r := range rr.runs {
			vs[i] = f(r)
		}
		return spreadOf(vs)
	}
	failed := func(rr *attackRowResult) string {
		msg := "no runs"
		if rr.err != nil {
			msg = strings.SplitN(rr.err.Error(), "\n", 2)[0]
		}
		return "FAILED: " + strings.ReplaceAll(msg, "|", "/")
	}
	sb.WriteString("\n### Legit client\n\n| row | clean req/s | during flood req/s | during ÷ clean | after 95 % banned req/s | after ÷ clean | p99 ms clean → flood | wrk errors clean / flood |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, rr := range rep.rows {
		if len(rr.runs) == 0 {
			fmt.Fprintf(&sb, "| %s | %s | | | | | | |\n", rr.row.label, failed(rr))
			continue
		}
		clean, flood := med(rr, func(r attackRun) float64 { return r.cleanRPS }), med(rr, func(r attackRun) float64 { return r.floodRPS })
		cleanRate := med(rr, func(r attackRun) float64 { return r.cleanRate })
		after := med(rr, func(r attackRun) float64 { return r.afterRate })
		p99c := med(rr, func(r attackRun) float64 { return float64(r.cleanP99) / 1e6 })
		p99f := med(rr, func(r attackRun) float64 { return float64(r.floodP99) / 1e6 })
		var ec, ef uint64
		for _, r := range rr.runs {
			ec, ef = ec+r.cleanErrs, ef+r.floodErrs
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s → %s | %d / %d |\n", rr.row.label,
			fmtSpread(clean, 0), fmtSpread(flood, 0), fmtRatio(flood.Med, clean.Med),
			fmtSpread(after, 0), fmtRatio(after.Med, cleanRate.Med), fmtNum(p99c.Med, 2), fmtNum(p99f.Med, 2), ec, ef)
	}
	sb.WriteString("\n### Scanners\n\n| row | 50 % in kernel set (s) | 95 % in kernel set (s) | 100 % (s) | banning answer → kernel set, s: median / p95 | in set after the flood | answers per scanner mean / p95 / max | probes answered | probes failed / pending at end |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, rr := range rep.rows {
		if len(rr.runs) == 0 {
			continue
		}
		t50 := med(rr, func(r attackRun) float64 { return r.t50 })
		t95 := med(rr, func(r attackRun) float64 { return r.t95 })
		t100 := med(rr, func(r attackRun) float64 { return r.t100 })
		end := med(rr, func(r attackRun) float64 { return float64(r.bannedEnd) })
		mean := med(rr, func(r attackRun) float64 { m, _, _ := answersSummary(r.answered); return m })
		p95 := med(rr, func(r attackRun) float64 { _, p, _ := answersSummary(r.answered); return float64(p) })
		mx := med(rr, func(r attackRun) float64 { _, _, m := answersSummary(r.answered); return float64(m) })
		total := med(rr, func(r attackRun) float64 {
			n := 0
			for _, a := range r.answered {
				n += a
			}
			return float64(n)
		})
		latMed := med(rr, func(r attackRun) float64 { return percentile(r.banLatency, 50) })
		latP95 := med(rr, func(r attackRun) float64 { return percentile(r.banLatency, 95) })
		fail := med(rr, func(r attackRun) float64 { return float64(r.failed) })
		pend := med(rr, func(r attackRun) float64 { return float64(r.pending) })
		setCol := func(s spread, prec int) string {
			if banMode(rr.row, rep.cfg) == "" {
				return "no set"
			}
			return fmtSpread(s, prec)
		}
		lat := "no set"
		if banMode(rr.row, rep.cfg) != "" {
			lat = fmtNum(latMed.Med, 2) + " / " + fmtNum(latP95.Med, 2)
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s of %d | %s / %s / %s | %s | %s / %s |\n", rr.row.label,
			setCol(t50, 2), setCol(t95, 2), setCol(t100, 2), lat, setCol(end, 0), rep.cfg.scanners,
			fmtNum(mean.Med, 1), fmtNum(p95.Med, 0), fmtNum(mx.Med, 0), fmtNum(total.Med, 0), fmtNum(fail.Med, 0), fmtNum(pend.Med, 0))
	}
	sb.WriteString("\n### CPU per legit request\n\n| row | proxy µs/legit req clean | during flood | flood ÷ clean | fail2ban CPU s clean / flood | proxy + fail2ban µs/legit req during flood |\n|---|---:|---:|---:|---:|---:|\n")
	for _, rr := range rep.rows {
		if len(rr.runs) == 0 {
			continue
		}
		pc := med(rr, func(r attackRun) float64 { return r.proxyUSClean })
		pf := med(rr, func(r attackRun) float64 { return r.proxyUSFld })
		dc := med(rr, func(r attackRun) float64 { return r.defCPUClean })
		df := med(rr, func(r attackRun) float64 { return r.defCPUFlood })
		sf := med(rr, func(r attackRun) float64 { return r.stackUSFld })
		def := "–"
		if rr.row.fail2ban {
			def = fmtNum(dc.Med, 2) + " / " + fmtNum(df.Med, 2)
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s |\n", rr.row.label, fmtSpread(pc, 1), fmtSpread(pf, 1),
			fmtRatio(pf.Med, pc.Med), def, fmtSpread(sf, 1))
	}
	sb.WriteString("\nClean: the legit client alone; during flood: the same client while the scanners run (wrk's own count); after 95 % banned: legit requests the upstream app served from the moment 95 % of the scanners were in the kernel ban set to the end of the flood, per second, ÷ the app's clean-phase rate. " +
		"Times are from the scanners' first probe, read from the kernel sets every poll interval (an upper bound: a reading takes tens of ms on the busy load CPU); they include how fast the scanners themselves reach their maxretry-th probe. Banning answer → kernel set: per scanner, from the answer to its maxretry-th probe to the first reading that found it in the set. Answers per scanner: HTTP answers a scanner got (any status) before the kernel dropped its packets. " +
		"CPU per legit request: CPU of the proxy's process tree (and of fail2ban with its ban commands) during the phase ÷ legit requests completed.\n")
	if t := rep.targets(); t != "" {
		sb.WriteString("\n" + t)
	}
	return sb.String()
}

// targets checks issue 11's figures for the gatehouse rows.
func (rep *attackReport) targets() string {
	var sb strings.Builder
	for _, rr := range rep.rows {
		// The none row shows what the kernel set is worth; the targets
		// are about the rows that have one.
		if rr.row.kind != kindGatehouse || rr.row.firewall == "none" || len(rr.runs) == 0 {
			continue
		}
		vals := func(f func(attackRun) float64) float64 {
			vs := make([]float64, len(rr.runs))
			for i, r := range rr.runs {
				vs[i] = f(r)
			}
			return spreadOf(vs).Med
		}
		line := func(what string, got, limit float64, atMost bool) {
			verdict := "met"
			cmp := "≤"
			ok := got <= limit
			if !atMost {
				cmp, ok = "≥", got >= limit
			}
			if math.IsNaN(got) {
				verdict, ok = "not reached", false
			}
			if !ok && !math.IsNaN(got) {
				verdict = fmt.Sprintf("missed by %.0f%%", 100*math.Abs(got-limit)/limit)
			}
			fmt.Fprintf(&sb, "| %s: %s | %s | %s %.2f | %s |\n", rr.row.label, what, fmtNum(got, 2), cmp, limit, verdict)
		}
		line("95 % of scanners in the kernel set (s)", vals(func(r attackRun) float64 { return r.t95 }), 2, true)
		line("banning answer → kernel set, p95 (s)", vals(func(r attackRun) float64 { return percentile(r.banLatency, 95) }), 2, true)
		line("answers per scanner (max)", vals(func(r attackRun) float64 { _, _, m := answersSummary(r.answered); return float64(m) }), 5, true)
		line("legit after 95 % banned ÷ clean", vals(func(r attackRun) float64 { return r.afterRate / r.cleanRate }), 0.9, false)
		line("CPU per legit request, flood ÷ clean", vals(func(r attackRun) float64 { return r.proxyUSFld / r.proxyUSClean }), 1.3, true)
	}
	if sb.Len() == 0 {
		return ""
	}
	return "| target (issue 11) | this run | limit | |\n|---|---:|---:|---|\n" + sb.String()
}
