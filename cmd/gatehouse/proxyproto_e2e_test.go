//go:build unix

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse/rules/testenv"
)

// HAProxy connects to gatehouse from balancerAddr; the clients connect to
// HAProxy from their own loopback addresses, which the upstream must see.
const balancerAddr = "127.0.0.10"

// haproxyFront is one HAProxy frontend in mode tcp: it listens on a free
// loopback port and forwards to server with the server-line options.
type haproxyFront struct {
	server string // host:port of gatehouse
	opts   string // "send-proxy" or "send-proxy-v2"
	addr   string // set by startHAProxy: where clients connect
}

// startHAProxy runs the Debian package's HAProxy in the foreground with
// one tcp-mode frontend per front, connecting to gatehouse from
// balancerAddr, until the test ends; it returns once every frontend
// accepts connections.
func startHAProxy(t *testing.T, fronts []*haproxyFront) {
	t.Helper()
	bin := testenv.Tool(t, "haproxy")
	var cfg strings.Builder
	cfg.WriteString("global\n    maxconn 256\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n")
	for i, f := range fronts {
		f.addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		fmt.Fprintf(&cfg, "frontend fe%d\n    bind %s\n    default_backend be%d\nbackend be%d\n    server gh %s %s source %s\n",
			i, f.addr, i, i, f.server, f.opts, balancerAddr)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-db", "-f", path)
	out := newLogBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		// Ended by the cleanup's cancel: its error says nothing.
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out)
		}
	})
	deadline := time.Now().Add(startTimeout)
	for _, f := range fronts {
		for {
			c, err := net.DialTimeout("tcp", f.addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				t.Fatalf("haproxy exited:\n%s", out)
			case <-time.After(pollInterval):
			}
			if time.Now().After(deadline) {
				t.Fatalf("haproxy frontend %s not accepting: %v\n%s", f.addr, err, out)
			}
		}
	}
}

// dialerFrom dials from the loopback address from.
func dialerFrom(from string) *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
}

// clientVia is an HTTP client whose connections go to addr (an HAProxy
// frontend) from the loopback address from, whatever the URL says; with
// roots it speaks TLS (h2 or, with http1, HTTP/1.1 only).
func clientVia(from, addr string, roots *x509.CertPool, http1 bool) *http.Client {
	d := dialerFrom(from)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2: !http1,
	}
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
		if http1 {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
	}
	return &http.Client{Transport: tr, Timeout: clientTimeout}
}

// viaGet sends GET url with c, with the header name-value pairs, and returns the status, the protocol and
// the upstream's echo (zero unless 200).
func viaGet(t *testing.T, c *http.Client, url string, header ...string) (int, string, echo) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	var e echo
	if resp.StatusCode == http.StatusOK {
		e = decodeEcho(t, body)
	}
	return resp.StatusCode, resp.Proto, e
}

// refusedRaw connects to addr from the loopback address from, writes
// data, and checks that gatehouse closes the connection without a byte
// of answer.
func refusedRaw(t *testing.T, from, addr, data string) {
	t.Helper()
	c, err := dialerFrom(from).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, data); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(bufio.NewReader(c))
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("from %s: read after %q: %v, want the connection closed", from, data, err)
	}
	if len(got) != 0 {
		t.Errorf("from %s: gatehouse answered %q to %q, want the connection closed unanswered", from, got, data)
	}
}

