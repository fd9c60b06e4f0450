package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/proxy/config"

	"golang.org/x/crypto/bcrypt"
)

// body100 is the bench workload's response: 100 bytes, as in
// ../shared/bench scenario 1.
var body100 = strings.Repeat("x", 99) + "\n"

func benchUpstream(b *testing.B) *httptest.Server {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body100)
	}))
	b.Cleanup(up.Close)
	return up
}

// serveOn serves h on a fresh loopback listener and returns its URL.
func serveOn(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func benchClient(b *testing.B) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func gatehouseHandler(b *testing.B, upstream, access, extra string) *Server {
	b.Helper()
	return benchServer(b, `listen: {http: "127.0.0.1:0"}
trusted_proxies: [10.0.0.0/8]
hosts:
  - match: [bench.example.com, "*.bench.example.com"]
    upstreams: [`+upstream+`]
admin: {listen: "off"}
log: {access: `+access+extra+`}
`)
}

// benchServer builds a Server from yaml and runs its access log sink for
// the benchmark's lifetime.
func benchServer(b *testing.B, yaml string) *Server {
	b.Helper()
	cfg, err := config.Parse("bench.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Options{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.sinks.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return s
}

func runRequests(b *testing.B, client *http.Client, target string) {
	req, err := http.NewRequest("GET", target+"/", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Host = "bench.example.com"
	req.Header.Set("User-Agent", "bench")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkProxy compares the full gatehouse chain with a bare
// httputil.ReverseProxy (tuned transport, the floor every Go proxy pays)
// over the same loopback upstream. Client, proxy and upstream share the
// process, so ns/op and allocs/op include all three; the difference
// between rows is the gateway's overhead.
func BenchmarkProxy(b *testing.B) {
	up := benchUpstream(b)
	upURL, _ := url.Parse(up.URL)

	b.Run("bare-reverseproxy", func(b *testing.B) {
		rp := httputil.NewSingleHostReverseProxy(upURL)
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
		runRequests(b, benchClient(b), serveOn(b, rp))
	})
	b.Run("bare-reverseproxy-bufferpool", func(b *testing.B) {
		rp := httputil.NewSingleHostReverseProxy(upURL)
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
		rp.BufferPool = newBufferPool()
		runRequests(b, benchClient(b), serveOn(b, rp))
	})
	b.Run("gatehouse-log-off", func(b *testing.B) {
		s := gatehouseHandler(b, up.URL, "off", "")
		runRequests(b, benchClient(b), serveOn(b, s))
	})
	b.Run("gatehouse-log-combined", func(b *testing.B) {
		s := gatehouseHandler(b, up.URL, "combined", ", access_file: "+b.TempDir()+"/access.log")
		runRequests(b, benchClient(b), serveOn(b, s))
	})
}

// BenchmarkChain measures the handler chain alone, the upstream round trip
// replaced by a constant answer, beside a bare ReverseProxy on the same
// constant transport: the difference is the security chain's own cost.
func BenchmarkChain(b *testing.B) {
	req := httptest.NewRequest("GET", "http://bench.example.com/index.html", nil)
	req.RemoteAddr = "203.0.113.7:50000"
	req.Header.Set("User-Agent", "bench")
	run := func(b *testing.B, h http.Handler) {
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	}
	b.Run("bare-reverseproxy", func(b *testing.B) {
		rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: "127.0.0.1:1"})
		rp.Transport = constTransport{}
		rp.BufferPool = newBufferPool()
		run(b, rp)
	})
	b.Run("gatehouse", func(b *testing.B) {
		s := gatehouseHandler(b, "http://127.0.0.1:1", "off", "")
		for _, r := range s.current.Load().router.routes() {
			r.proxy.Transport, r.fast = constTransport{}, nil
		}
		run(b, s)
	})
	// The whole security chain: combined access log, probes (all
	// presets), hotlink, jails, ban guard.
	b.Run("gatehouse-full-chain", func(b *testing.B) {
		s := gatehouseFull(b, "")
		run(b, s)
	})
	// The same with basic auth and a bcrypt cost-10 user: after the first
	// request the cache answers, so it should cost about the same.
	b.Run("gatehouse-full-chain-basic-auth", func(b *testing.B) {
		users := filepath.Join(b.TempDir(), "users")
		hash, err := bcrypt.GenerateFromPassword([]byte("wonderland"), 10)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(users, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
		s := gatehouseFull(b, "    basic_auth: {htpasswd: "+users+"}\n")
		req := req.Clone(context.Background())
		req.SetBasicAuth("alice", "wonderland")
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			r := req.Clone(req.Context()) // basic auth removes the header
			s.ServeHTTP(w, r)
		}
	})
}

// gatehouseFull is a gatehouse with every protection on, the upstream
// round trip replaced by a constant answer.
func gatehouseFull(b *testing.B, hostExtra string) *Server {
	b.Helper()
	s := benchServer(b, `listen: {http: "127.0.0.1:0"}
hosts:
  - match: [bench.example.com]
    upstreams: [http://127.0.0.1:1]
    hotlink: {paths: [/media/, "*.mp4"], allow: [none, example.com]}
`+hostExtra+`probes: {presets: [common, php, wordpress, phpmyadmin, secrets, vcs, cgi, shells]}
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: 1h}
admin: {listen: "off"}
log: {access: combined, access_file: `+b.TempDir()+`/access.log}
`)
	for _, r := range s.current.Load().router.routes() {
		r.proxy.Transport, r.fast = constTransport{}, nil
	}
	return s
}

type constTransport struct{}

func (constTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Length": {"100"}},
		ContentLength: 100, Body: io.NopCloser(strings.NewReader(body100)), Request: r}, nil
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
