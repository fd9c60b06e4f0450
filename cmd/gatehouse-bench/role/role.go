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
	"math/rand/v2"
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
		if k, v = strings.TrimSpace(k), strings.TrimSpace(v); strings.EqualFold(k, "Host") {
			req.Host = v // net/http sends req.Host, not a Host header
			continue
		}
		req.Header.Set(k, v)
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

// ScanReport is the scanner's JSON summary. Per-scanner slices are
// indexed like the source addresses (IPv4) or /48s (IPv6 rotation).
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
	// LastAnswerMS is when each scanner got its last HTTP answer, in ms
	// from T0; -1: never.
	LastAnswerMS []int64 `json:"last_answer_ms"`
	// Subnets counts the /64s each IPv6 scanner sent probes from; nil
	// for IPv4 scanners.
	Subnets []int `json:"subnets,omitempty"`
}

// Scanner floods probe URIs for -d, one goroutine per scanner, a new
// connection per probe, as fast as answers come; after a failed probe a
// scanner waits -pause. An IPv4 -base gives -n source addresses (base,
// base+1, …, skipping .0 and .255), one per scanner. An IPv6 -base is
// the first of -n /48s (Attacker48s), one per scanner, which takes a
// fresh address from its current /64 for every probe and the next /64
// every -rotate-every probes: binding to addresses no interface holds
// needs them routed locally (`ip route add local PREFIX dev lo`) and
// net.ipv6.ip_nonlocal_bind. It prints a ScanReport.
func Scanner(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scanner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "", "`host:port` to scan")
	hostHdr := fs.String("host", "", "Host header (default: the -target host)")
	base := fs.String("base", "", "first source `address` (IPv4) or first /48 (IPv6)")
	n := fs.Int("n", 200, "scanners: source addresses or /48s, at most 5000")
	every := fs.Int("rotate-every", 4, "IPv6: probes from each /64 before the next one")
	dur := fs.Duration("d", 20*time.Second, "flood duration")
	timeout := fs.Duration("timeout", 2*time.Second, "per-probe timeout")
	pause := fs.Duration("pause", 200*time.Millisecond, "pause after a failed probe")
	nth := fs.Int("maxretry", 3, "record when each scanner gets this many answers (the jail's maxretry)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	first, err := netip.ParseAddr(*base)
	if err != nil || first.Zone() != "" {
		return fmt.Errorf("-base %q: not an IP address", *base)
	}
	if *n < 1 || *n > 5000 {
		return fmt.Errorf("-n %d: want 1 to 5000", *n)
	}
	if *every < 1 {
		return fmt.Errorf("-rotate-every %d: want at least 1", *every)
	}
	host, _, err := net.SplitHostPort(*target)
	if err != nil {
		return fmt.Errorf("-target: %w", err)
	}
	if *hostHdr == "" {
		*hostHdr = host
	}
	if strings.Contains(*hostHdr, ":") && !strings.HasPrefix(*hostHdr, "[") {
		*hostHdr = "[" + *hostHdr + "]"
	}
	// source returns the address scanner i sends its k-th probe from.
	var source func(i, k int) netip.Addr
	if first.Is4() {
		srcs := ScannerAddrs(first, *n)
		if len(srcs) < *n {
			return fmt.Errorf("-base %s: fewer than %d addresses above it", first, *n)
		}
		source = func(i, _ int) netip.Addr { return srcs[i] }
	} else {
		nets, err := Attacker48s(first, *n)
		if err != nil {
			return err
		}
		source = func(i, k int) netip.Addr { return RotatedAddr(nets[i], k / *every, rand.Uint64()) }
	}
	rep := ScanReport{T0: time.Now().UnixMilli(), Answered: make([]int, *n), Failed: make([]int, *n), Pending: make([]int, *n),
		NthAnswerMS: make([]int64, *n), LastAnswerMS: make([]int64, *n)}
	if first.Is6() {
		rep.Subnets = make([]int, *n)
	}
	// The requests are written once; a scanner costs its connections
	// and little else, so the load CPU floods rather than parses.
	reqs := make([][]byte, len(scanProbes))
	for k, path := range scanProbes {
		reqs[k] = []byte("GET " + path + " HTTP/1.1\r\nHost: " + *hostHdr +
			"\r\nUser-Agent: Mozilla/5.0 (compatible; gatehouse-bench scanner)\r\nAccept: */*\r\nConnection: close\r\n\r\n")
	}
	status := make([]map[int]int, *n)
	deadline := time.UnixMilli(rep.T0).Add(*dur)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var wg sync.WaitGroup
	for i := range *n {
		status[i] = map[int]int{}
		rep.NthAnswerMS[i], rep.LastAnswerMS[i] = -1, -1
		wg.Go(func() {
			for k := 0; ctx.Err() == nil; k++ {
				if rep.Subnets != nil && k%*every == 0 {
					rep.Subnets[i]++
				}
				code, err := probe(ctx, source(i, k), *target, reqs[(i+k)%len(reqs)], *timeout)
				if err == nil {
					rep.Answered[i]++
					rep.LastAnswerMS[i] = time.Now().UnixMilli() - rep.T0
					if rep.Answered[i] == *nth {
						rep.NthAnswerMS[i] = rep.LastAnswerMS[i]
					}
					status[i][code]++
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

// probe sends one request over a new connection from src and returns
// the answer's status code once the server has closed the connection
// (the request asks it to) or sent 64 KiB.
func probe(ctx context.Context, src netip.Addr, target string, req []byte, timeout time.Duration) (int, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) }) // the flood's end cuts the probe
	defer stop()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	// An answer is a status line; the rest is read (to the server's
	// close, as a client would) but only bounded by 64 KiB.
	var buf [4096]byte
	n, total, code := 0, 0, 0
	for total < 64<<10 {
		m, err := c.Read(buf[n:])
		n, total = n+m, total+m
		if code == 0 {
			line, _, ok := bytes.Cut(buf[:n], []byte("\n"))
			switch {
			case ok:
				if code, err = parseStatusLine(line); err != nil {
					return 0, err
				}
			case err != nil:
				return 0, fmt.Errorf("probe: no status line: %w", err)
			case n == len(buf):
				return 0, errors.New("probe: no status line in the first 4 KiB")
			default:
				continue
			}
		}
		n = 0
		if err != nil {
			return code, nil // EOF, or a reset or timeout after the answer
		}
	}
	return code, nil
}

// parseStatusLine returns the code of an HTTP/1.x status line.
func parseStatusLine(line []byte) (int, error) {
	f := strings.Fields(string(line))
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") || len(f[1]) != 3 {
		return 0, fmt.Errorf("probe: status line %q", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil || code < 100 {
		return 0, fmt.Errorf("probe: status line %q", line)
	}
	return code, nil
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

// Attacker48s returns n consecutive /48s from the one holding first.
func Attacker48s(first netip.Addr, n int) ([]netip.Prefix, error) {
	if !first.Is6() || first.Is4In6() {
		return nil, fmt.Errorf("attacker /48s from %s: not an IPv6 address", first)
	}
	b := first.As16()
	v := uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
	if v+uint64(n) > 1<<48 {
		return nil, fmt.Errorf("attacker /48s from %s: fewer than %d above it", first, n)
	}
	out := make([]netip.Prefix, n)
	for i := range out {
		w := v + uint64(i)
		var a [16]byte
		for j := range 6 {
			a[j] = byte(w >> (40 - 8*j))
		}
		out[i] = netip.PrefixFrom(netip.AddrFrom16(a), 48)
	}
	return out, nil
}

// RotatedAddr returns the address with interface identifier iid in the
// subnet-th /64 of the /48 p (subnet taken modulo 65536). A zero iid
// (the subnet-router anycast address) is replaced by 1.
func RotatedAddr(p netip.Prefix, subnet int, iid uint64) netip.Addr {
	a := p.Masked().Addr().As16()
	a[6], a[7] = byte(subnet>>8), byte(subnet)
	if iid == 0 {
		iid = 1
	}
	for j := range 8 {
		a[8+j] = byte(iid >> (56 - 8*j))
	}
	return netip.AddrFrom16(a)
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
