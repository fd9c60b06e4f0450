//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// End-to-end tests of the gatehouse binary; helpers and the WebSocket
// frame codec are in e2e_helpers_test.go.

func TestRouting(t *testing.T) {
	t.Parallel()
	ups := map[string]*echoUpstream{}
	for _, name := range []string{"wild", "wild-b", "exact", "apex", "ip"} {
		ups[name] = newEchoUpstream(t, name)
	}
	// Wildcards are listed before the exact name on purpose: exact names
	// must win whatever the order.
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: ["*.example.com"]
    upstreams: [%s]
  - match: ["*.b.example.com"]
    upstreams: [%s]
  - match: [a.example.com]
    upstreams: [%s]
  - match: [example.com]
    upstreams: [%s]
  - match: ["[::1]", 127.0.0.1]
    upstreams: [%s]
`, ups["wild"].URL(), ups["wild-b"].URL(), ups["exact"].URL(), ups["apex"].URL(), ups["ip"].URL())))

	totalHits := func() int64 {
		var n int64
		for _, u := range ups {
			n += u.hits.Load()
		}
		return n
	}
	tests := []struct {
		name string
		host string
		want string // upstream name; "" for 421
	}{
		{"exact name beats a wildcard listed first", "a.example.com", "exact"},
		{"upper case", "A.Example.COM", "exact"},
		{"trailing dot", "a.example.com.", "exact"},
		{"explicit port", "a.example.com:8443", "exact"},
		{"upper case, trailing dot and port", "A.EXAMPLE.COM.:8080", "exact"},
		{"wildcard", "x.example.com", "wild"},
		{"wildcard two labels down", "a.c.example.com", "wild"},
		{"longest wildcard wins", "a.b.example.com", "wild-b"},
		{"longest wildcard, three labels down", "x.y.b.example.com", "wild-b"},
		{"wildcard suffix itself falls to the shorter wildcard", "b.example.com", "wild"},
		{"wildcard, upper case and port", "X.B.EXAMPLE.COM:80", "wild-b"},
		{"wildcard, trailing dot", "z.example.com.", "wild"},
		{"apex name is exact only", "example.com", "apex"},
		{"IPv6 literal with port", "[::1]:8080", "ip"},
		{"IPv4 literal with port", "127.0.0.1:8080", "ip"},
		{"name ending in the suffix without a dot", "evilexample.com", ""},
		{"configured name under another domain", "a.example.com.evil.test", ""},
		{"unknown name", "unknown.test", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := totalHits()
			resp, body := g.get(t, tc.host, "/route?x=1")
			if tc.want == "" {
				if resp.StatusCode != http.StatusMisdirectedRequest {
					t.Fatalf("GET Host %q: status = %d, want 421; body %q", tc.host, resp.StatusCode, body)
				}
				if got := totalHits(); got != before {
					t.Errorf("GET Host %q: upstream requests = %d, want %d (a 421 must not reach any app)", tc.host, got, before)
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET Host %q: status = %d, want 200; body %q", tc.host, resp.StatusCode, body)
			}
			e := decodeEcho(t, body)
			if e.Upstream != tc.want {
				t.Errorf("GET Host %q: served by %q, want %q", tc.host, e.Upstream, tc.want)
			}
			if e.Host != tc.host {
				t.Errorf("GET Host %q: upstream saw Host %q, want %q", tc.host, e.Host, tc.host)
			}
			if e.URI != "/route?x=1" {
				t.Errorf("GET Host %q: upstream saw URI %q, want %q", tc.host, e.URI, "/route?x=1")
			}
		})
	}
}

func TestUnknownHost(t *testing.T) {
	t.Parallel()
	app := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [app.test]
    upstreams: [%s]
`, app.URL())))

	for _, host := range []string{"other.test", "app.test.other.test", "sub.app.test"} {
		resp, body := g.get(t, host, "/")
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("GET Host %q: status = %d, want 421", host, resp.StatusCode)
		}
		if got, want := string(body), "Misdirected Request\n"; got != want {
			t.Errorf("GET Host %q: body = %q, want %q", host, got, want)
		}
	}
	if got := app.hits.Load(); got != 0 {
		t.Errorf("upstream requests = %d, want 0", got)
	}
	g.waitMetric(t, 3, "gatehouse_http_requests_total", "host", "_unmatched", "code", "4xx")
}

