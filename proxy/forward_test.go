package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// forwardUpstream is a net/http upstream with one answer of each kind
// the fast path frames; /echo answers with what it was sent.
func forwardUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		seen := map[string]any{"method": r.Method, "uri": r.RequestURI, "host": r.Host, "header": r.Header}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen)
	})
	mux.HandleFunc("/base/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s", r.RequestURI)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "first ")
		w.(http.Flusher).Flush()
		io.WriteString(w, "second")
	})
	mux.HandleFunc("/trailers", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Sum", "42")
	})
	mux.HandleFunc("/late-trailer", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set(http.TrailerPrefix+"X-Late", "7")
	})
	mux.HandleFunc("/early", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "after hints")
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/notmod", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Etag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
	})
	mux.HandleFunc("/hop", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Secret")
		h.Set("X-Secret", "s")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Server", "upstream")
		h.Set("Pragma", "no-cache")
		h.Add("X-Multi", "a")
		h.Add("X-Multi", "b")
		io.WriteString(w, "hop")
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Length", "12")
		io.WriteString(w, "data: x\n\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, "end")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, strings.Repeat("0123456789abcdef", 20<<10))
	})
	mux.HandleFunc("/cut", func(w http.ResponseWriter, _ *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..")
		brw.Flush()
		c.Close()
	})
	up := httptest.NewServer(mux)
	t.Cleanup(up.Close)
	return up
}

// forwardGateways returns two gateways on one config: one with the
// fast path, one with every request through ReverseProxy.
func forwardGateways(t *testing.T, upstream string) (fast, slow string) {
	t.Helper()
	yaml := `listen: {http: "127.0.0.1:0"}
admin: {listen: "off"}
trusted_proxies: [127.0.0.0/8]
hosts:
  - match: [app.example.com]
    upstreams: [` + upstream + `]
    headers: {set: {X-Frame-Options: DENY}, remove: [Server]}
  - match: [base.example.com]
    upstreams: [` + upstream + `/base]
log: {access: "off"}
`
	addrs := [2]string{}
	for i := range addrs {
		s, err := New(Options{Config: mustConfig(t, yaml)})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range s.current.Load().router.routes() {
			if r.fast == nil {
				t.Fatalf("host %s has no fast path", r.name)
			}
			if i == 1 {
				r.fast = nil
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { s.sinks.Run(ctx); close(done) }()
		srv := httptest.NewServer(s)
		t.Cleanup(func() { srv.Close(); cancel(); <-done; s.current.Load().closeIdle() })
		addrs[i] = srv.Listener.Addr().String()
	}
	return addrs[0], addrs[1]
}

// rawAnswer is what a client read of an answer.
type rawAnswer struct {
	Status  int
	Header  http.Header
	Body    string
	Trailer http.Header
	Err     string
}

// rawDo sends raw, a whole request head, to addr and reads the answer
// (the informational ones before it included, in Early).
func rawDo(t *testing.T, addr, raw string, head bool) (early []int, a rawAnswer) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	method := "GET"
	if head {
		method = "HEAD"
	}
	req, _ := http.NewRequest(method, "http://x/", nil)
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			a.Err = err.Error()
			return early, a
		}
		if resp.StatusCode < 200 {
			early = append(early, resp.StatusCode)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			a.Err = "body: " + err.Error()
		}
		resp.Header.Del("Date")
		return early, rawAnswer{Status: resp.StatusCode, Header: resp.Header, Body: string(body), Trailer: resp.Trailer, Err: a.Err}
	}
}

