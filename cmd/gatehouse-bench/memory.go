package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/cmd/gatehouse-bench/procfs"
	"gatehouse/middleware"
	"gatehouse/proxy/listener"
	"gatehouse/rules"
)

// Targets of the memory figures, as the report checks them.
const (
	targetIdleMiB      = 20  // RSS of an idle gatehouse with the full chain
	targetClientBytes  = 200 // per tracked client, in every per-client table
	targetFullMiB      = 64  // RSS with every table at its default capacity
	targetLoadedMiB    = 30  // RSS after the clean load
	defaultCapacity    = 100_000
	memLoadClients     = 1000 // distinct clients of the clean load
	memoryFullTemplate = "memory-full.yaml"
)

// tableKinds are the per-client tables -measure knows, in report order.
var tableKinds = []struct{ kind, label string }{
	{"jail3", "counting jail, maxretry 3 (rules.Jails: probes)"},
	{"jail5", "counting jail, maxretry 5 (auth, admin, flood's bans)"},
	{"jail20", "counting jail, maxretry 20 (hotlink in the example config)"},
	{"flood", "flood limiter (middleware.RateLimit's buckets)"},
	{"limit", "rate limit, key client (middleware.Limiter)"},
	{"limit-host", "rate limit, key client+host (middleware.Limiter)"},
	{"conns", "connections per client (listener.Limiter), one open connection each"},
}

// memSample is one memory measurement of a process.
type memSample struct {
	RSS  uint64 `json:"rss"`  // VmRSS, bytes
	Heap uint64 `json:"heap"` // Go heap in use (HeapInuse), bytes
}

// memResult is what measuring one per-client table reports.
type memResult struct {
	What    string    `json:"what"`
	Clients int       `json:"clients"` // distinct clients the table got
	Idle    memSample `json:"idle"`
	Loaded  memSample `json:"loaded"`
}

// ghMemory is what measuring the gatehouse binary reports.
type ghMemory struct {
	Idle     procfs.Mem
	Loaded   procfs.Mem // after the clean load
	Load     time.Duration
	Requests int64 // of the clean load
	Steps    []ghStep
}

// ghStep is the memory after the first Clients distinct clients reached
// the tables of a phase: "probe" (the probes jail and the flood
// limiter), then "every" (all the others too).
type ghStep struct {
	Phase   string
	Clients int
	Mem     procfs.Mem
}

// memoryMain is `gatehouse-bench memory`: the four memory figures.
//
//  1. Bytes per tracked client of each per-client table, each measured
//     in a process of its own (-measure) with the rules, middleware and
//     proxy/listener packages at a capacity of -n clients, fed -n
//     distinct IPv4 clients once: RSS and Go heap growth per client.
//  2. The real gatehouse binary with the full chain configured
//     (testdata/memory-full.yaml, default capacities): its RSS idle
//     after start,
//  3. after -load of clean requests from 1,000 clients, and
//  4. after -gatehouse-clients distinct clients each sent a probe,
//     which fills the tables a probe flood fills (the flood limiter and
//     the probes jail), and then after the same clients each sent the
//     requests that give them an entry in every other table too (the
//     two rate limited routes, a hotlinked image and malformed
//     basic-auth credentials); in steps, so that it shows the RSS stop
//     growing once the tables are full, at their default capacity of
//     100,000 clients each.
func memoryMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("memory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	smoke := os.Getenv("BENCH_SMOKE") == "1"
	n, ghClients, step, load := 1_000_000, 150_000, 50_000, 60*time.Second
	if smoke {
		n, ghClients, step, load = 20_000, 3_000, 1_000, 2*time.Second
	}
	fs.IntVar(&n, "n", n, "distinct clients per table (and the tables' capacity)")
	measure := fs.String("measure", "", "internal: measure one table in this process and print JSON")
	gh := fs.String("gatehouse", "", "gatehouse `binary` (default: build ./cmd/gatehouse of this module as `make build` does)")
	fs.IntVar(&ghClients, "gatehouse-clients", ghClients, "distinct clients sent to every table of the gatehouse binary (0: skip the binary)")
	fs.IntVar(&step, "step", step, "clients between two RSS readings of the gatehouse binary")
	fs.DurationVar(&load, "load", load, "clean load before the tables are filled")
	workers := fs.Int("c", 32, "concurrent connections of the load")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "gatehouse-bench-memory"), "scratch `directory`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if n < 1 || n > 10_000_000 || ghClients < 0 || step < 1 || load < 0 || *workers < 1 {
		return fmt.Errorf("%w: memory: -n must be 1 to 10,000,000, -gatehouse-clients and -load not negative, -step and -c positive", errUsage)
	}
	if *measure != "" {
		res, err := measureTable(*measure, n)
		if err != nil {
			return err
		}
		return json.NewEncoder(stdout).Encode(res)
	}
	b, err := newBench(*dir, stderr)
	if err != nil {
		return err
	}
	defer b.procs.stopAll()
	var results []memResult
	for _, k := range tableKinds {
		b.logf("measuring the %s table with %d clients", k.kind, n)
		out, err := runCmd(ctx, placement{}, b.self, "memory", "-measure", k.kind, "-n", strconv.Itoa(n))
		if err != nil {
			return err
		}
		var r memResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			return fmt.Errorf("memory -measure %s: %w", k.kind, err)
		}
		results = append(results, r)
	}
	var ghm *ghMemory
	if ghClients > 0 {
		if *gh == "" {
			if *gh, err = buildGatehouse(ctx, b); err != nil {
				return err
			}
		}
		m, err := measureGatehouse(ctx, b, *gh, ghMemoryConfig{clients: ghClients, step: step, load: load, workers: *workers})
		if err != nil {
			return err
		}
		ghm = &m
	}
	_, err = io.WriteString(stdout, memoryMarkdown(results, ghm, n))
	return err
}

