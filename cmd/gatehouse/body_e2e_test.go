//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"gatehouse/rules/testenv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The request body tests: a stalled body ends with 408 and an
// aborted upstream request, a trickling one is served, a malformed one
// ends with 400 and a closed connection, and nothing after a malformed
// body is ever read as a request.

// bodyUpstream records what reached it: connections, requests (by URI),
// and whether each body arrived whole or broke off.
type bodyUpstream struct {
	srv      *httptest.Server
	conns    atomic.Int64 // connections opened to it
	hits     atomic.Int64 // requests started
	inflight atomic.Int64 // requests being served
	complete atomic.Int64 // bodies read to their end
	broken   chan string  // the URI of each body that broke off

	mu   sync.Mutex
	uris []string
}

func newBodyUpstream(t *testing.T) *bodyUpstream {
	t.Helper()
	u := &bodyUpstream{broken: make(chan string, 1024)}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(u.serveHTTP))
	u.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.srv.Start()
	t.Cleanup(u.srv.Close)
	return u
}

func (u *bodyUpstream) serveHTTP(w http.ResponseWriter, r *http.Request) {
	u.hits.Add(1)
	u.inflight.Add(1)
	defer u.inflight.Add(-1)
	u.mu.Lock()
	u.uris = append(u.uris, r.RequestURI)
	u.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		u.broken <- r.RequestURI
		return
	}
	u.complete.Add(1)
	// The test reads the answer; a failed write shows up there.
	_ = json.NewEncoder(w).Encode(map[string]any{"uri": r.RequestURI, "body": string(body),
		"content_length": r.ContentLength, "transfer_encoding": r.TransferEncoding})
}

func (u *bodyUpstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.uris)
}

// waitBroken waits for the upstream to see the body of uri break off.
func (u *bodyUpstream) waitBroken(t *testing.T, uri string) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case got := <-u.broken:
			if got == uri {
				return
			}
		case <-timer.C:
			t.Fatalf("the upstream did not see the body of %s break off within %v (requests seen: %q)", uri, waitTimeout, u.seen())
		}
	}
}

// waitAccess waits for an access log line with the status and path.
func (g *gateway) waitAccess(t *testing.T, status int, path string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for line := range strings.SplitSeq(g.stdout.String(), "\n") {
			var e accessLogEntry
			if json.Unmarshal([]byte(line), &e) == nil && e.Status == status && e.Path == path {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line with status %d for %s:\n%s", status, path, g.stdout)
		}
		g.pause(t)
	}
}

// bodyGateway starts a gateway with body_read_timeout 1s, a flood jail
// that never bans (offences are only counted), a streaming host, a
// buffering one, and a streaming one whose own body_read_timeout is 10s.
func bodyGateway(t *testing.T, stream, buffered *bodyUpstream) *gateway {
	t.Helper()
	return startGateway(t, gatewayConfig(fmt.Sprintf(`limits:
  body_read_timeout: 1s
jails:
  flood: {maxretry: 1000, findtime: 1m, bantime: 1m}
hosts:
  - match: [app.example.com]
    upstreams: [%s]
  - match: [buffered.example.com]
    upstreams: [%s]
    buffer_requests: true
    max_body: 1MB
  - match: [patient.example.com]
    upstreams: [%[1]s]
    body_read_timeout: 10s
`, stream.srv.URL, buffered.srv.URL)))
}