func TestRoundRobin(t *testing.T) {
	t.Parallel()
	a, b := newEchoUpstream(t, "a"), newEchoUpstream(t, "b")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [rr.test]
    upstreams: [%s, %s]
`, a.URL(), b.URL())))

	const n = 40
	counts := map[string]int{}
	for i := range n {
		resp, body := g.get(t, "rr.test", fmt.Sprintf("/rr/%d", i))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /rr/%d: status = %d, want 200; body %q", i, resp.StatusCode, body)
		}
		counts[resp.Header.Get("X-Upstream")]++
	}
	for _, name := range []string{"a", "b"} {
		if got := counts[name]; got < n/2-n/10 || got > n/2+n/10 {
			t.Errorf("requests served by %s = %d of %d, want %d±%d (counts %v)", name, got, n, n/2, n/10, counts)
		}
	}
	if got := a.hits.Load() + b.hits.Load(); got != n {
		t.Errorf("upstream requests = %d, want %d", got, n)
	}
	g.waitMetric(t, n, "gatehouse_http_requests_total", "host", "rr.test", "code", "2xx")
	g.waitMetric(t, n, "gatehouse_upstream_response_seconds_count", "host", "rr.test")
}

func TestFailoverUpstreamClosed(t *testing.T) {
	t.Parallel()
	a, b := newEchoUpstream(t, "a"), newEchoUpstream(t, "b")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [fo.test]
    upstreams: [%s, %s]
`, a.URL(), b.URL())))

	// Both serve, so the gateway holds keep-alive connections to both.
	seen := map[string]bool{}
	for range 4 {
		resp, _ := g.get(t, "fo.test", "/warm")
		seen[resp.Header.Get("X-Upstream")] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("upstreams seen while both are up = %v, want a and b", seen)
	}

	b.srv.Close() // listener and idle connections closed: connections to b are refused
	for i := range 20 {
		resp, body := g.get(t, "fo.test", fmt.Sprintf("/after/%d", i))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /after/%d with b closed: status = %d, want 200; body %q", i, resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Upstream"); got != "a" {
			t.Errorf("GET /after/%d with b closed: served by %q, want %q", i, got, "a")
		}
	}
}