// memAddr is the i-th client of a measurement: 1.0.0.0 on, public and
// outside every allow list.
func memAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(1 + i>>24), byte(i >> 16), byte(i >> 8), byte(i)})
}

// measureTable builds one per-client table with capacity n in this
// process and fills it with n distinct clients.
func measureTable(what string, n int) (memResult, error) {
	res := memResult{What: what, Clients: n}
	sample := func() memSample {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return memSample{RSS: procfs.VMRSS(os.Getpid()), Heap: ms.HeapInuse}
	}
	var keep any // the table, alive until the second sample
	switch what {
	case "jail3", "jail5", "jail20":
		maxRetry, _ := strconv.Atoi(strings.TrimPrefix(what, "jail"))
		res.Idle = sample()
		j, err := rules.NewJails(rules.JailsConfig{
			Jails:    map[string]rules.JailConfig{"j": {MaxRetry: maxRetry}},
			Capacity: n,
		}, nil, nil)
		if err != nil {
			return res, err
		}
		for i := range n {
			j.Report("j", memAddr(i), "probe")
		}
		if got := j.Offences("j"); got != uint64(n) {
			return res, fmt.Errorf("jail counted %d offences, want %d", got, n)
		}
		keep = j
	case "flood":
		res.Idle = sample()
		jails, err := rules.NewJails(rules.JailsConfig{Jails: map[string]rules.JailConfig{"flood": {}}}, nil, nil)
		if err != nil {
			return res, err
		}
		rl, err := middleware.RateLimit(middleware.RateLimitConfig{Rate: 50, Jail: "flood", Capacity: n}, nil, jails, nil)
		if err != nil {
			return res, err
		}
		clientIP, err := middleware.ClientIP(middleware.ClientIPConfig{})
		if err != nil {
			return res, err
		}
		passed := 0
		h := middleware.WithScope(clientIP(rl(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { passed++ }))))
		r := httptest.NewRequest("GET", "/", nil)
		w := httptest.NewRecorder()
		for i := range n {
			r.RemoteAddr = netip.AddrPortFrom(memAddr(i), 40000).String()
			h.ServeHTTP(w, r)
		}
		if passed != n {
			return res, fmt.Errorf("flood limiter passed %d of %d first requests", passed, n)
		}
		keep = h
	case "limit", "limit-host":
		res.Idle = sample()
		key := "client"
		if what == "limit-host" {
			key = "client+host"
		}
		l, err := middleware.NewLimiter(middleware.LimitConfig{Name: "l", Rate: 1, Key: key, Capacity: n}, nil)
		if err != nil {
			return res, err
		}
		now := time.Now()
		for i := range n {
			if ok, _ := l.Take(l.Key(memAddr(i), "www.example.com", ""), now); !ok {
				return res, fmt.Errorf("limit refused the first request of client %d", i)
			}
		}
		keep = l
	case "conns":
		// The connections are made before the first sample: what grows
		// is the limiter's count and its wrapper of each connection.
		ln := &memListener{conns: make([]memConn, n)}
		ips := make([]byte, 4*n)
		for i := range ln.conns {
			a := memAddr(i).As4()
			ip := ips[4*i : 4*i+4 : 4*i+4]
			copy(ip, a[:])
			ln.conns[i].remote = net.TCPAddr{IP: ip, Port: 40000}
		}
		open := make([]net.Conn, 0, n)
		res.Idle = sample()
		lim := listener.NewLimiter(listener.LimitConfig{Max: 256})
		lln := listener.Limit(ln, lim)
		for range n {
			c, err := lln.Accept()
			if err != nil {
				return res, fmt.Errorf("accept: %w", err)
			}
			open = append(open, c)
		}
		keep = open
	default:
		return res, fmt.Errorf("%w: -measure %q is none of the tables", errUsage, what)
	}
	res.Loaded = sample()
	runtime.KeepAlive(keep)
	return res, nil
}

