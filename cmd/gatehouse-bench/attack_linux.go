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

	"gatehouse/cmd/gatehouse-bench/procfs"
	"gatehouse/cmd/gatehouse-bench/role"
	"gatehouse/cmd/gatehouse-bench/wrk"
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
	// rotate: the scanners are IPv6 attackers, one /48 each, taking a
	// fresh address per probe and the next /64 every rotateEvery probes.
	rotate      bool
	rotateEvery int
	// escalate: the probes jail escalates to prefixes (attackEscalate);
	// with rotate only.
	escalate bool
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
	if cfg.smoke || cfg.rotate { // nginx and fail2ban ban addresses, not prefixes
		return rows
	}
	return append(rows,
		attackRow{label: "nginx (no banning)", kind: kindNginx},
		attackRow{label: "nginx + fail2ban", kind: kindNginx, fail2ban: true})
}

// attackRun is what one run of one row measured.
type attackRun struct {
	cleanRPS, floodRPS       float64           // wrk
	cleanRate                float64           // upstream-counted legit req/s, clean phase
	beforeRate, afterRate    float64           // upstream-counted, flood start → 95 % banned → end; NaN: not reached
	t50, t95, t100           float64           // s from flood start until that share of scanners was in the kernel set; NaN: never
	bannedEnd                int               // scanners in the kernel set at the end of the flood
	answered                 []int             // HTTP answers per scanner (per /48 with rotate)
	subnets                  []int             // /64s each IPv6 attacker probed from
	lastAnswer               []float64         // s from flood start to the last answer of each scanner that got one
	entriesEnd               int               // entries in the kernel sets after the flood
	netstat                  map[string]uint64 // the server namespace's TcpExt counters over the flood
	failed, pending          int
	banLatency               []float64 // s from a scanner's maxretry-th answer to its first reading in the kernel set
	nthAnswer                []float64 // s from flood start to each scanner's maxretry-th answer (IPv4)
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
	fs.IntVar(&cfg.scanners, "scanners", cfg.scanners, "scanner source addresses (IPv6 rotation: /48s), 1 to 5000")
	fs.BoolVar(&cfg.rotate, "ipv6-rotate", false, "IPv6 attackers, one /48 each, a fresh address per probe and a fresh /64 every -rotate-every probes (gatehouse rows only)")
	fs.IntVar(&cfg.rotateEvery, "rotate-every", 0, "with -ipv6-rotate: probes from each /64 before the next (default -maxretry: each /64 is banned by its last probe)")
	fs.BoolVar(&cfg.escalate, "escalate", true, "with -ipv6-rotate: the probes jail escalates to prefixes ("+attackEscalate+")")
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
	if cfg.rotateEvery == 0 {
		cfg.rotateEvery = cfg.maxRetry
	}
	if cfg.scanners < 1 || cfg.scanners > 5000 || cfg.runs < 1 || cfg.conns < 1 || cfg.threads < 1 || cfg.rotateEvery < 1 ||
		cfg.clean < time.Second || cfg.flood < time.Second || cfg.maxRetry < 1 || cfg.poll < 10*time.Millisecond {
		return fmt.Errorf("%w: attack: -scanners 1 to 5000; -runs, -c, -t, -maxretry, -rotate-every at least 1; -clean and -flood at least 1s", errUsage)
	}
	cfg.escalate = cfg.escalate && cfg.rotate
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
	// The scanner holds one socket per scanner at a time; Go raises its
	// soft limit to the hard one at start.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Max < uint64(cfg.scanners)+256 {
		return fmt.Errorf("attack: -scanners %d needs %d open files, the hard limit is %d (ulimit -Hn)", cfg.scanners, cfg.scanners+256, lim.Max)
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
	b.logf("network namespaces %s and %s, %d %s", ns.srv, ns.cli, cfg.scanners, map[bool]string{false: "scanner addresses", true: "attacking IPv6 /48s"}[cfg.rotate])
	targets, err := scanTargets(cfg)
	if err != nil {
		return nil, err
	}
	if err := setupNetns(ctx, b, ns); err != nil {
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
			r, err := b.attackOnce(ctx, cfg, ns, row, i+1, targets, statsPath)
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

// scanTargets returns what each scanner attacks from: its address, or
// its /48 with -ipv6-rotate.
func scanTargets(cfg attackConfig) ([]addrRange, error) {
	if !cfg.rotate {
		return addrTargets(role.ScannerAddrs(netip.MustParseAddr(attackScanIP), cfg.scanners)), nil
	}
	nets, err := role.Attacker48s(netip.MustParseAddr(attackScan6), cfg.scanners)
	if err != nil {
		return nil, err
	}
	ts := make([]addrRange, len(nets))
	for i, p := range nets {
		ts[i] = prefixRange(p)
	}
	return ts, nil
}

// setupNetns creates the two namespaces and the veth pair between them
// and waits until packets pass.
func setupNetns(ctx context.Context, b *bench, ns netns) error {
	steps := [][]string{
		{"ip", "netns", "add", ns.srv},
		{"ip", "netns", "add", ns.cli},
		{"ip", "-n", ns.srv, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", ns.cli},
		{"ip", "-n", ns.srv, "addr", "add", attackSrvIP + "/16", "dev", "veth0"},
		{"ip", "-n", ns.srv, "addr", "add", attackSrvIP6 + "/64", "dev", "veth0", "nodad"},
		{"ip", "-n", ns.srv, "link", "set", "lo", "up"},
		{"ip", "-n", ns.srv, "link", "set", "veth0", "up"},
		{"ip", "-n", ns.cli, "addr", "add", attackLegitIP + "/16", "dev", "veth1"},
		{"ip", "-n", ns.cli, "addr", "add", attackCheckIP + "/32", "dev", "veth1"},
		{"ip", "-n", ns.cli, "addr", "add", attackCliIP6 + "/64", "dev", "veth1", "nodad"},
		{"ip", "-n", ns.cli, "link", "set", "lo", "up"},
		{"ip", "-n", ns.cli, "link", "set", "veth1", "up"},
		// The scanners' ranges: routed to the client namespace through
		// its primary addresses, local there.
		{"ip", "-n", ns.srv, "route", "add", attackScanNet, "via", attackLegitIP, "dev", "veth0"},
		{"ip", "-n", ns.srv, "-6", "route", "add", attackScanNet6, "via", attackCliIP6, "dev", "veth0"},
		{"ip", "-n", ns.cli, "route", "add", "local", attackScanNet, "dev", "lo"},
		{"ip", "-n", ns.cli, "-6", "route", "add", "local", attackScanNet6, "dev", "lo"},
		// Per-namespace settings only. The server's accept and SYN
		// queues hold the first probe of every scanner at once (a full
		// queue drops SYNs, retried a second later: a delay that has
		// nothing to do with the proxy under test); IPv6 sources are
		// bound without being an interface's addresses.
		{"ip", "netns", "exec", ns.srv, "sysctl", "-qw", "net.core.somaxconn=16384"},
		{"ip", "netns", "exec", ns.srv, "sysctl", "-qw", "net.ipv4.tcp_max_syn_backlog=16384"},
		{"ip", "netns", "exec", ns.cli, "sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 65000"},
		{"ip", "netns", "exec", ns.cli, "sysctl", "-qw", "net.ipv6.ip_nonlocal_bind=1"},
	}
	for _, s := range steps {
		if _, err := runCmd(ctx, placement{}, s...); err != nil {
			return fmt.Errorf("network namespaces: %w", err)
		}
	}
	// The server knows the client's MAC address from the start: the
	// flood's first SYNs must not wait for ARP or neighbour discovery.
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
	for _, a := range []string{attackLegitIP, attackCheckIP, attackCliIP6} {
		if _, err := runCmd(ctx, placement{}, "ip", "-n", ns.srv, "neigh", "replace", a, "lladdr", links[0].Address, "dev", "veth0", "nud", "permanent"); err != nil {
			return fmt.Errorf("network namespaces: neighbour entries: %w", err)
		}
	}
	// The link is up when a SYN to a closed port is refused, from a
	// scanner range of each family (veth carrier takes a moment).
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range [][2]string{{attackCheckIP, attackSrvIP}, {attackScanIP, attackSrvIP}, {attackCheckIP6, "[" + attackSrvIP6 + "]"}} {
		for {
			out, err := runCmd(ctx, placement{netns: ns.cli}, b.self, "get", "-source", c[0], "-timeout", "300ms", "http://"+c[1]+":1/")
			if err == nil && strings.TrimSpace(out) == "refused" {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("network namespaces: no traffic from %s to %s: %v", c[0], c[1], err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
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
		if pid, _ := strconv.Atoi(m[1]); pid == os.Getpid() || procfs.Alive(pid) {
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

// srvNetstat returns the server namespace's TCP counters (nil when
// they cannot be read: the report then leaves them out).
func srvNetstat(ctx context.Context, srv string) map[string]uint64 {
	out, err := runCmd(ctx, placement{netns: srv}, "cat", "/proc/net/netstat")
	if err != nil {
		return nil
	}
	return parseNetstat(out)
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
func (b *bench) attackOnce(ctx context.Context, cfg attackConfig, ns netns, row attackRow, i int, targets []addrRange, statsPath string) (attackRun, error) {
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
		escalate := ""
		if cfg.escalate {
			escalate = ", " + attackEscalate
		}
		conf, rerr := renderTemplate("attack.yaml", map[string]string{
			"BENCH_LISTEN":     ":80", // both families
			"BENCH_ESCALATE":   escalate,
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
		dst := attackSrvIP
		if strings.Contains(source, ":") {
			dst = "[" + attackSrvIP6 + "]"
		}
		out, err := runCmd(ctx, placement{netns: ns.cli}, b.self, "get", "-source", source, "-timeout", "2s", "-H", "Host: "+attackSrvIP, "http://"+dst+path)
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
	if cfg.rotate {
		if code, err := get(attackCheckIP6, "/"); err != nil || code != 200 {
			return r, fmt.Errorf("IPv6 check: / from %s answered %d (%v), want 200", attackCheckIP6, code, err)
		}
	}

	loadPl := placement{netns: ns.cli, cpus: cfg.place.load}
	runWrk := func(d time.Duration) (wrk.Result, error) {
		out, err := runCmd(ctx, loadPl, "wrk", "-t"+strconv.Itoa(cfg.threads), "-c"+strconv.Itoa(cfg.conns),
			"-d"+wrkDuration(d), "--timeout", "10s", "--latency", "http://"+attackSrvIP+"/")
		if err != nil {
			return wrk.Result{}, err
		}
		return wrk.Parse(out)
	}
	if cfg.warmup > 0 {
		if _, err := runWrk(cfg.warmup); err != nil {
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
		return procfs.TreeTicks(f2b.pid(), true)
	}

	// Clean phase.
	drain(ctx, sut.pid(), 10*time.Second)
	c0, f0, t0 := procfs.TreeTicks(sut.pid(), false), f2bTicks(), time.Now()
	clean, err := runWrk(cfg.clean)
	if err != nil {
		return r, fmt.Errorf("clean phase: %w", err)
	}
	c1, f1, t1 := procfs.TreeTicks(sut.pid(), false), f2bTicks(), time.Now()
	r.cleanRPS, r.cleanP99, r.cleanErrs = clean.RPS, clean.P99, clean.Errors
	r.proxyUSClean = usPer(c1-c0, clean.Requests)
	r.defCPUClean = float64(f1-f0) / clkTck
	r.stackUSClean = usPer(c1-c0+f1-f0, clean.Requests)

	// Flood phase: the scanners, wrk and the ban poller together.
	mode := banMode(row, cfg)
	var points []banPoint
	firstSeen := make([]time.Time, len(targets)) // first reading with each scanner in the kernel set
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
					for k, in := range coveredSet(targets, rs) {
						if in {
							n++
							if firstSeen[k].IsZero() {
								firstSeen[k] = now
							}
						}
					}
					points = append(points, banPoint{now, n})
					if n == len(targets) {
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
	c2, f2 := procfs.TreeTicks(sut.pid(), false), f2bTicks()
	nst0 := srvNetstat(ctx, ns.srv)
	type result struct {
		out string
		err error
	}
	scanned := make(chan result, 1)
	go func() { // bounded by the scanner's -d and -timeout, and by ctx
		args := []string{b.self, "scanner", "-target", attackSrvIP + ":80", "-base", attackScanIP}
		if cfg.rotate {
			args = []string{b.self, "scanner", "-target", "[" + attackSrvIP6 + "]:80", "-host", attackSrvIP, "-base", attackScan6,
				"-rotate-every", strconv.Itoa(cfg.rotateEvery)}
		}
		out, err := runCmd(ctx, loadPl, append(args, "-n", strconv.Itoa(cfg.scanners), "-d", cfg.flood.String(), "-timeout", cfg.scanTimeout.String(),
			"-pause", cfg.scanPause.String(), "-maxretry", strconv.Itoa(cfg.maxRetry))...)
		scanned <- result{out, err}
	}()
	flood, werr := runWrk(cfg.flood)
	c3, f3 := procfs.TreeTicks(sut.pid(), false), f2bTicks()
	// The scanner ends a moment later (its last probes time out); the
	// poller keeps reading until then.
	sr := <-scanned
	stopPoll()
	wg.Wait()
	r.netstat = netstatDelta(nst0, srvNetstat(ctx, ns.srv))
	if b, err := json.MarshalIndent(r.netstat, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "netstat-srv.json"), b, 0o644) // kept for reading, not needed
	}
	if mode != "" {
		if rs, err := bansIn(ctx, ns.srv, mode, cfg.place.load); err == nil {
			points = append(points, banPoint{time.Now(), covered(targets, rs)})
			r.entriesEnd = len(rs)
		}
	}
	if werr != nil {
		return r, fmt.Errorf("flood phase: %w", werr)
	}
	if sr.err != nil {
		return r, fmt.Errorf("scanner: %w", sr.err)
	}
	scanOut := sr.out
	var scan role.ScanReport
	if err := json.Unmarshal([]byte(scanOut), &scan); err != nil {
		return r, fmt.Errorf("scanner output: %w", err)
	}
	_ = os.WriteFile(filepath.Join(dir, "scanner.json"), []byte(scanOut), 0o644) // kept for reading, not needed
	r.floodRPS, r.floodP99, r.floodErrs = flood.RPS, flood.P99, flood.Errors
	r.proxyUSFld = usPer(c3-c2, flood.Requests)
	r.defCPUFlood = float64(f3-f2) / clkTck
	r.stackUSFld = usPer(c3-c2+f3-f2, flood.Requests)
	r.answered, r.subnets = scan.Answered, scan.Subnets
	for _, ms := range scan.LastAnswerMS {
		if ms >= 0 {
			r.lastAnswer = append(r.lastAnswer, float64(ms)/1000)
		}
	}
	for i, n := range scan.Failed {
		r.failed += n
		if i < len(scan.Pending) {
			r.pending += scan.Pending[i]
		}
	}

	floodStart := time.UnixMilli(scan.T0)
	for _, ms := range scan.NthAnswerMS {
		if ms >= 0 && !cfg.rotate {
			r.nthAnswer = append(r.nthAnswer, float64(ms)/1000)
		}
	}
	for k, ms := range scan.NthAnswerMS {
		// A rotating /48 is banned by escalation, not by its
		// maxretry-th answer.
		if !cfg.rotate && k < len(firstSeen) && ms >= 0 && !firstSeen[k].IsZero() {
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
	mean, p95, mx := role.AnswersSummary(r.answered)
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