// TestBodyStalled: a client that sends its headers and part of its body
// and then nothing gets 408 with Connection: close one body_read_timeout
// later, its connection is closed, the upstream sees the request break
// off (never a complete one), the stall is a flood offence, and the
// access log shows 408. With buffer_requests the upstream is never
// contacted at all.
func TestBodyStalled(t *testing.T) {
	t.Parallel()
	stream, buffered := newBodyUpstream(t), newBodyUpstream(t)
	g := bodyGateway(t, stream, buffered)

	tests := []struct {
		name     string
		host     string
		path     string
		raw      string // after the request line and Host
		upstream *bodyUpstream
		buffered bool
	}{
		{name: "content-length, part sent", host: "app.example.com", path: "/stall-cl",
			raw: "Content-Length: 10\r\n\r\nabc", upstream: stream},
		{name: "content-length, nothing sent", host: "app.example.com", path: "/stall-empty",
			raw: "Content-Length: 10\r\n\r\n", upstream: stream},
		{name: "chunked, mid-chunk", host: "app.example.com", path: "/stall-chunked",
			raw: "Transfer-Encoding: chunked\r\n\r\n5\r\nab", upstream: stream},
		{name: "buffered host", host: "buffered.example.com", path: "/stall-buffered",
			raw: "Content-Length: 10\r\n\r\nabc", upstream: buffered, buffered: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			offences := g.metric(t, "gatehouse_jail_offences_total", "jail", "flood")
			complete := tc.upstream.complete.Load()
			req := "POST " + tc.path + " HTTP/1.1\r\nHost: " + tc.host + "\r\n" + tc.raw
			c, err := net.DialTimeout("tcp", g.httpAddr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			answers, closed := closeExchange(t, c, req, false)
			if got := statusesOf(answers); !slices.Equal(got, []int{http.StatusRequestTimeout}) {
				t.Fatalf("statuses = %v, want [408]", got)
			}
			if !answers[0].close {
				t.Error("408 without Connection: close")
			}
			if !closed {
				t.Error("connection left open after the 408")
			}
			if tc.buffered {
				if n := tc.upstream.conns.Load(); n != 0 {
					t.Errorf("upstream connections = %d, want 0: a buffering host contacted the upstream for a stalled body", n)
				}
			} else {
				tc.upstream.waitBroken(t, tc.path)
			}
			if n := tc.upstream.complete.Load() - complete; n != 0 {
				t.Errorf("upstream read %d complete bodies, want 0", n)
			}
			g.waitMetric(t, offences+1, "gatehouse_jail_offences_total", "jail", "flood")
			g.waitAccess(t, http.StatusRequestTimeout, tc.path)
		})
	}
}

// TestBodyTrickle: body_read_timeout bounds the gap between two reads,
// not the whole body: a body sent one byte every quarter of the timeout
// takes longer than the timeout and is served, streamed or buffered.
func TestBodyTrickle(t *testing.T) {
	t.Parallel()
	stream, buffered := newBodyUpstream(t), newBodyUpstream(t)
	g := bodyGateway(t, stream, buffered)
	const body = "trickle"
	for _, tc := range []struct {
		name, host string
		body       string
		gap        time.Duration
	}{
		// 7 gaps of 250ms, 1.75s in all against a 1s timeout.
		{"streamed", "app.example.com", body, 250 * time.Millisecond},
		{"buffered", "buffered.example.com", body, 250 * time.Millisecond},
		// 2 gaps of 1.5s: over limits.body_read_timeout, within the
		// host's own.
		{"host override", "patient.example.com", "ok", 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.DialTimeout("tcp", g.httpAddr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
				t.Fatal(err)
			}
			head := fmt.Sprintf("POST /trickle HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", tc.host, len(tc.body))
			if _, err := io.WriteString(c, head); err != nil {
				t.Fatal(err)
			}
			// Pacing, not synchronisation.
			tick := time.NewTicker(tc.gap)
			defer tick.Stop()
			for i := range len(tc.body) {
				<-tick.C
				if _, err := c.Write([]byte{tc.body[i]}); err != nil {
					t.Fatalf("write byte %d: %v", i, err)
				}
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d (%q), want 200", resp.StatusCode, got)
			}
			var e struct {
				Body             string   `json:"body"`
				ContentLength    int64    `json:"content_length"`
				TransferEncoding []string `json:"transfer_encoding"`
			}
			if err := json.Unmarshal(got, &e); err != nil {
				t.Fatalf("upstream answer %q: %v", got, err)
			}
			if e.Body != tc.body || e.ContentLength != int64(len(tc.body)) {
				t.Errorf("upstream got body %q with Content-Length %d, want %q with %d", e.Body, e.ContentLength, tc.body, len(tc.body))
			}
		})
	}
	// A buffered chunked body reaches the upstream with a Content-Length.
	t.Run("buffered chunked gets a length", func(t *testing.T) {
		t.Parallel()
		raw := "POST /chunked HTTP/1.1\r\nHost: buffered.example.com\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
		answers, _ := rawExchange(t, g.httpAddr, raw, 1, false)
		if len(answers) != 1 || answers[0].status != 200 {
			t.Fatalf("answers = %v, want one 200", statuses(answers))
		}
		var e struct {
			Body             string   `json:"body"`
			ContentLength    int64    `json:"content_length"`
			TransferEncoding []string `json:"transfer_encoding"`
		}
		if err := json.Unmarshal([]byte(answers[0].body), &e); err != nil {
			t.Fatal(err)
		}
		if e.Body != "abcdefg" || e.ContentLength != 7 || len(e.TransferEncoding) != 0 {
			t.Errorf("upstream got %+v, want body abcdefg, Content-Length 7, no Transfer-Encoding", e)
		}
	})
	// A buffered body over 64KB goes through the temporary file.
	t.Run("buffered large body", func(t *testing.T) {
		t.Parallel()
		big := strings.Repeat("0123456789abcdef", 20<<10) // 320KB
		req, err := g.newRequest(t.Context(), "POST", "buffered.example.com", "/big", strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		resp, got := g.mustDo(t, req)
		if resp.StatusCode != 200 {
			t.Fatalf("status = %d, want 200", resp.StatusCode)
		}
		var e struct {
			Body          string `json:"body"`
			ContentLength int64  `json:"content_length"`
		}
		if err := json.Unmarshal(got, &e); err != nil {
			t.Fatal(err)
		}
		if e.Body != big || e.ContentLength != int64(len(big)) {
			t.Errorf("upstream got %d bytes (Content-Length %d), want the %d sent", len(e.Body), e.ContentLength, len(big))
		}
	})
	t.Run("buffered body over max_body", func(t *testing.T) {
		t.Parallel()
		req, err := g.newRequest(t.Context(), "POST", "buffered.example.com", "/too-big", io.MultiReader(strings.NewReader(strings.Repeat("x", 2<<20))))
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := g.mustDo(t, req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413", resp.StatusCode)
		}
	})
}