func TestAllUpstreamsDown(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [down.test]
    upstreams: [%s, %s]
`, refusingUpstream(t), refusingUpstream(t))))

	for i := range 3 {
		// Refused connections must fail fast: the deadline turns a hang
		// into a failure instead of a stuck test.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		req, err := g.newRequest(ctx, http.MethodGet, "down.test", "/", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, body, err := g.do(req)
		cancel()
		if err != nil {
			t.Fatalf("GET %d with every upstream refusing: %v, want a 502 within 5s", i, err)
		}
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("GET %d with every upstream refusing: status = %d, want 502", i, resp.StatusCode)
		}
		if got, want := string(body), "Bad Gateway\n"; got != want {
			t.Errorf("GET %d with every upstream refusing: body = %q, want %q", i, got, want)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %d: X-Content-Type-Options = %q, want %q", i, got, "nosniff")
		}
	}
	g.waitLog(t, waitTimeout, `"upstream failed" warning`, func(log string) bool {
		return strings.Contains(log, `msg="upstream failed"`)
	})
}

func TestFailoverPostBody(t *testing.T) {
	t.Parallel()
	alive := newEchoUpstream(t, "alive")
	// upstream_fail_timeout 1ns: the refusing upstream is never skipped,
	// so round robin sends every other request to it first and each of
	// those must fail over with its body intact.
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`limits:
  upstream_fail_timeout: 1ns
hosts:
  - match: [post.test]
    upstreams: [%s, %s]
`, refusingUpstream(t), alive.URL())))

	// Large Content-Length bodies used to lose the response about one run
	// in a hundred (the full-duplex race pinned by
	// TestStreamedResponseDuringUpload); they are covered here too.
	big := strings.Repeat("0123456789abcdef", 8<<10) // 128 KiB
	tests := []struct {
		size    int
		chunked bool
	}{
		{0, false}, {100, false}, {3 << 10, false}, {26 << 10, false}, {128 << 10, false},
		{1, true}, {16 << 10, true}, {64 << 10, true}, {128 << 10, true},
	}
	for i, tc := range tests {
		want := big[:tc.size]
		var body io.Reader = strings.NewReader(want)
		if tc.chunked {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
		req, err := g.newRequest(t.Context(), http.MethodPost, "post.test", fmt.Sprintf("/post/%d", i), body)
		if err != nil {
			t.Fatal(err)
		}
		resp, got := g.mustDo(t, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %d bytes (chunked %v): status = %d, want 200; body %q", tc.size, tc.chunked, resp.StatusCode, got)
		}
		e := decodeEcho(t, got)
		if e.Upstream != "alive" || e.Method != http.MethodPost {
			t.Errorf("POST %d bytes: reached %s on %q, want POST on %q", tc.size, e.Method, e.Upstream, "alive")
		}
		if e.Body != want {
			t.Errorf("POST %d bytes (chunked %v): upstream got %d bytes %.40q, want %d bytes %.40q", tc.size, tc.chunked, len(e.Body), e.Body, len(want), want)
		}
	}
	if got, want := alive.hits.Load(), int64(len(tests)); got != want {
		t.Errorf("requests on the live upstream = %d, want %d", got, want)
	}
}

// TestStreamedResponseDuringUpload pins a bug: once a response starts, the
// gateway's HTTP/1 server drains what is left of the request body itself
// (net/http does this unless the handler enables full duplex), competing
// with the upstream transport that is still forwarding that body. Here the
// upstream answers with a first line while the upload is paused, and the
// gateway never passes it on: its server blocks in the drain, before even
// the response header is written. The same drain, racing with the
// transport's final read of a Content-Length body, closes the body under
// it, and the transport then aborts the upstream connection mid-response
// (golang/go#40747): a POST answered 200 reaches the client truncated.
func TestStreamedResponseDuringUpload(t *testing.T) {
	t.Parallel()
	// What is left after the first part (160 KiB) is under net/http's
	// 256 KiB drain limit, so the server tries to drain it.
	const first, total = 32 << 10, 192 << 10
	app := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The app itself reads while it writes, as upload-progress and
		// streaming-transform endpoints do.
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if _, err := io.ReadFull(r.Body, make([]byte, first)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "started\n")
		if rc.Flush() != nil {
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "received %d, error %v\n", first+n, err)
	}))
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [upload.test]
    upstreams: [%s]
`, app.URL)))

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	started := make(chan struct{}) // closed once the first line came through
	pr, pw := io.Pipe()
	uploaded := make(chan error, 1)
	go func() {
		_, err := pw.Write(bytes.Repeat([]byte("a"), first))
		if err == nil {
			select {
			case <-started:
				_, err = pw.Write(bytes.Repeat([]byte("b"), total-first))
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		pw.CloseWithError(err) // nil: EOF
		uploaded <- err
	}()
	req, err := g.newRequest(ctx, http.MethodPost, "upload.test", "/upload", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = total
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("POST with the upload paused: %v; want the upstream's first line while the upload waits for it", err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "started\n" {
		t.Fatalf("first line with the upload paused = %q, %v; want %q", line, err, "started\n")
	}
	close(started)
	rest, err := io.ReadAll(br)
	if want := fmt.Sprintf("received %d, error <nil>\n", total); err != nil || string(rest) != want {
		t.Errorf("rest of the answer = %q, %v; want %q", rest, err, want)
	}
	if err := <-uploaded; err != nil {
		t.Errorf("upload: %v", err)
	}
}

func TestWebSocket(t *testing.T) {
	t.Parallel()
	if got, want := wsAccept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Fatalf("wsAccept(RFC 6455 example) = %q, want %q", got, want) // the helper itself
	}
	ws := newWSEchoUpstream(t)
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [ws.test]
    upstreams: [%s]
  - match: [nows.test]
    upstreams: [%s]
    websocket: false
  - match: [wsrt.test]
    upstreams: [%s]
    read_timeout: 1s
`, ws.srv.URL, ws.srv.URL, ws.srv.URL)))

	// read_timeout bounds answers, not upgraded connections: the upgrade
	// goes through and the tunnel outlives the timeout.
	t.Run("upgrade under read_timeout", func(t *testing.T) {
		resp, conn, br := g.wsHandshake(t, "wsrt.test", wsNewKey())
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade status = %d, want 101", resp.StatusCode)
		}
		time.Sleep(1500 * time.Millisecond)
		if err := wsWriteFrame(conn, wsText, []byte("still there"), true); err != nil {
			t.Fatal(err)
		}
		if _, payload, _, _, err := wsReadFrame(br); err != nil || string(payload) != "still there" {
			t.Errorf("echo after the read timeout: %q, %v", payload, err)
		}
	})

	t.Run("upgrade and echo", func(t *testing.T) {
		key := wsNewKey()
		resp, conn, br := g.wsHandshake(t, "ws.test", key)
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade status = %d, want 101", resp.StatusCode)
		}
		if got := resp.Header.Get("Upgrade"); !strings.EqualFold(got, "websocket") {
			t.Errorf("Upgrade = %q, want %q", got, "websocket")
		}
		if got, want := resp.Header.Get("Sec-WebSocket-Accept"), wsAccept(key); got != want {
			t.Errorf("Sec-WebSocket-Accept = %q, want %q", got, want)
		}
		messages := []struct {
			op      byte
			payload []byte
		}{
			{wsText, []byte("hello, gatehouse")},
			{wsBinary, bytes.Repeat([]byte{0, 1, 2, 0xfe, 0xff}, 60)}, // 300 bytes: 16-bit length
			{wsText, []byte("second text frame")},
		}
		for i, m := range messages {
			if err := wsWriteFrame(conn, m.op, m.payload, true); err != nil {
				t.Fatalf("write frame %d: %v", i, err)
			}
			op, payload, fin, masked, err := wsReadFrame(br)
			if err != nil {
				t.Fatalf("read echo of frame %d: %v", i, err)
			}
			if op != m.op || !fin || masked {
				t.Errorf("echo of frame %d: opcode %#x fin %v masked %v, want opcode %#x fin true masked false", i, op, fin, masked, m.op)
			}
			if !bytes.Equal(payload, m.payload) {
				t.Errorf("echo of frame %d = %q, want %q", i, payload, m.payload)
			}
		}
		closing := []byte{0x03, 0xe8} // 1000 normal closure
		if err := wsWriteFrame(conn, wsClose, closing, true); err != nil {
			t.Fatalf("write close frame: %v", err)
		}
		op, payload, _, _, err := wsReadFrame(br)
		if err != nil || op != wsClose || !bytes.Equal(payload, closing) {
			t.Errorf("answer to close = opcode %#x payload %x err %v, want close frame %x", op, payload, err, closing)
		}
		if got := ws.badFrames.Load(); got != 0 {
			t.Errorf("frames that reached the upstream unmasked = %d, want 0", got)
		}
	})

	t.Run("websocket false refuses the upgrade", func(t *testing.T) {
		before := ws.hits.Load()
		resp, _, _ := g.wsHandshake(t, "nows.test", wsNewKey())
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("upgrade status with websocket: false = %d, want 403", resp.StatusCode)
		}
		if got := ws.hits.Load(); got != before {
			t.Errorf("upstream handshakes = %d, want %d (the refused upgrade must not reach it)", got, before)
		}
	})
}

func TestServerSentEvents(t *testing.T) {
	t.Parallel()
	firstSeen := make(chan struct{}) // closed by the test once event 1 came through
	stop := make(chan struct{})      // closed at cleanup: no handler outlives the test
	sse := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		io.WriteString(w, "data: 1\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			return
		}
		select {
		case <-firstSeen:
		case <-stop:
			return
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: 2\n\n")
	}))
	t.Cleanup(func() { close(stop) }) // runs before sse.Close
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [sse.test]
    upstreams: [%s]
`, sse.URL)))

	// The upstream holds the stream open until event 1 has reached the
	// client, so a gateway that buffers until the upstream finishes
	// deadlocks here until the client's deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := g.newRequest(ctx, http.MethodGet, "sse.test", "/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: status = %d, want 200", resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/event-stream" {
		t.Errorf("Content-Type = %q, want %q", got, "text/event-stream")
	}
	br := bufio.NewReader(resp.Body)
	var first string
	for range 2 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read event 1 while the upstream holds the stream open: %v (the gateway does not flush)", err)
		}
		first += line
	}
	if first != "data: 1\n\n" {
		t.Fatalf("event 1 = %q, want %q", first, "data: 1\n\n")
	}
	close(firstSeen)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("read rest of stream: %v", err)
	}
	if got, want := string(rest), "data: 2\n\n"; got != want {
		t.Errorf("rest of stream = %q, want %q", got, want)
	}
}