// memListener hands out its connections, then reports itself closed.
type memListener struct {
	conns []memConn
	next  int
}

func (l *memListener) Accept() (net.Conn, error) {
	if l.next == len(l.conns) {
		return nil, net.ErrClosed
	}
	l.next++
	return &l.conns[l.next-1], nil
}

func (l *memListener) Close() error   { return nil }
func (l *memListener) Addr() net.Addr { return &net.TCPAddr{} }

// memConn is a connection from remote that is never read nor written.
type memConn struct {
	net.Conn
	remote net.TCPAddr
}

func (c *memConn) RemoteAddr() net.Addr { return &c.remote }
func (c *memConn) Close() error         { return nil }

// ghMemoryConfig is what measureGatehouse sends.
type ghMemoryConfig struct {
	clients, step, workers int
	load                   time.Duration
}

// measureGatehouse runs the gatehouse binary with the full chain and
// reads its memory idle, after the clean load, and while distinct
// clients fill its tables.
func measureGatehouse(ctx context.Context, b *bench, bin string, cfg ghMemoryConfig) (ghMemory, error) {
	var res ghMemory
	ports := make([]int, 3)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return res, err
		}
		ports[i] = p
	}
	upAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	listen := "127.0.0.1:" + strconv.Itoa(ports[1])
	up, err := b.startRole(ctx, "upstream", placement{}, "upstream", "-listen", upAddr)
	if err != nil {
		return res, err
	}
	if err := waitHTTP(ctx, up, "http://"+upAddr+"/", nil, 20*time.Second); err != nil {
		return res, err
	}
	htpasswd, _, err := writeHtpasswd(b.dir)
	if err != nil {
		return res, err
	}
	key := make([]byte, 48)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	keyPath := filepath.Join(b.dir, "memory-link.key")
	if err := os.WriteFile(keyPath, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return res, err
	}
	token := sha256.Sum256(key)
	conf, err := renderTemplate(memoryFullTemplate, map[string]string{
		"BENCH_LISTEN":       listen,
		"BENCH_UPSTREAM":     "http://" + upAddr,
		"BENCH_ADMIN_LISTEN": "127.0.0.1:" + strconv.Itoa(ports[2]),
		"BENCH_ACCESS_LOG":   filepath.Join(b.dir, "memory.access.log"),
		"BENCH_STATE_DIR":    filepath.Join(b.dir, "memory-state"),
		"BENCH_HTPASSWD":     htpasswd,
		"BENCH_LINK_KEY":     keyPath,
		"BENCH_TOKEN_SHA256": hex.EncodeToString(token[:]),
	})
	if err != nil {
		return res, err
	}
	path := filepath.Join(b.dir, "memory-full.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return res, err
	}
	g, err := b.procs.start(ctx, "gatehouse", placement{}, []string{"GATEHOUSE_CONFIG="}, gatehouseServe(ctx, bin, path)...)
	if err != nil {
		return res, err
	}
	defer b.procs.stop(g, 10*time.Second)
	if err := waitHTTP(ctx, g, "http://"+listen+"/", nil, 20*time.Second); err != nil {
		return res, err
	}
	// Idle: a moment after the first answer, as a service is found.
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return res, err
	}
	res.Idle = procfs.Memory(g.pid())

	tr := &http.Transport{MaxIdleConnsPerHost: cfg.workers, Proxy: nil}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := "http://" + listen

	if cfg.load > 0 {
		b.logf("clean load: %v from %d clients over %d connections", cfg.load, memLoadClients, cfg.workers)
		loadCtx, cancel := context.WithTimeout(ctx, cfg.load)
		var next, done atomic.Int64
		start := time.Now()
		err := parallel(loadCtx, cfg.workers, func(int) (bool, error) {
			i := int(next.Add(1)) % memLoadClients
			// 100.64.0.0/10: clients none of the config's lists name.
			ip := netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
			if err := memGet(loadCtx, c, base+"/", map[string]string{"X-Forwarded-For": ip.String()}, http.StatusOK); err != nil {
				return false, err
			}
			done.Add(1)
			return true, nil
		})
		cancel()
		res.Load, res.Requests = time.Since(start), done.Load()
		if err != nil {
			return res, fmt.Errorf("clean load: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.Loaded = procfs.Memory(g.pid())
	}

	// First the tables a probe flood fills: each client sends a probe,
	// which the flood limiter and the probes jail count. Then the same
	// clients get an entry in every other table: the two limits (a route
	// each), the hotlink jail (an image from another site) and the auth
	// jail (credentials that are not base64).
	type fillReq struct {
		path, host string
		headers    map[string]string
		status     int
	}
	phases := []struct {
		what string
		reqs []fillReq
	}{
		{"probe", []fillReq{{"/.env", "", nil, http.StatusForbidden}}},
		{"every", []fillReq{
			{"/login", "", nil, http.StatusOK},
			{"/api/items", "", nil, http.StatusOK},
			{"/media/a.jpg", "", map[string]string{"Referer": "https://hotlinker.example.net/"}, http.StatusForbidden},
			{"/", "staging.example.com", map[string]string{"Authorization": "Basic !"}, http.StatusUnauthorized},
		}},
	}
	for _, ph := range phases {
		b.logf("filling tables (%s): %d distinct clients × %d requests", ph.what, cfg.clients, len(ph.reqs))
		for from := 0; from < cfg.clients; from += cfg.step {
			to := min(from+cfg.step, cfg.clients)
			var next atomic.Int64
			next.Store(int64(from))
			err := parallel(ctx, cfg.workers, func(int) (bool, error) {
				i := int(next.Add(1)) - 1
				if i >= to {
					return false, nil
				}
				for _, f := range ph.reqs {
					h := map[string]string{"X-Forwarded-For": memAddr(i).String()}
					for k, v := range f.headers {
						h[k] = v
					}
					if f.host != "" {
						h["Host"] = f.host
					}
					if err := memGet(ctx, c, base+f.path, h, f.status); err != nil {
						return false, err
					}
				}
				return true, nil
			})
			if err != nil {
				return res, fmt.Errorf("filling the tables: %w", err)
			}
			res.Steps = append(res.Steps, ghStep{Phase: ph.what, Clients: to, Mem: procfs.Memory(g.pid())})
		}
	}
	return res, nil
}

// parallel runs f on workers goroutines until f reports false or an
// error, or ctx ends (not an error: a timed load ends so).
func parallel(ctx context.Context, workers int, f func(worker int) (bool, error)) error {
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				more, err := f(w)
				if err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				if !more {
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	return errors.Join(collect(errc)...)
}

// memGet sends one GET and checks its status.
func memGet(ctx context.Context, c *http.Client, url string, headers map[string]string, status int) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // only the status matters
	resp.Body.Close()
	if resp.StatusCode != status {
		return fmt.Errorf("GET %s %v: status %d, want %d", url, headers, resp.StatusCode, status)
	}
	return nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func collect(errc <-chan error) []error {
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errs
}

func memoryMarkdown(results []memResult, gh *ghMemory, n int) string {
	var sb strings.Builder
	sb.WriteString("## gatehouse-bench memory\n\n")
	sb.WriteString("- date: " + time.Now().UTC().Format("2006-01-02 15:04 MST") + "; machine: " + machine() + "; " + runtime.Version() + "\n\n")
	fmt.Fprintf(&sb, "Per-client tables, each in a process of its own, capacity = clients = %d distinct IPv4 clients:\n\n", n)
	sb.WriteString("| table | RSS idle MiB | RSS loaded MiB | bytes/client (RSS) | bytes/client (Go heap) |\n")
	sb.WriteString("|---|---:|---:|---:|---:|\n")
	worst, worstLabel := 0.0, ""
	for _, r := range results {
		label := r.What
		for _, k := range tableKinds {
			if k.kind == r.What {
				label = k.label
			}
		}
		perRSS := (float64(r.Loaded.RSS) - float64(r.Idle.RSS)) / float64(r.Clients)
		perHeap := (float64(r.Loaded.Heap) - float64(r.Idle.Heap)) / float64(r.Clients)
		if perRSS > worst {
			worst, worstLabel = perRSS, label
		}
		fmt.Fprintf(&sb, "| %s | %.1f | %.1f | %.0f | %.0f |\n", label, mib(r.Idle.RSS), mib(r.Loaded.RSS), perRSS, perHeap)
	}
	if gh == nil {
		return sb.String()
	}
	sb.WriteString("\ngatehouse serve with the full chain (testdata/memory-full.yaml), every table at its default capacity (100,000 clients):\n\n")
	sb.WriteString("| gatehouse | RSS MiB | anonymous MiB | file-backed MiB |\n|---|---:|---:|---:|\n")
	row := func(what string, m procfs.Mem) {
		fmt.Fprintf(&sb, "| %s | %.1f | %.1f | %.1f |\n", what, mib(m.RSS), mib(m.Anon), mib(m.File))
	}
	row("idle, 2 s after start", gh.Idle)
	if gh.Requests > 0 {
		row(fmt.Sprintf("after %.0f s of clean load (%d requests, %.0f/s, from %d clients)", gh.Load.Seconds(), gh.Requests,
			float64(gh.Requests)/gh.Load.Seconds(), memLoadClients), gh.Loaded)
	}
	var probeFull, everyFull uint64
	for _, st := range gh.Steps {
		what := "after %d distinct clients probing (probes jail, flood limiter)"
		if st.Phase == "every" {
			what = "after %d of them in every other table too (2 rate limits, hotlink and auth jails)"
			everyFull = max(everyFull, st.Mem.RSS)
		} else {
			probeFull = max(probeFull, st.Mem.RSS)
		}
		row(fmt.Sprintf(what, st.Clients), st.Mem)
	}
	sb.WriteString("\n| figure | measured | target |\n|---|---:|---:|\n")
	target := func(what, got string, want float64, gotv float64) {
		verdict := "met"
		if gotv > want {
			verdict = "**not met**"
		}
		fmt.Fprintf(&sb, "| %s | %s | ≤ %g (%s) |\n", what, got, want, verdict)
	}
	target("idle RSS, full chain, MiB", fmt.Sprintf("%.1f", mib(gh.Idle.RSS)), targetIdleMiB, mib(gh.Idle.RSS))
	target("bytes per tracked client, largest table: "+worstLabel, fmt.Sprintf("%.0f", worst), targetClientBytes, worst)
	if len(gh.Steps) > 0 && gh.Steps[len(gh.Steps)-1].Clients >= defaultCapacity {
		target("RSS at default capacities, probes jail and flood limiter full, MiB", fmt.Sprintf("%.1f", mib(probeFull)), targetFullMiB, mib(probeFull))
		target("RSS at default capacities, every table full, MiB", fmt.Sprintf("%.1f", mib(everyFull)), targetFullMiB, mib(everyFull))
	}
	if gh.Requests > 0 {
		target(fmt.Sprintf("RSS after %.0f s of clean load, MiB", gh.Load.Seconds()), fmt.Sprintf("%.1f", mib(gh.Loaded.RSS)), targetLoadedMiB, mib(gh.Loaded.RSS))
	}
	return sb.String()
}
