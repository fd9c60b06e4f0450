package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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
	"gatehouse/rules"
)

// memSample is one memory measurement of a process.
type memSample struct {
	RSS  uint64 `json:"rss"`  // VmRSS, bytes
	Heap uint64 `json:"heap"` // Go heap in use (HeapInuse), bytes; 0 when not known
}

// memResult is what one memory measurement reports.
type memResult struct {
	What    string    `json:"what"`
	Clients int       `json:"clients"` // distinct clients sent
	Tracked int       `json:"tracked"` // clients the table holds afterwards; -1: not known
	Idle    memSample `json:"idle"`
	Loaded  memSample `json:"loaded"`
	// Steps is the RSS after each step of clients (gatehouse binary).
	Steps []memStep `json:"steps,omitempty"`
}

// memStep is the RSS after the first Clients clients.
type memStep struct {
	Clients int    `json:"clients"`
	RSS     uint64 `json:"rss"`
}

// memoryMain is `gatehouse-bench memory`: the resident memory of the
// per-client tables, measured two ways.
//
//  1. In a process of its own per table (-measure), built with the rules
//     and middleware packages at a capacity of -n clients: a counting
//     jail (rules.Jails, the probes/auth/hotlink kind) and the flood
//     jail's limiter LRU (middleware.RateLimit), each fed -n distinct
//     IPv4 clients once.
//  2. The real gatehouse binary with a probes jail and a flood jail at
//     their default capacities, fed -gatehouse-clients probe requests
//     from distinct X-Forwarded-For addresses (its peer, 127.0.0.1, is a
//     trusted proxy): its RSS stays bounded by the capacity.
func memoryMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("memory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 1_000_000, "distinct clients per table (and the tables' capacity)")
	measure := fs.String("measure", "", "internal: measure one table (jail, flood) in this process and print JSON")
	gh := fs.String("gatehouse", "", "gatehouse `binary` (default: build ./cmd/gatehouse of this module)")
	ghClients := fs.Int("gatehouse-clients", 300_000, "distinct clients sent to the gatehouse binary (0: skip it)")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "gatehouse-bench-memory"), "scratch `directory`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *n < 1 || *n > 10_000_000 || *ghClients < 0 {
		return fmt.Errorf("%w: memory: -n must be 1 to 10,000,000 and -gatehouse-clients not negative", errUsage)
	}
	if *measure != "" {
		res, err := measureTable(*measure, *n)
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
	for _, what := range []string{"jail", "flood"} {
		b.logf("measuring the %s table with %d clients", what, *n)
		out, err := runCmd(ctx, placement{}, b.self, "memory", "-measure", what, "-n", strconv.Itoa(*n))
		if err != nil {
			return err
		}
		var r memResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			return fmt.Errorf("memory -measure %s: %w", what, err)
		}
		results = append(results, r)
	}
	if *ghClients > 0 {
		if *gh == "" {
			if *gh, err = buildGatehouse(ctx, b); err != nil {
				return err
			}
		}
		b.logf("sending %d distinct clients to gatehouse", *ghClients)
		r, err := measureGatehouse(ctx, b, *gh, *ghClients)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	_, err = io.WriteString(stdout, memoryMarkdown(results))
	return err
}

// measureTable builds one per-client table with capacity n in this
// process and fills it with n distinct clients.
func measureTable(what string, n int) (memResult, error) {
	res := memResult{What: what, Clients: n, Tracked: -1}
	addr := func(i int) netip.Addr { // 1.0.0.0 on: public, none allowed
		return netip.AddrFrom4([4]byte{byte(1 + i>>24), byte(i >> 16), byte(i >> 8), byte(i)})
	}
	sample := func() memSample {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return memSample{RSS: procfs.VMRSS(os.Getpid()), Heap: ms.HeapInuse}
	}
	switch what {
	case "jail":
		res.Idle = sample()
		j, err := rules.NewJails(rules.JailsConfig{
			Jails:    map[string]rules.JailConfig{"probes": {MaxRetry: 3}},
			Capacity: n,
		}, nil, nil)
		if err != nil {
			return res, err
		}
		for i := range n {
			j.Report("probes", addr(i), "probe")
		}
		if got := j.Offences("probes"); got != uint64(n) {
			return res, fmt.Errorf("jail counted %d offences, want %d", got, n)
		}
		res.Loaded = sample()
		runtime.KeepAlive(j)
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
			r.RemoteAddr = netip.AddrPortFrom(addr(i), 40000).String()
			h.ServeHTTP(w, r)
		}
		if passed != n {
			return res, fmt.Errorf("flood limiter passed %d of %d first requests", passed, n)
		}
		res.Loaded = sample()
		runtime.KeepAlive(h)
	default:
		return res, fmt.Errorf("%w: -measure %q is not jail or flood", errUsage, what)
	}
	return res, nil
}