// TestForwardMatchesReverseProxy sends the same requests through the
// fast path and through ReverseProxy, to net/http upstreams: the
// upstream must see the same request, and the client the same answer.
func TestForwardMatchesReverseProxy(t *testing.T) {
	t.Parallel()
	up := forwardUpstream(t)
	fast, slow := forwardGateways(t, up.URL)
	tests := []struct {
		name string
		raw  string
		head bool
	}{
		{name: "plain get", raw: "GET /echo HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: ua/1\r\nAccept: */*\r\n\r\n"},
		{name: "query and escapes", raw: "GET /echo/%2Fa%20b?x=1&y=%41 HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
		{name: "no user agent", raw: "GET /echo HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
		{name: "connection names user-agent", raw: "GET /echo HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: ua/1\r\nConnection: User-Agent\r\n\r\n"},
		{name: "hop-by-hop request headers", raw: "GET /echo HTTP/1.1\r\nHost: app.example.com\r\n" +
			"Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: 300\r\nProxy-Authorization: Basic eA==\r\n" +
			"Te: trailers, deflate\r\nUpgrade: \r\nX-Keep: 2\r\n\r\n"},
		{name: "forwarding headers from a trusted proxy", raw: "GET /echo HTTP/1.1\r\nHost: app.example.com\r\n" +
			"X-Forwarded-For: 198.51.100.1, 198.51.100.2\r\nX-Forwarded-For: 198.51.100.3\r\nX-Forwarded-Proto: https\r\n" +
			"X-Forwarded-Host: shop.example.com\r\nForwarded: for=1.2.3.4\r\nX-Real-Ip: 6.6.6.6\r\n\r\n"},
		{name: "signed referer", raw: "GET /echo HTTP/1.1\r\nHost: app.example.com\r\n" +
			"Referer: https://app.example.com/paid/a.mp4?gh_expires=9&gh_signature=c2VjcmV0\r\n\r\n"},
		{name: "repeated headers", raw: "GET /echo HTTP/1.1\r\nHost: app.example.com\r\nX-A: 1\r\nX-A: 2\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"},
		{name: "head", raw: "HEAD /echo HTTP/1.1\r\nHost: app.example.com\r\n\r\n", head: true},
		{name: "base path", raw: "GET /echo?q=1 HTTP/1.1\r\nHost: base.example.com\r\n\r\n"},
		{name: "chunked answer", raw: "GET /chunked HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
		{name: "announced trailer", raw: "GET /trailers HTTP/1.1\r\nHost: app.example.com\r\nTe: trailers\r\n\r\n"},
		{name: "unannounced trailer", raw: "GET /late-trailer HTTP/1.1\r\nHost: app.example.com\r\nTe: trailers\r\n\r\n"},
		{name: "early hints", raw: "GET /early HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
		{name: "204", raw: "GET /nocontent HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
		{name: "304", raw: "GET /notmod HTTP/1.1\r\nHost: app.example.com\r\nIf-None-Match: \"x\"\r\n\r\n"},
		{name: "hop-by-hop answer headers", raw: "GET /hop HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
		{name: "event stream", raw: "GET /sse HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
		{name: "big body", raw: "GET /big HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
		{name: "answer cut off", raw: "GET /cut HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
		{name: "post takes the reverse proxy", raw: "POST /echo HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 2\r\n\r\nhi"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fastEarly, got := rawDo(t, fast, tc.raw, tc.head)
			slowEarly, want := rawDo(t, slow, tc.raw, tc.head)
			if !reflect.DeepEqual(fastEarly, slowEarly) {
				t.Errorf("informational answers = %v, ReverseProxy %v", fastEarly, slowEarly)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("answer:\n%+v\nReverseProxy:\n%+v", got, want)
			}
		})
	}
}

// The fast path strips what it must even where both paths agree; these
// pin the behaviour itself.
func TestForwardHeaders(t *testing.T) {
	t.Parallel()
	up := forwardUpstream(t)
	fast, _ := forwardGateways(t, up.URL)
	_, a := rawDo(t, fast, "GET /echo HTTP/1.1\r\nHost: app.example.com\r\nConnection: X-Drop\r\nX-Drop: 1\r\n"+
		"Te: trailers\r\nReferer: https://app.example.com/x?gh_signature=c2VjcmV0\r\n\r\n", false)
	if a.Status != http.StatusOK {
		t.Fatalf("status = %d (%s), want 200", a.Status, a.Err)
	}
	var seen struct{ Header http.Header }
	if err := json.Unmarshal([]byte(a.Body), &seen); err != nil {
		t.Fatal(err)
	}
	h := seen.Header
	for _, name := range []string{"X-Drop", "Connection"} {
		if v, ok := h[name]; ok {
			t.Errorf("upstream got %s: %q, want it stripped", name, v)
		}
	}
	if got := h.Get("Te"); got != "trailers" {
		t.Errorf("upstream got Te %q, want \"trailers\"", got)
	}
	if got := h.Get("Referer"); strings.Contains(got, "c2VjcmV0") {
		t.Errorf("upstream got Referer %q, want the signature redacted", got)
	}
	if got := h.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("upstream got X-Forwarded-For %q, want \"127.0.0.1\"", got)
	}
	_, a = rawDo(t, fast, "GET /hop HTTP/1.1\r\nHost: app.example.com\r\n\r\n", false)
	for _, name := range []string{"X-Secret", "Keep-Alive", "Server"} {
		if v, ok := a.Header[name]; ok {
			t.Errorf("client got %s: %q, want it stripped", name, v)
		}
	}
	if got := a.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("client got X-Frame-Options %q, want the host's \"DENY\"", got)
	}
}

// An upstream that switches protocols unasked gets a 502, as
// ReverseProxy answers it.
func TestForwardUnaskedSwitch(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			}()
		}
	}()
	fast, slow := forwardGateways(t, "http://"+ln.Addr().String())
	for _, addr := range []string{fast, slow} {
		_, a := rawDo(t, addr, "GET /x HTTP/1.1\r\nHost: app.example.com\r\n\r\n", false)
		if a.Status != http.StatusBadGateway {
			t.Errorf("unasked 101 → %d (%s), want 502", a.Status, a.Err)
		}
	}
}

// BenchmarkForward measures the fast path against ReverseProxy over the
// same loopback upstream; client, gateway and upstream share the
// process.
func BenchmarkForward(b *testing.B) {
	up := benchUpstream(b)
	for _, name := range []string{"fast", "reverseproxy"} {
		b.Run(name, func(b *testing.B) {
			s := gatehouseHandler(b, up.URL, "off", "")
			if name == "reverseproxy" {
				for _, r := range s.current.Load().router.routes() {
					r.fast = nil
				}
			}
			runRequests(b, benchClient(b), serveOn(b, s))
		})
	}
}

// rawScriptUpstream answers each request on its connection with
// script[path], written as is; one that ends with "\x00close" closes the
// connection after it.
func rawScriptUpstream(t *testing.T, script map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					a, closing := strings.CutSuffix(script[req.URL.Path], "\x00close")
					if _, err := io.WriteString(c, a); err != nil || closing {
						return
					}
				}
			})
		}
	})
	return "http://" + ln.Addr().String()
}

// Answers net/http frames in its own way get the same answer through
// the fast path as through ReverseProxy.
func TestForwardFramingMatchesReverseProxy(t *testing.T) {
	t.Parallel()
	script := map[string]string{
		"/cl-list":      "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
		"/cl-repeated":  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
		"/http10-te":    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n\x00close",
		"/http10-te-cl": "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok",
	}
	fast, slow := forwardGateways(t, rawScriptUpstream(t, script))
	for path := range script {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			raw := "GET " + path + " HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
			fastEarly, got := rawDo(t, fast, raw, false)
			slowEarly, want := rawDo(t, slow, raw, false)
			if !reflect.DeepEqual(fastEarly, slowEarly) {
				t.Errorf("informational answers = %v, ReverseProxy %v", fastEarly, slowEarly)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("answer:\n%+v\nReverseProxy:\n%+v", got, want)
			}
		})
	}
}