// TestBodyMalformed: once a request body is found malformed the client
// gets 400 with Connection: close, the connection is closed, the
// upstream request is aborted (its body never completes), and the
// complete request the client sent after the bad body is never read as
// a request (request smuggling through a body parse error).
func TestBodyMalformed(t *testing.T) {
	t.Parallel()
	stream, buffered := newBodyUpstream(t), newBodyUpstream(t)
	g := bodyGateway(t, stream, buffered)
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
	chunked := func(host, path string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\n"
	}
	tests := []struct {
		name, path, body string
		buffered         bool
		halfClose        bool // the client ends its side after the body
	}{
		{name: "bare LF in the size line", path: "/bare-lf", body: "3\nabc\r\n0\r\n\r\n"},
		{name: "0x size", path: "/0x", body: "0x3\r\nabc\r\n0\r\n\r\n"},
		{name: "bare CR before a chunk extension", path: "/bare-cr", body: "3\r;ext=1\r\nabc\r\n0\r\n\r\n"},
		{name: "bad second chunk", path: "/second", body: "3\r\nabc\r\nzz\r\nabc\r\n0\r\n\r\n"},
		{name: "chunk longer than its size", path: "/long-chunk", body: "3\r\nabcdef\r\n0\r\n\r\n"},
		{name: "chunk-size line over 4KB", path: "/long-line", body: "3;" + strings.Repeat("x", 5000) + "\r\nabc\r\n0\r\n\r\n"},
		{name: "malformed trailer", path: "/trailer", body: "3\r\nabc\r\n0\r\nno colon here\r\n\r\n"},
		{name: "bad chunk on a buffering host", path: "/buffered", body: "0x3\r\nabc\r\n0\r\n\r\n", buffered: true},
		{name: "content-length body cut short", path: "/short", halfClose: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host, up := "app.example.com", stream
			if tc.buffered {
				host, up = "buffered.example.com", buffered
			}
			complete := up.complete.Load()
			var req string
			if tc.halfClose {
				req = "POST " + tc.path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 10\r\n\r\nabc"
			} else {
				req = chunked(host, tc.path) + tc.body + smuggled
			}
			c, err := net.DialTimeout("tcp", g.httpAddr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			answers, closed := closeExchange(t, c, req, tc.halfClose)
			if got := statusesOf(answers); !slices.Equal(got, []int{http.StatusBadRequest}) {
				t.Fatalf("statuses = %v, want [400]", got)
			}
			if !answers[0].close {
				t.Error("400 without Connection: close")
			}
			if !closed {
				t.Error("connection left open after the 400")
			}
			if slices.Contains(stream.seen(), "/smuggled") || slices.Contains(buffered.seen(), "/smuggled") {
				t.Fatal("the request after the malformed body reached the upstream")
			}
			if tc.buffered {
				if n := up.conns.Load(); n != 0 {
					t.Errorf("upstream connections = %d, want 0 for a buffering host", n)
				}
			} else {
				up.waitBroken(t, tc.path)
			}
			if n := up.complete.Load() - complete; n != 0 {
				t.Errorf("upstream read %d complete bodies, want 0", n)
			}
			g.waitAccess(t, http.StatusBadRequest, tc.path)
		})
	}
	// The well-formed twin is served, and the pipelined request after it
	// too: the rules above refuse bad bodies, not pipelining.
	t.Run("well-formed twin", func(t *testing.T) {
		answers, _ := rawExchange(t, g.httpAddr, chunked("app.example.com", "/good")+"3\r\nabc\r\n0\r\n\r\n"+
			"GET /after HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n", 2, false)
		if got := statuses(answers); !slices.Equal(got, []int{200, 200}) {
			t.Fatalf("statuses = %v, want [200 200]", got)
		}
	})
}