// accessLogEntry is one line of the JSON access log.
type accessLogEntry struct {
	Time      string  `json:"time"`
	ClientIP  string  `json:"client_ip"`
	Host      string  `json:"host"`
	Method    string  `json:"method"`
	Path      string  `json:"path"`
	Proto     string  `json:"proto"`
	Status    int     `json:"status"`
	Bytes     int64   `json:"bytes"`
	Duration  float64 `json:"duration"`
	Upstream  string  `json:"upstream"`
	Referer   string  `json:"referer"`
	UserAgent string  `json:"user_agent"`
}

// waitJSONLogEntry polls a JSON access log file for the entry of path.
func waitJSONLogEntry(t *testing.T, file, path string) accessLogEntry {
	t.Helper()
	var e accessLogEntry
	waitFileLine(t, file, func(line string) bool {
		var x accessLogEntry
		if json.Unmarshal([]byte(line), &x) != nil || x.Path != path {
			return false
		}
		e = x
		return true
	})
	return e
}

func TestForwardingHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		trusted string // trusted_proxies line, or ""
		// What the client sends.
		xff, realIP, proto, fwdHost string
		// What the upstream must see.
		wantXFF, wantRealIP, wantProto, wantHost string
	}{
		{
			name: "untrusted peer's forwarding headers are replaced",
			xff:  "203.0.113.9", realIP: "203.0.113.10", proto: "https", fwdHost: "evil.example",
			wantXFF: "127.0.0.1", wantRealIP: "127.0.0.1", wantProto: "http", wantHost: "xff.test",
		},
		{
			name:    "trusted proxy's chain is extended",
			trusted: "trusted_proxies: [127.0.0.0/8]\n",
			xff:     "203.0.113.9, 198.51.100.7", realIP: "192.0.2.1", proto: "https", fwdHost: "public.example",
			wantXFF: "203.0.113.9, 198.51.100.7, 127.0.0.1", wantRealIP: "198.51.100.7", wantProto: "https", wantHost: "public.example",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := newEchoUpstream(t, "app")
			accessLog := filepath.Join(t.TempDir(), "access.log")
			g := startGateway(t, gatewayConfig(tc.trusted+fmt.Sprintf(`log:
  access: json
  access_file: %s
hosts:
  - match: [xff.test]
    upstreams: [%s]
`, accessLog, app.URL())))

			req, err := g.newRequest(t.Context(), http.MethodGet, "xff.test", "/xff", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Forwarded-For", tc.xff)
			req.Header.Set("X-Real-IP", tc.realIP)
			req.Header.Set("X-Forwarded-Proto", tc.proto)
			req.Header.Set("X-Forwarded-Host", tc.fwdHost)
			req.Header.Set("Forwarded", "for=203.0.113.11;proto=https")
			resp, body := g.mustDo(t, req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /xff: status = %d, want 200; body %q", resp.StatusCode, body)
			}
			h := decodeEcho(t, body).Header
			for _, c := range []struct{ name, want string }{
				{"X-Forwarded-For", tc.wantXFF},
				{"X-Real-Ip", tc.wantRealIP},
				{"X-Forwarded-Proto", tc.wantProto},
				{"X-Forwarded-Host", tc.wantHost},
			} {
				if got := h.Values(c.name); len(got) != 1 || got[0] != c.want {
					t.Errorf("upstream %s = %q, want [%q]", c.name, got, c.want)
				}
			}
			if got := h.Values("Forwarded"); len(got) != 0 {
				t.Errorf("upstream Forwarded = %q, want none", got)
			}
			e := waitJSONLogEntry(t, accessLog, "/xff")
			if e.ClientIP != tc.wantRealIP {
				t.Errorf("access log client_ip = %q, want %q", e.ClientIP, tc.wantRealIP)
			}
		})
	}
}

