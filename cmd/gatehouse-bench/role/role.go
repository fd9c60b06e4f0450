package role

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The roles are the small programs the benchmarks run as processes of
// their own (so each can be pinned and measured apart): the upstream app,
// the bare Go reverse proxy, the probe scanner and a one-shot HTTP check.
// They are subcommands of gatehouse-bench, started from its own
// executable.

// Sizes of the upstream's answers: "/" (and every other path) and /big.
const (
	SmallBody = 100
	BigBody   = 64 << 10
)

// serveUntilSignal serves srv on ln until SIGTERM or SIGINT, then closes
// it.
func serveUntilSignal(srv *http.Server, ln net.Listener) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return srv.Close()
	}
}

// Upstream is the app behind every proxy: 200 with a 100-byte body
// on every path and 64 KiB on /big; with -notfound, 404 on every path
// but those two, like an app without /wp-login.php. With -stats FILE it
// appends "unix_ms legit other" (cumulative counts of "/" and /big
// requests and of the rest) every 100 ms.
func Upstream(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "listen `address`")
	stats := fs.String("stats", "", "append request counters to `FILE` every 100 ms")
	notFound := fs.Bool("notfound", false, "answer 404 on paths other than / and /big")
	if err := fs.Parse(args); err != nil {
		return err
	}
	small := append(bytes.Repeat([]byte("x"), SmallBody-1), '\n')
	big := bytes.Repeat([]byte("b"), BigBody)
	ct := []string{"text/plain"}
	smallLen, bigLen := []string{strconv.Itoa(len(small))}, []string{strconv.Itoa(len(big))}
	var legit, other atomic.Int64
	h := func(w http.ResponseWriter, r *http.Request) {
		b, l := small, smallLen
		switch {
		case r.URL.Path == "/big":
			b, l = big, bigLen
		case r.URL.Path != "/" && *notFound:
			other.Add(1)
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		legit.Add(1)
		hd := w.Header()
		hd["Content-Type"] = ct
		hd["Content-Length"] = l
		_, _ = w.Write(b) // a client gone is not the upstream's problem
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *stats != "" {
		f, err := os.OpenFile(*stats, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		done := make(chan struct{})
		var wg sync.WaitGroup
		defer wg.Wait()
		defer close(done)
		wg.Go(func() {
			bw := bufio.NewWriter(f)
			for {
				select {
				case now := <-t.C:
					fmt.Fprintf(bw, "%d %d %d\n", now.UnixMilli(), legit.Load(), other.Load())
					_ = bw.Flush() // a lost sample shows as a gap, not a wrong rate
				case <-done:
					return
				}
			}
		})
	}
	srv := &http.Server{Handler: http.HandlerFunc(h), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return serveUntilSignal(srv, ln)
}

// bufferPool is an httputil.BufferPool of 32 KiB buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }

// Bare is the floor every Go proxy pays: net/http/httputil's
// ReverseProxy with a transport sized for the load (Go's default keeps 2
// idle connections per host, which makes a busy proxy dial for most
// requests) and nothing else.
func Bare(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "listen `address`")
	upstream := fs.String("upstream", "", "upstream base `URL`")
	idle := fs.Int("idle", 128, "Transport.MaxIdleConnsPerHost (0: Go's default, 2)")
	pool := fs.Bool("bufpool", false, "give the ReverseProxy a BufferPool")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-upstream %q: not a URL", *upstream)
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   *idle,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: tr,
	}
	if *pool {
		rp.BufferPool = &bufferPool{}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return serveUntilSignal(srv, ln)
}

// Get makes one request and prints "STATUS BYTES", the body size, or
// "refused" when the connection was refused (the namespaces' link check):
// the benchmarks' pre-flight check of what a proxy answers, from a given
// source address inside a namespace.
func Get(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	source := fs.String("source", "", "source `address` to bind")
	timeout := fs.Duration("timeout", 5*time.Second, "request timeout")
	var headers headerFlags
	fs.Var(&headers, "H", "request header `Name: value` (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: get [-source IP] [-H header] URL")
	}
	d := &net.Dialer{Timeout: *timeout}
	if *source != "" {
		a, err := netip.ParseAddr(*source)
		if err != nil {
			return fmt.Errorf("-source: %w", err)
		}
		d.LocalAddr = &net.TCPAddr{IP: a.AsSlice()}
	}
	c := &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, Proxy: nil},
		Timeout:       *timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequest("GET", fs.Arg(0), nil)
	if err != nil {
		return err
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := c.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		_, err = fmt.Fprintln(stdout, "refused")
		return err
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%d %d\n", resp.StatusCode, n)
	return err
}

// headerFlags collects repeated -H flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// scanProbes are the paths the scanner cycles through: what real scanners
// ask for, and what every proxy under test blocks or passes on (nginx
// passes them to the app, which answers 404).
var scanProbes = []string{
	"/wp-login.php", "/.env", "/phpmyadmin/", "/.git/config", "/wp-admin/setup-config.php",
	"/xmlrpc.php", "/pma/index.php", "/.aws/credentials", "/mysqladmin/", "/cgi-bin/luci",
	"/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/admin/config.php",
}

// ScanReport is the scanner's JSON summary.
type ScanReport struct {
	// T0 is when the flood started, Unix ms.
	T0 int64 `json:"t0_unix_ms"`
	// Answered counts probes that got an HTTP answer, per scanner.
	Answered []int `json:"answered"`
	// Failed counts probes that got none (refused, timed out, reset),
	// per scanner.
	Failed []int `json:"failed"`
	// Pending counts probes still waiting for an answer when the flood
	// ended (a dropped SYN is retried until the probe times out), per
	// scanner.
	Pending []int `json:"pending"`
	// Status counts the HTTP answers by status code.
	Status map[string]int `json:"status"`
	// NthAnswerMS is when each scanner got its -maxretry-th HTTP answer,
	// the one to the probe that bans it, in ms from T0; -1: never.
	NthAnswerMS []int64 `json:"nth_answer_ms"`
}

// Scanner floods probe URIs from -n source addresses (base, base+1,
// …, skipping .0 and .255), one goroutine each, a new connection per
// probe, as fast as answers come, for -d; after a failed probe a scanner
// waits -pause. It prints a ScanReport.
func Scanner(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scanner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "", "`host:port` to scan")
	base := fs.String("base", "", "first source `address`")
	n := fs.Int("n", 200, "scanners (source addresses), at most 4000")
	dur := fs.Duration("d", 20*time.Second, "flood duration")
	timeout := fs.Duration("timeout", 2*time.Second, "per-probe timeout")
	pause := fs.Duration("pause", 200*time.Millisecond, "pause after a failed probe")
	nth := fs.Int("maxretry", 3, "record when each scanner gets this many answers (the jail's maxretry)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	first, err := netip.ParseAddr(*base)
	if err != nil || !first.Is4() {
		return fmt.Errorf("-base %q: not an IPv4 address", *base)
	}
	if *n < 1 || *n > 4000 {
		return fmt.Errorf("-n %d: want 1 to 4000", *n)
	}
	host, _, err := net.SplitHostPort(*target)
	if err != nil {
		return fmt.Errorf("-target: %w", err)
	}
	srcs := ScannerAddrs(first, *n)
	rep := ScanReport{T0: time.Now().UnixMilli(), Answered: make([]int, *n), Failed: make([]int, *n), Pending: make([]int, *n),
		NthAnswerMS: make([]int64, *n)}
	status := make([]map[int]int, *n)
	deadline := time.UnixMilli(rep.T0).Add(*dur)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var wg sync.WaitGroup
	for i, src := range srcs {
		status[i] = map[int]int{}
		rep.NthAnswerMS[i] = -1
		wg.Go(func() {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: *timeout}
			c := &http.Client{
				Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, Proxy: nil,
					ResponseHeaderTimeout: *timeout},
				Timeout:       *timeout,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			for k := 0; ctx.Err() == nil; k++ {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+*target+scanProbes[(i+k)%len(scanProbes)], nil)
				req.Host = host
				req.Header.Set("User-Agent", "Mozilla/5.0 (compatible; gatehouse-bench scanner)")
				resp, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body) // a cut body still was an answer
					resp.Body.Close()
					rep.Answered[i]++
					if rep.Answered[i] == *nth {
						rep.NthAnswerMS[i] = time.Now().UnixMilli() - rep.T0
					}
					status[i][resp.StatusCode]++
					continue
				}
				if ctx.Err() != nil {
					rep.Pending[i]++ // the flood is over; this probe was cut by the deadline
					return
				}
				rep.Failed[i]++
				select {
				case <-ctx.Done():
				case <-time.After(*pause):
				}
			}
		})
	}
	wg.Wait()
	rep.Status = map[string]int{}
	for _, m := range status {
		for code, c := range m {
			rep.Status[strconv.Itoa(code)] += c
		}
	}
	return json.NewEncoder(stdout).Encode(rep)
}

// ScannerAddrs returns n IPv4 addresses from first on, skipping those
// ending in .0 and .255.
func ScannerAddrs(first netip.Addr, n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	for a := first; len(out) < n && a.IsValid(); a = a.Next() {
		if b := a.As4(); b[3] == 0 || b[3] == 255 {
			continue
		}
		out = append(out, a)
	}
	return out
}

// AnswersSummary returns the mean, 95th percentile and maximum of the
// answers per scanner.
func AnswersSummary(answered []int) (mean float64, p95, maxN int) {
	if len(answered) == 0 {
		return 0, 0, 0
	}
	s := slices.Sorted(slices.Values(answered))
	total := 0
	for _, v := range s {
		total += v
	}
	k := (len(s)*95 + 99) / 100
	return float64(total) / float64(len(s)), s[max(k-1, 0)], s[len(s)-1]
}