// TestProxyProtocolHAProxy runs real HAProxy in mode tcp with send-proxy
// (v1) and send-proxy-v2 in front of gatehouse's HTTP listener: the
// upstream, the jails and the connection limit see each client's own
// address; a client that bans itself through HAProxy is refused while
// another client through the same HAProxy is served; a direct client
// sending a PROXY header, and the balancer's address without one, are
// refused.
func TestProxyProtocolHAProxy(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	cfg := fmt.Sprintf(`listen:
  http: 127.0.0.1:0
  proxy_protocol: [%s]
admin:
  listen: 127.0.0.1:0
limits: {conns_per_ip: 1}
hosts:
  - match: [www.test]
    upstreams: [%s]
probes: {presets: [secrets]}
jails:
  probes: {maxretry: 2, findtime: 1m, bantime: 1h}
log: {level: debug}
`, balancerAddr, up.URL())
	g := startGateway(t, cfg)
	v1 := &haproxyFront{server: g.httpAddr, opts: "send-proxy"}
	v2 := &haproxyFront{server: g.httpAddr, opts: "send-proxy-v2"}
	startHAProxy(t, []*haproxyFront{v1, v2})

	clients := map[string]*http.Client{}
	for _, tc := range []struct {
		name  string
		front *haproxyFront
		from  string
	}{
		{"v1", v1, "127.0.0.2"},
		{"v2", v2, "127.0.0.4"},
	} {
		// Each client keeps its connection open (keep-alive): under
		// conns_per_ip 1 the next one through the same balancer is only
		// served if the balancer is not what is counted.
		c := clientVia(tc.from, tc.front.addr, nil, true)
		clients[tc.from] = c
		// The header's client is not a trusted proxy: the
		// X-Forwarded-For it sends is not believed.
		code, _, e := viaGet(t, c, "http://www.test/hello", "X-Forwarded-For", "203.0.113.9")
		if code != http.StatusOK {
			t.Fatalf("%s: GET via HAProxy from %s = %d, want 200", tc.name, tc.from, code)
		}
		if got := e.Header.Get("X-Real-Ip"); got != tc.from {
			t.Errorf("%s: upstream X-Real-IP = %q, want the client's %q", tc.name, got, tc.from)
		}
		if got := e.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != tc.from {
			t.Errorf("%s: upstream X-Forwarded-For = %q, want [%q]", tc.name, got, tc.from)
		}
	}
	// The access log names the client, not the balancer.
	poll(t, "an access log line for 127.0.0.4", func() bool {
		return strings.Contains(g.stdout.String(), `"client_ip":"127.0.0.4"`)
	})

	// 127.0.0.3 probes through HAProxy and is banned; 127.0.0.2 and a new
	// client through the same HAProxy are still served.
	prober := clientVia("127.0.0.3", v2.addr, nil, true)
	for _, path := range []string{"/.env", "/.aws/credentials"} {
		viaGet(t, prober, "http://www.test"+path)
	}
	if code, _, _ := viaGet(t, prober, "http://www.test/"); code != http.StatusForbidden {
		t.Errorf("prober after two probes: status %d, want 403 (banned)", code)
	}
	g.waitLog(t, waitTimeout, "the prober's ban", func(log string) bool {
		return logLine(log, "msg=ban ", "jail=probes", "prefix=127.0.0.3/32") != ""
	})
	clients["127.0.0.5"] = clientVia("127.0.0.5", v2.addr, nil, true)
	clients["127.0.0.8"] = clientVia("127.0.0.8", v1.addr, nil, true)
	for from, c := range clients {
		if code, _, _ := viaGet(t, c, "http://www.test/"); code != http.StatusOK {
			t.Errorf("%s through HAProxy after another client's ban: status %d, want 200", from, code)
		}
	}

	// A direct client may not send a header: closed unanswered, logged,
	// counted, and an offence in the probes jail.
	refusedRaw(t, "127.0.0.6", g.httpAddr, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: www.test\r\n\r\n")
	g.waitLog(t, waitTimeout, "the refused header", func(log string) bool {
		return logLine(log, `msg="PROXY header from a peer not in listen.proxy_protocol refused"`, "client_ip=127.0.0.6") != ""
	})
	g.waitMetric(t, 1, "gatehouse_listener_proxy_refused_total", "reason", "not_allowed")
	g.waitLog(t, waitTimeout, "the offence", func(log string) bool {
		return logLine(log, "msg=offence ", "jail=probes", "client_ip=127.0.0.6", `reason="PROXY header"`) != ""
	})
	// The balancer's address without a header: closed unanswered.
	refusedRaw(t, balancerAddr, g.httpAddr, "GET / HTTP/1.1\r\nHost: www.test\r\n\r\n")
	g.waitMetric(t, 1, "gatehouse_listener_proxy_refused_total", "reason", "missing")
	// A direct client without a header is served as ever.
	if code, _, e := viaGet(t, clientVia("127.0.0.7", g.httpAddr, nil, true), "http://www.test/"); code != http.StatusOK || e.Header.Get("X-Real-Ip") != "127.0.0.7" {
		t.Errorf("direct client: status %d, X-Real-IP %q; want 200 from 127.0.0.7", code, e.Header.Get("X-Real-Ip"))
	}

	// The list is bound at start: a reload that changes it says so, and
	// the balancer is still read as before.
	g.reload(t, strings.Replace(cfg, "proxy_protocol: ["+balancerAddr+"]", "proxy_protocol: [127.0.0.11]", 1))
	g.waitLog(t, waitTimeout, "the restart-only warning", func(log string) bool {
		return logLine(log, "takes effect after a restart", "field=listen.proxy_protocol") != ""
	})
	if code, _, e := viaGet(t, clientVia("127.0.0.9", v2.addr, nil, true), "http://www.test/"); code != http.StatusOK || e.Header.Get("X-Real-Ip") != "127.0.0.9" {
		t.Errorf("through HAProxy after the reload: status %d, X-Real-IP %q; want 200 from 127.0.0.9", code, e.Header.Get("X-Real-Ip"))
	}
}

// TestProxyProtocolHAProxyTLS: HAProxy passes TLS through untouched
// (mode tcp, send-proxy and send-proxy-v2) to gatehouse's TLS listener;
// the PROXY header precedes the ClientHello, and the upstream sees the
// client's own address over HTTP/2 and HTTP/1.1 alike.
func TestProxyProtocolHAProxyTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key := ca.issue(t, "www.test")
	up := newEchoUpstream(t, "app")
	g := startGateway(t, fmt.Sprintf(`listen:
  http: 127.0.0.1:0
  https: 127.0.0.1:0
  proxy_protocol: [%s]
admin:
  listen: 127.0.0.1:0
tls:
  certificates:
    - {cert: %s, key: %s}
hosts:
  - match: [www.test]
    upstreams: [%s]
`, balancerAddr, cert, key, up.URL()))
	v1 := &haproxyFront{server: g.httpsAddr, opts: "send-proxy"}
	v2 := &haproxyFront{server: g.httpsAddr, opts: "send-proxy-v2"}
	startHAProxy(t, []*haproxyFront{v1, v2})
	roots := ca.pool
	for _, tc := range []struct {
		front     *haproxyFront
		from      string
		http1     bool
		wantProto string
	}{
		{v1, "127.0.0.2", false, "HTTP/2.0"},
		{v1, "127.0.0.3", true, "HTTP/1.1"},
		{v2, "127.0.0.4", false, "HTTP/2.0"},
		{v2, "127.0.0.5", true, "HTTP/1.1"},
	} {
		code, proto, e := viaGet(t, clientVia(tc.from, tc.front.addr, roots, tc.http1), "https://www.test/tls")
		if code != http.StatusOK || proto != tc.wantProto {
			t.Fatalf("%s %s from %s: status %d over %s, want 200 over %s", tc.front.opts, tc.wantProto, tc.from, code, proto, tc.wantProto)
		}
		if got := e.Header.Get("X-Real-Ip"); got != tc.from {
			t.Errorf("%s %s: upstream X-Real-IP = %q, want the client's %q", tc.front.opts, tc.wantProto, got, tc.from)
		}
		if got := e.Header.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("%s %s: upstream X-Forwarded-Proto = %q, want https", tc.front.opts, tc.wantProto, got)
		}
	}
	// A direct client sending a header to the TLS listener is refused too.
	refusedRaw(t, "127.0.0.6", g.httpsAddr, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n\x16\x03\x01\x00\x05hello")
	g.waitMetric(t, 1, "gatehouse_listener_proxy_refused_total", "reason", "not_allowed")
}