func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	app := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Server", "Apache/2.4.1 (Unix)")
		h.Set("X-Powered-By", "PHP/5.6")
		h.Set("X-Debug", "query=42ms")
		h.Set("X-Frame-Options", "SAMEORIGIN")
		h.Set("X-App", "kept")
		io.WriteString(w, "ok")
	}))
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [plain.test]
    upstreams: [%s]
  - match: [custom.test]
    upstreams: [%s]
    max_body: 1KB
    headers:
      set:
        Strict-Transport-Security: "max-age=31536000"
        X-Frame-Options: DENY
        Referrer-Policy: ""
      remove: [X-Debug]
`, app.URL, app.URL)))

	type want map[string]string // header → value; "" means absent
	check := func(t *testing.T, what string, h http.Header, want want) {
		t.Helper()
		for name, v := range want {
			got := h.Values(name)
			switch {
			case v == "" && len(got) != 0:
				t.Errorf("%s: %s = %q, want absent", what, name, got)
			case v != "" && (len(got) != 1 || got[0] != v):
				t.Errorf("%s: %s = %q, want [%q]", what, name, got, v)
			}
		}
	}

	resp, _ := g.get(t, "plain.test", "/")
	check(t, "defaults", resp.Header, want{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "strict-origin-when-cross-origin",
		"Server":                 "",
		"X-Powered-By":           "",
		"X-Debug":                "query=42ms",
		"X-Frame-Options":        "SAMEORIGIN",
		"X-App":                  "kept",
	})

	resp, _ = g.get(t, "custom.test", "/")
	customWant := want{
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "",
		"Strict-Transport-Security": "max-age=31536000",
		"X-Frame-Options":           "DENY",
		"Server":                    "",
		"X-Powered-By":              "",
		"X-Debug":                   "",
	}
	check(t, "headers.set/remove", resp.Header, customWant)

	// The gateway's own answers for the host get the same policy.
	req, err := g.newRequest(t.Context(), http.MethodPost, "custom.test", "/", strings.NewReader(strings.Repeat("x", 4096)))
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = g.mustDo(t, req)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("POST 4KB to max_body 1KB: status = %d, want 413", resp.StatusCode)
	}
	delete(customWant, "X-Debug")
	delete(customWant, "Server")
	check(t, "413 from the gateway", resp.Header, customWant)
}

func TestMaxBody(t *testing.T) {
	t.Parallel()
	app := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [upload.test]
    upstreams: [%s]
    max_body: 1KB
`, app.URL())))

	tests := []struct {
		name    string
		size    int
		chunked bool
		want    int
	}{
		{"at the limit", 1024, false, http.StatusOK},
		{"at the limit, chunked", 1024, true, http.StatusOK},
		{"over the limit with Content-Length", 1025, false, http.StatusRequestEntityTooLarge},
		{"far over the limit with Content-Length", 1 << 20, false, http.StatusRequestEntityTooLarge},
		{"over the limit, chunked", 64 << 10, true, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits, answered := app.hits.Load(), app.answered.Load()
			var body io.Reader = strings.NewReader(strings.Repeat("b", tc.size))
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, err := g.newRequest(t.Context(), http.MethodPost, "upload.test", "/upload", body)
			if err != nil {
				t.Fatal(err)
			}
			resp, got := g.mustDo(t, req)
			if resp.StatusCode != tc.want {
				t.Fatalf("POST %d bytes (chunked %v): status = %d, want %d; body %.100q", tc.size, tc.chunked, resp.StatusCode, tc.want, got)
			}
			if tc.want == http.StatusOK {
				if e := decodeEcho(t, got); len(e.Body) != tc.size {
					t.Errorf("upstream body = %d bytes, want %d", len(e.Body), tc.size)
				}
				return
			}
			// A chunked body is cut off at the limit: the upstream may
			// have seen the request start, never the whole body. A
			// declared length over the limit is refused before any
			// upstream is contacted.
			if got := app.answered.Load(); got != answered {
				t.Errorf("requests the upstream read whole = %d, want %d (an oversized body must not reach it)", got, answered)
			}
			if got := app.hits.Load(); !tc.chunked && got != hits {
				t.Errorf("upstream requests = %d, want %d (Content-Length over max_body must not reach it)", got, hits)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	combinedLine := regexp.MustCompile(`^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET /log/combined\?q=1 HTTP/1\.1" 200 (\d+) "https://ref\.example/page" "e2e-agent/1\.0"$`)
	for _, format := range []string{"combined", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			app := newEchoUpstream(t, "app")
			accessLog := filepath.Join(t.TempDir(), "access.log")
			g := startGateway(t, gatewayConfig(fmt.Sprintf(`log:
  access: %s
  access_file: %s
hosts:
  - match: [log.test]
    upstreams: [%s]
`, format, accessLog, app.URL())))

			path := "/log/" + format
			req, err := g.newRequest(t.Context(), http.MethodGet, "log.test", path+"?q=1", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("User-Agent", "e2e-agent/1.0")
			req.Header.Set("Referer", "https://ref.example/page")
			resp, body := g.mustDo(t, req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status = %d, want 200", path, resp.StatusCode)
			}

			if format == "combined" {
				line := waitFileLine(t, accessLog, func(line string) bool { return strings.Contains(line, path) })
				m := combinedLine.FindStringSubmatch(line)
				if m == nil {
					t.Fatalf("combined access log line = %q, want it to match %s", line, combinedLine)
				}
				if m[1] != fmt.Sprint(len(body)) {
					t.Errorf("combined access log bytes = %s, want %d", m[1], len(body))
				}
				return
			}
			e := waitJSONLogEntry(t, accessLog, path)
			want := accessLogEntry{
				Time: e.Time, Duration: e.Duration, // checked below
				ClientIP: "127.0.0.1", Host: "log.test", Method: "GET", Path: path, Proto: "HTTP/1.1",
				Status: 200, Bytes: int64(len(body)), Upstream: strings.TrimPrefix(app.URL(), "http://"),
				Referer: "https://ref.example/page", UserAgent: "e2e-agent/1.0",
			}
			if e != want {
				t.Errorf("JSON access log entry = %+v, want %+v", e, want)
			}
			if _, err := time.Parse(time.RFC3339, e.Time); err != nil || e.Duration < 0 {
				t.Errorf("JSON access log time, duration = %q, %v; want RFC 3339 and >= 0", e.Time, e.Duration)
			}
		})
	}
}

func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	a, b, c := newEchoUpstream(t, "A"), newEchoUpstream(t, "B"), newEchoUpstream(t, "C")
	// Each config says where a.test goes and whether new.test exists. The
	// invalid ones would send a.test to C if they were ever applied.
	valid := func(aTo *echoUpstream, withNew bool) string {
		cfg := fmt.Sprintf(`hosts:
  - match: [a.test]
    upstreams: [%s]
  - match: [stable.test]
    upstreams: [%s, %s]
`, aTo.URL(), a.URL(), b.URL())
		if withNew {
			cfg += fmt.Sprintf("  - match: [new.test]\n    upstreams: [%s]\n", c.URL())
		}
		return gatewayConfig(cfg)
	}
	unknownKey := gatewayConfig(fmt.Sprintf(`hosts:
  - match: [a.test]
    upstreams: [%s]
    bogus_key: true
  - match: [stable.test]
    upstreams: [%s]
`, c.URL(), a.URL()))
	badURL := gatewayConfig(fmt.Sprintf(`hosts:
  - match: [stable.test]
    upstreams: [%s]
  - match: [a.test]
    upstreams: ["ftp://%s"]
`, a.URL(), strings.TrimPrefix(c.URL(), "http://")))
	invalid := []struct {
		cfg   string
		field string // must be named, with file:line, in the logged error
		line  int
	}{
		{unknownKey, "hosts[0].bogus_key: unknown key", lineOf(unknownKey, "bogus_key")},
		{badURL, "hosts[1].upstreams[0]: invalid upstream", lineOf(badURL, "ftp://")},
	}

	g := startGateway(t, valid(a, false))

	// The load: keep-alive clients on a.test and stable.test for the whole
	// reload sequence. Every answer must be a 200 from a known upstream.
	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		warm     sync.WaitGroup
		requests atomic.Int64
		failures atomic.Int64
		firstMu  sync.Mutex
		first    error
	)
	fail := func(err error) {
		failures.Add(1)
		firstMu.Lock()
		if first == nil {
			first = err
		}
		firstMu.Unlock()
	}
	hardDeadline := time.Now().Add(40 * time.Second)
	const workers = 4
	warm.Add(workers)
	for w := range workers {
		wg.Go(func() {
			var warmed sync.Once
			defer warmed.Do(warm.Done)
			host := []string{"a.test", "stable.test"}[w%2]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if time.Now().After(hardDeadline) {
					fail(errors.New("load still running at the hard deadline"))
					return
				}
				req, err := g.newRequest(context.Background(), http.MethodGet, host, fmt.Sprintf("/load/%d/%d", w, i), nil)
				if err != nil {
					fail(err)
					return
				}
				resp, body, err := g.do(req)
				requests.Add(1)
				switch {
				case err != nil:
					fail(fmt.Errorf("GET %s /load/%d/%d: %w", host, w, i, err))
				case resp.StatusCode != http.StatusOK:
					fail(fmt.Errorf("GET %s /load/%d/%d: status = %d, want 200; body %q", host, w, i, resp.StatusCode, body))
				default:
					if up := resp.Header.Get("X-Upstream"); up != "A" && up != "B" {
						fail(fmt.Errorf("GET %s /load/%d/%d: served by %q, want A or B", host, w, i, up))
					}
				}
				warmed.Do(warm.Done)
			}
		})
	}
	defer func() { // also on t.Fatal: never leave the load running
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	warm.Wait()

	// checkRoute asserts where a.test and new.test go now.
	checkRoute := func(step int, aTo string, withNew bool) {
		t.Helper()
		for range 3 {
			resp, body := g.get(t, "a.test", "/check")
			if got := resp.Header.Get("X-Upstream"); resp.StatusCode != http.StatusOK || got != aTo {
				t.Fatalf("reload %d: GET a.test = %d from %q, want 200 from %q; body %q", step, resp.StatusCode, got, aTo, body)
			}
		}
		resp, _ := g.get(t, "new.test", "/check")
		switch {
		case withNew && (resp.StatusCode != http.StatusOK || resp.Header.Get("X-Upstream") != "C"):
			t.Fatalf("reload %d: GET new.test = %d from %q, want 200 from %q", step, resp.StatusCode, resp.Header.Get("X-Upstream"), "C")
		case !withNew && resp.StatusCode != http.StatusMisdirectedRequest:
			t.Fatalf("reload %d: GET new.test = %d, want 421 (not configured)", step, resp.StatusCode)
		}
	}

	const failedMsg = `msg="config reload failed; the previous config keeps serving"`
	okBefore, failedBefore := g.reloads(t)
	aTo, withNew := "A", false
	checkRoute(0, aTo, withNew)
	for i := range 20 {
		if i%2 == 0 { // valid: a.test moves to B with new.test, then back to A without it
			aUp := a
			aTo, withNew = "A", false
			if i%4 == 0 {
				aUp, aTo, withNew = b, "B", true
			}
			if got := g.reload(t, valid(aUp, withNew)); got != "ok" {
				t.Fatalf("reload %d (valid, a.test → %s): result = %q, want %q", i, aTo, got, "ok")
			}
			checkRoute(i, aTo, withNew)
			continue
		}
		bad := invalid[(i/2)%2]
		logged := strings.Count(g.stderr.String(), failedMsg)
		if got := g.reload(t, bad.cfg); got != "failed" {
			t.Fatalf("reload %d (invalid: %s): result = %q, want %q", i, bad.field, got, "failed")
		}
		log := g.waitLog(t, waitTimeout, "the reload failure", func(log string) bool {
			return strings.Count(log, failedMsg) > logged
		})
		lines := strings.Split(log, "\n")
		var last string
		for _, l := range lines {
			if strings.Contains(l, failedMsg) {
				last = l
			}
		}
		if want := fmt.Sprintf("%s:%d: %s", g.cfgPath, bad.line, bad.field); !strings.Contains(last, want) {
			t.Errorf("reload %d: logged failure = %q, want it to contain %q", i, last, want)
		}
		checkRoute(i, aTo, withNew) // unchanged
	}
	okAfter, failedAfter := g.reloads(t)
	if okAfter-okBefore != 10 || failedAfter-failedBefore != 10 {
		t.Errorf("reloads_total{ok, failed} moved by %v, %v; want 10, 10", okAfter-okBefore, failedAfter-failedBefore)
	}

	close(stop)
	wg.Wait()
	firstMu.Lock()
	defer firstMu.Unlock()
	if n := failures.Load(); n != 0 {
		t.Errorf("failed requests under reload = %d of %d, want 0; first: %v", n, requests.Load(), first)
	}
	if n := requests.Load(); n < workers {
		t.Errorf("requests under reload = %d, want at least %d", n, workers)
	}
	t.Logf("%d requests from %d clients during 20 reloads", requests.Load(), workers)
}