// closeAnswer is one response read by closeExchange.
type closeAnswer struct {
	status int
	close  bool // Connection: close
}

func statusesOf(as []closeAnswer) []int {
	out := make([]int, len(as))
	for i, a := range as {
		out[i] = a.status
	}
	return out
}

// closeExchange writes req to c (then ends the client's side when
// halfClose), reads every response until the gateway closes or
// clientTimeout passes, and reports whether the gateway closed the
// connection. Any response past the first is a request the gateway
// should never have read.
func closeExchange(t *testing.T, c net.Conn, req string, halfClose bool) (answers []closeAnswer, closed bool) {
	t.Helper()
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write request: %v", err)
	}
	if halfClose {
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			return answers, !errors.As(err, &ne) || !ne.Timeout()
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answers = append(answers, closeAnswer{status: resp.StatusCode, close: resp.Close})
	}
}

// TestBodyStalledTLS: the timeout applies to an HTTP/2 stream too (the
// stream's read deadline): the stalled stream is answered 408 and the
// upstream request aborted; and to HTTP/1.1 over TLS.
func TestBodyStalledTLS(t *testing.T) {
	t.Parallel()
	up := newBodyUpstream(t)
	g, ca := h2Gateway(t, up.srv.URL, `limits:
  body_read_timeout: 1s
jails:
  flood: {maxretry: 1000, findtime: 1m, bantime: 1m}
`)
	client := tlsClient(g.httpsAddr, ca.pool)
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		// The first bytes, then nothing until the test ends.
		_, _ = pw.Write([]byte("abc"))
	}()
	req, err := http.NewRequestWithContext(t.Context(), "POST", "https://app.example.com/h2-stall", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 10
	offences := g.metric(t, "gatehouse_jail_offences_total", "jail", "flood")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST over HTTP/2: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol = %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status = %d, want 408", resp.StatusCode)
	}
	up.waitBroken(t, "/h2-stall")
	if n := up.complete.Load(); n != 0 {
		t.Errorf("upstream read %d complete bodies, want 0", n)
	}
	g.waitMetric(t, offences+1, "gatehouse_jail_offences_total", "jail", "flood")

	// HTTP/1.1 over TLS: the deadline is the TLS connection's, and the
	// answer closes the connection as on plain HTTP.
	t.Run("http/1.1 over TLS", func(t *testing.T) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.httpsAddr,
			&tls.Config{ServerName: "app.example.com", RootCAs: ca.pool, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		answers, closed := closeExchange(t, c, "POST /tls-stall HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 10\r\n\r\nabc", false)
		if got := statusesOf(answers); !slices.Equal(got, []int{http.StatusRequestTimeout}) {
			t.Fatalf("statuses = %v, want [408]", got)
		}
		if !answers[0].close || !closed {
			t.Errorf("Connection: close %v, connection closed %v; want both", answers[0].close, closed)
		}
		up.waitBroken(t, "/tls-stall")
	})
}