// measureGatehouse runs the gatehouse binary with a probes jail and a
// flood jail, sends it clients probe requests from distinct
// X-Forwarded-For addresses, and reads its RSS before and after.
func measureGatehouse(ctx context.Context, b *bench, bin string, clients int) (memResult, error) {
	res := memResult{What: "gatehouse", Clients: clients, Tracked: -1}
	upPort, err := freePort()
	if err != nil {
		return res, err
	}
	upAddr := "127.0.0.1:" + strconv.Itoa(upPort)
	up, err := b.startRole(ctx, "upstream", placement{}, "upstream", "-listen", upAddr)
	if err != nil {
		return res, err
	}
	if err := waitHTTP(ctx, up, "http://"+upAddr+"/", nil, 20*time.Second); err != nil {
		return res, err
	}
	port, err := freePort()
	if err != nil {
		return res, err
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	conf := `listen: {http: "` + listen + `"}
trusted_proxies: [127.0.0.0/8]
hosts:
  - match: ["127.0.0.1"]
    upstreams: ["http://` + upAddr + `"]
probes: {presets: [common, php, wordpress, phpmyadmin, secrets, vcs, cgi, shells], jail: probes}
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: 1h}
  flood: {rate: 50, burst: 100, bantime: 10m}
firewall: {backend: none}
admin: {listen: "off"}
log: {access: "off", level: error}
`
	path := filepath.Join(b.dir, "memory-gatehouse.yaml")
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
	res.Idle = memSample{RSS: procfs.TreeRSS(g.pid())}

	// In steps of 100,000 clients, the default capacity, with the RSS
	// after each: it stops growing once the tables are full.
	const workers, step = 32, 100_000
	tr := &http.Transport{MaxIdleConnsPerHost: workers, Proxy: nil}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var forbidden atomic.Int64
	for from := 0; from < clients; from += step {
		to := min(from+step, clients)
		var next atomic.Int64
		next.Store(int64(from))
		errc := make(chan error, workers)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for ctx.Err() == nil {
					i := int(next.Add(1)) - 1
					if i >= to {
						return
					}
					req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+listen+"/.env", nil)
					req.Header.Set("X-Forwarded-For", netip.AddrFrom4([4]byte{byte(1 + i>>24), byte(i >> 16), byte(i >> 8), byte(i)}).String())
					resp, err := c.Do(req)
					if err != nil {
						errc <- err
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body) // only the status matters
					resp.Body.Close()
					if resp.StatusCode == http.StatusForbidden {
						forbidden.Add(1)
					}
				}
			})
		}
		wg.Wait()
		close(errc)
		if err := errors.Join(collect(errc)...); err != nil {
			return res, fmt.Errorf("gatehouse memory load: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.Steps = append(res.Steps, memStep{Clients: to, RSS: procfs.TreeRSS(g.pid())})
	}
	if got := forbidden.Load(); got != int64(clients) {
		return res, fmt.Errorf("gatehouse answered 403 to %d of %d probes", got, clients)
	}
	res.Loaded = memSample{RSS: procfs.TreeRSS(g.pid())}
	return res, nil
}

func collect(errc <-chan error) []error {
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errs
}

func memoryMarkdown(results []memResult) string {
	var sb strings.Builder
	sb.WriteString("## gatehouse-bench memory\n\n")
	sb.WriteString("- date: " + time.Now().UTC().Format("2006-01-02 15:04 MST") + "; machine: " + machine() + "; " + runtime.Version() + "\n\n")
	sb.WriteString("| table | distinct clients | RSS idle MiB | RSS loaded MiB | RSS growth MiB | bytes/client (RSS) | Go heap growth MiB |\n")
	sb.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		label := map[string]string{
			"jail":      "counting jail (rules.Jails, maxretry 3), capacity = clients",
			"flood":     "flood jail limiter LRU (middleware.RateLimit), capacity = clients",
			"gatehouse": "gatehouse binary: probes + flood jails, default capacities (100,000 each)",
		}[r.What]
		grow := float64(r.Loaded.RSS) - float64(r.Idle.RSS)
		heap := "–"
		if r.Loaded.Heap > 0 {
			heap = fmt.Sprintf("%.1f", (float64(r.Loaded.Heap)-float64(r.Idle.Heap))/(1<<20))
		}
		perClient := fmt.Sprintf("%.0f", grow/float64(r.Clients))
		if r.What == "gatehouse" {
			perClient = "–" // more clients than the tables hold
		}
		fmt.Fprintf(&sb, "| %s | %d | %.1f | %.1f | %.1f | %s | %s |\n", label, r.Clients,
			mib(r.Idle.RSS), mib(r.Loaded.RSS), grow/(1<<20), perClient, heap)
	}
	for _, r := range results {
		if len(r.Steps) == 0 {
			continue
		}
		sb.WriteString("\ngatehouse binary, RSS after each step of distinct clients (the tables hold 100,000 each; beyond that, new clients evict old ones):\n\n| distinct clients sent | RSS MiB |\n|---:|---:|\n")
		fmt.Fprintf(&sb, "| 0 | %.1f |\n", mib(r.Idle.RSS))
		for _, st := range r.Steps {
			fmt.Fprintf(&sb, "| %d | %.1f |\n", st.Clients, mib(st.RSS))
		}
	}
	return sb.String()
}