func TestSIGTERMDrainsInFlight(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	release := make(chan struct{})
	var arrivedOnce, releaseOnce sync.Once
	slow := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrivedOnce.Do(func() { close(arrived) })
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "slow done")
	}))
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // before slow.Close
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [slow.test]
    upstreams: [%s]
`, slow.URL)))

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	req, err := g.newRequest(context.Background(), http.MethodGet, "slow.test", "/slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		resp, body, err := g.do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{status: resp.StatusCode, body: string(body)}
	}()

	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case <-arrived:
	case r := <-done:
		t.Fatalf("slow request finished before the upstream released it: %+v", r)
	case <-timer.C:
		t.Fatalf("slow request did not reach the upstream within %v", waitTimeout)
	}

	g.signal(syscall.SIGTERM)
	g.waitLog(t, waitTimeout, "shutting down", func(log string) bool {
		return strings.Contains(log, `msg="shutting down"`)
	})
	// New connections are refused while the slow request drains.
	deadline := time.Now().Add(waitTimeout)
	for {
		conn, err := net.DialTimeout("tcp", g.httpAddr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("dial %s still succeeds %v after SIGTERM, want connection refused", g.httpAddr, waitTimeout)
		}
		g.pause(t)
	}
	if code, _, err := g.admin("/readyz"); err == nil && code == http.StatusOK {
		t.Errorf("GET /readyz while draining = 200, want 503 or no answer")
	}
	select {
	case r := <-done:
		t.Fatalf("slow request ended before the upstream released it: %+v", r)
	default:
	}

	releaseOnce.Do(func() { close(release) })
	select {
	case r := <-done:
		if r.err != nil || r.status != http.StatusOK || r.body != "slow done" {
			t.Errorf("in-flight request across SIGTERM = %d %q, %v; want 200 %q", r.status, r.body, r.err, "slow done")
		}
	case <-time.After(waitTimeout):
		t.Fatalf("in-flight request did not finish within %v of its release", waitTimeout)
	}
	if code := g.waitExit(t, stopTimeout); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	if _, err := net.DialTimeout("tcp", g.httpAddr, time.Second); err == nil {
		t.Errorf("dial %s after exit succeeded, want connection refused", g.httpAddr)
	}
}

func TestCLI(t *testing.T) {
	t.Parallel()
	validCfg := gatewayConfig(`hosts:
  - match: [app.test]
    upstreams: [http://127.0.0.1:3000]
`)
	invalidCfg := gatewayConfig(`hosts:
  - match: [app.test]
    upstream: [http://127.0.0.1:3000]
`)
	badLine := lineOf(invalidCfg, "upstream:")

	t.Run("version", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, code := runGatehouse(t, "version")
		if code != 0 || !strings.HasPrefix(stdout, "gatehouse ") {
			t.Errorf("gatehouse version = exit %d, %q (stderr %q); want exit 0, \"gatehouse <version> ...\"", code, stdout, stderr)
		}
	})
	t.Run("check valid", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "valid.yaml", validCfg)
		stdout, stderr, code := runGatehouse(t, "check", "-c", path)
		want := path + ": ok: 1 host, 1 upstream"
		if code != 0 || !strings.HasPrefix(stdout, want) {
			t.Errorf("gatehouse check valid = exit %d, %q (stderr %q); want exit 0, %q...", code, stdout, stderr, want)
		}
	})
	t.Run("check invalid", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "invalid.yaml", invalidCfg)
		stdout, stderr, code := runGatehouse(t, "check", "-c", path)
		want := fmt.Sprintf("%s:%d: hosts[0].upstream: unknown key", path, badLine)
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("gatehouse check invalid = exit %d, stderr %q; want exit 2, %q", code, stderr, want)
		}
		if strings.Contains(stdout, ": ok:") {
			t.Errorf("gatehouse check invalid: stdout = %q, want no ok", stdout)
		}
	})
	t.Run("check missing file", func(t *testing.T) {
		t.Parallel()
		// config.Load documents the split: an invalid config is exit 2, a
		// file that cannot be read is a runtime failure, exit 1.
		path := filepath.Join(t.TempDir(), "missing.yaml")
		_, stderr, code := runGatehouse(t, "check", "-c", path)
		if code != 1 || !strings.Contains(stderr, path) {
			t.Errorf("gatehouse check missing file = exit %d, stderr %q; want exit 1 naming the file", code, stderr)
		}
	})
	t.Run("check without -c", func(t *testing.T) {
		t.Parallel()
		_, stderr, code := runGatehouse(t, "check")
		if code != 2 || !strings.Contains(stderr, "-c FILE") {
			t.Errorf("gatehouse check = exit %d, stderr %q; want exit 2 asking for -c FILE", code, stderr)
		}
	})
	t.Run("unknown command", func(t *testing.T) {
		t.Parallel()
		_, stderr, code := runGatehouse(t, "frobnicate")
		if code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) || !strings.Contains(stderr, "usage:") {
			t.Errorf("gatehouse frobnicate = exit %d, stderr %q; want exit 2 with usage", code, stderr)
		}
	})
	t.Run("no command", func(t *testing.T) {
		t.Parallel()
		_, stderr, code := runGatehouse(t)
		if code != 2 || !strings.Contains(stderr, "usage:") {
			t.Errorf("gatehouse = exit %d, stderr %q; want exit 2 with usage", code, stderr)
		}
	})
	t.Run("serve invalid config", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "invalid.yaml", invalidCfg)
		_, stderr, code := runGatehouse(t, "serve", "-c", path, "--watch", "0")
		want := fmt.Sprintf("%s:%d: hosts[0].upstream: unknown key", path, badLine)
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("gatehouse serve invalid = exit %d, stderr %q; want exit 2, %q", code, stderr, want)
		}
		if strings.Contains(stderr, "msg=listening") {
			t.Errorf("gatehouse serve invalid: stderr %q, want no listener", stderr)
		}
	})
}