// TestBodySlowHTTPTest runs slowhttptest's slow body attack (-B: headers
// at once, then a byte of body every 5s) against a 2s body_read_timeout
// with conns_per_ip far above the attack, so only the body timeout can
// end it. Streaming: every slow request reaching the upstream is cut
// while the attack still runs (without the timeout they would pin the
// upstream for its whole length). Buffering: the upstream never sees a
// connection. A normal client on 127.0.0.2 is served throughout.
func TestBodySlowHTTPTest(t *testing.T) {
	t.Parallel()
	slow := testenv.Tool(t, "slowhttptest")
	for _, tc := range []struct {
		name     string
		buffered bool
	}{
		{"streaming", false},
		{"buffered", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newBodyUpstream(t)
			extra := ""
			if tc.buffered {
				extra = "    buffer_requests: true\n    max_body: 1MB\n"
			}
			g := startGateway(t, gatewayConfig(fmt.Sprintf(`limits:
  body_read_timeout: 2s
  conns_per_ip: 1000
jails:
  flood: {maxretry: 1000, findtime: 1m, bantime: 1m}
hosts:
  - match: [127.0.0.1, app.example.com]
    upstreams: [%s]
%s`, up.srv.URL, extra)))
			normal := &http.Client{
				Transport: &http.Transport{
					Proxy:             nil,
					DialContext:       (&net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
					DisableKeepAlives: true,
				},
				Timeout: clientTimeout,
			}
			const conns = 50
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, slow, "-B", "-c", fmt.Sprint(conns), "-r", "50", "-i", "5", "-s", "100000",
				"-l", "20", "-t", "POST", "-x", "10", "-u", "http://"+g.httpAddr+"/slow")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()

			// Until the gateway has cut every slow body (each a flood
			// offence, none left in flight upstream), the normal client
			// is served. slowhttptest exits by itself once the gateway
			// has closed all its connections, long before -l 20.
			cutAll := func() bool {
				return g.metric(t, "gatehouse_jail_offences_total", "jail", "flood") >= conns && up.inflight.Load() == 0
			}
			maxInflight := int64(0)
			ended := false
			for !cutAll() {
				if ended {
					// slowhttptest has exited: out is safe to read.
					t.Fatalf("slowhttptest ended before the gateway cut its connections: %v flood offences, %d requests in flight upstream\n%s",
						g.metric(t, "gatehouse_jail_offences_total", "jail", "flood"), up.inflight.Load(), lastLines(out.String(), 15))
				}
				select {
				case err := <-done:
					ended = true
					if err != nil {
						t.Logf("slowhttptest: %v", err)
					}
					continue
				default:
				}
				resp, err := normal.Get("http://" + g.httpAddr + "/normal")
				if err != nil {
					t.Fatalf("normal client during the attack: %v", err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("normal client during the attack: status %d", resp.StatusCode)
				}
				maxInflight = max(maxInflight, up.inflight.Load())
				g.pause(t)
			}
			if !ended {
				cancel()
				<-done
			}
			// out is only read once slowhttptest has exited.
			t.Logf("%s: all %d slow bodies cut; at most %d seen in flight upstream; slowhttptest:\n%s",
				tc.name, conns, maxInflight, lastLines(out.String(), 6))
			// slowhttptest's own availability probe is a whole request;
			// what matters is whether the upstream ever held a slow body.
			switch broken := len(up.broken); {
			case tc.buffered && broken != 0:
				t.Errorf("a buffering host forwarded %d slow bodies that broke off at the upstream, want 0", broken)
			case !tc.buffered && broken == 0:
				t.Error("no slow body reached the streaming upstream: the test proves nothing")
			}
			g.waitAccess(t, http.StatusRequestTimeout, "/slow")
		})
	}
}

// TestBodyUpstreamAnswersEarly: an upstream that answers without reading
// the body (a 403 of its own, a redirect) while the client's body is
// still coming: the client gets the upstream's answer with Connection:
// close, and the connection is closed — never read for another request
// while part of the body is unread.
func TestBodyUpstreamAnswersEarly(t *testing.T) {
	t.Parallel()
	early := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close") // as a server refusing a body does
		http.Error(w, "go away", http.StatusForbidden)
	}))
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`limits:
  body_read_timeout: 1s
hosts:
  - match: [app.example.com]
    upstreams: [%s]
`, early.URL)))
	c, err := net.DialTimeout("tcp", g.httpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	req := "POST /early HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 10\r\n\r\nabc"
	answers, closed := closeExchange(t, c, req, false)
	if got := statusesOf(answers); !slices.Equal(got, []int{http.StatusForbidden}) {
		t.Fatalf("statuses = %v, want the upstream's [403]", got)
	}
	if !answers[0].close {
		t.Error("the upstream's early answer without Connection: close, with part of the body unread")
	}
	if !closed {
		t.Error("connection left open with part of the body unread")
	}
}
