//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"gatehouse/rules/testenv"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The request hygiene tests talk to the real binary over raw
// TCP: each writes the exact bytes of a request — malformed ones included,
// which no Go client would send — and reads what comes back.

// rawAnswer is one response read from a raw connection.
type rawAnswer struct {
	status int
	header http.Header
	body   string
}

// rawExchange writes req to a new connection to addr and reads up to want
// responses. closed reports whether the gateway then closed the
// connection; it is only checked (with a deadline, never a sleep) when
// wantClosed is true, since an open connection can only be told by
// waiting.
func rawExchange(t *testing.T, addr, req string, want int, wantClosed bool) (answers []rawAnswer, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return rawExchangeConn(t, c, req, want, wantClosed)
}

// rawExchangeConn is rawExchange on an open connection, which it closes.
func rawExchangeConn(t *testing.T, c net.Conn, req string, want int, wantClosed bool) (answers []rawAnswer, closed bool) {
	t.Helper()
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write request: %v", err)
	}
	br := bufio.NewReader(c)
	for range want {
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil {
			break // the gateway closed before answering every request
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers = append(answers, rawAnswer{status: resp.StatusCode, header: resp.Header, body: string(body)})
	}
	if wantClosed {
		_, err := br.ReadByte()
		closed = errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
	}
	return answers, closed
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && strings.Contains(ne.Err.Error(), "connection reset")
}

func statuses(as []rawAnswer) []int {
	out := make([]int, len(as))
	for i, a := range as {
		out[i] = a.status
	}
	return out
}

// TestHygieneRawRequests sends every class of request hygiene refuses, and
// its well-formed twin, through the real gateway.
func TestHygieneRawRequests(t *testing.T) {
	t.Parallel()
	app := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [app.example.com]
    upstreams: [%s]
  - match: [nows.example.com]
    upstreams: [%[1]s]
    websocket: false
  - match: ["*.example.org"]
    upstreams: [%[1]s]
    allow_encoded_slash: true
  - match: [admin.example.org]
    upstreams: [%[1]s]
`, app.URL())))

	const host = "Host: app.example.com\r\n"
	tests := []struct {
		name string
		raw  string
		// want are the statuses of the answers, in order; a refused
		// request is the last one answered.
		want []int
		// closed: the gateway must close the connection after the last
		// answer.
		closed bool
		// forwarded is how many requests must reach the upstream.
		forwarded int64
		// bodyHas must be in the last answer's body ("": not checked).
		bodyHas string
	}{
		// Framing (RFC 9112 §6, §11.2): refused before net/http parses,
		// by the connection guard.
		{name: "content-length and transfer-encoding",
			raw:  "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			want: []int{400}, closed: true},
		{name: "transfer-encoding then content-length",
			raw:  "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
			want: []int{400}, closed: true},
		{name: "transfer-encoding on HTTP/1.0",
			raw:  "POST / HTTP/1.0\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			want: []int{400}, closed: true},
		{name: "obs-fold with space",
			raw:  "GET / HTTP/1.1\r\n" + host + "X-Note: a\r\n b\r\n\r\n",
			want: []int{400}, closed: true},
		{name: "obs-fold with tab",
			raw:  "GET / HTTP/1.1\r\n" + host + "X-Note: a\r\n\tb\r\n\r\n",
			want: []int{400}, closed: true},
		{name: "HTTP/1.2", raw: "GET / HTTP/1.2\r\n" + host + "\r\n", want: []int{400}, closed: true},
		{name: "HTTP/1.9", raw: "GET / HTTP/1.9\r\n" + host + "\r\n", want: []int{400}, closed: true},
		{name: "HTTP/2.0 request line", raw: "GET / HTTP/2.0\r\n" + host + "\r\n", want: []int{400}, closed: true},
		{name: "HTTP/2 preface on HTTP/1", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", want: []int{400}, closed: true},
		{name: "HTTP/0.9", raw: "GET /\r\n", want: []int{400}, closed: true},
		{name: "smuggled request after a good one",
			raw: "GET /first HTTP/1.1\r\n" + host + "\r\n" +
				"POST / HTTP/1.1\r\n" + host + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			want: []int{200, 400}, closed: true, forwarded: 1},
		{name: "chunked body then a pipelined request",
			raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n" +
				"GET /b HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n",
			want: []int{200, 200}, forwarded: 2},
		{name: "content-length body then a pipelined request",
			raw: "POST /a HTTP/1.1\r\n" + host + "Content-Length: 11\r\n\r\nGET / HTTP/" +
				"GET /b HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n",
			want: []int{200, 200}, forwarded: 2},
		{name: "CRLF after a POST body is skipped",
			raw: "POST /a HTTP/1.1\r\n" + host + "Content-Length: 2\r\n\r\nok\r\n" +
				"GET /b HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n",
			want: []int{200, 200}, forwarded: 2},

		// Methods and upgrades.
		{name: "CONNECT", raw: "CONNECT app.example.com:443 HTTP/1.1\r\nHost: app.example.com:443\r\n\r\n", want: []int{400}, closed: true},
		{name: "PRI on HTTP/1.1", raw: "PRI * HTTP/1.1\r\n" + host + "\r\n", want: []int{400}, closed: true},
		{name: "TRACE", raw: "TRACE / HTTP/1.1\r\n" + host + "Cookie: session=secret\r\n\r\n", want: []int{405}, closed: true},
		{name: "h2c upgrade is served as plain HTTP/1.1",
			raw:  "GET / HTTP/1.1\r\n" + host + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
			want: []int{200}, forwarded: 1},
		{name: "other upgrade is served as plain HTTP",
			raw:  "GET / HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: TLS/1.2\r\n\r\n",
			want: []int{200}, forwarded: 1},
		{name: "websocket where not allowed",
			raw:  "GET / HTTP/1.1\r\nHost: nows.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
			want: []int{403}},

		// Host (RFC 9110 §7.2, RFC 9112 §3.2).
		{name: "host with port, trailing dot and upper case",
			raw: "GET / HTTP/1.1\r\nHost: APP.Example.COM.:8080\r\n\r\n", want: []int{200}, forwarded: 1},
		{name: "absolute form wins over Host",
			raw: "GET http://app.example.com/x HTTP/1.1\r\nHost: other.example\r\n\r\n", want: []int{200}, forwarded: 1},
		{name: "absolute form for an unknown host",
			raw: "GET http://other.example/x HTTP/1.1\r\n" + host + "\r\n", want: []int{421}},
		{name: "absolute form with user info",
			raw: "GET http://user@app.example.com/x HTTP/1.1\r\n" + host + "\r\n", want: []int{400}, closed: true},
		{name: "absolute form with another scheme",
			raw: "GET ftp://app.example.com/x HTTP/1.1\r\n" + host + "\r\n", want: []int{400}, closed: true},
		{name: "X-Forwarded-Host never routes",
			raw: "GET / HTTP/1.1\r\nHost: other.example\r\nX-Forwarded-Host: app.example.com\r\n\r\n", want: []int{421}},
		{name: "underscore in host", raw: "GET / HTTP/1.1\r\nHost: app_1.example.com\r\n\r\n", want: []int{400}, closed: true},
		{name: "two trailing dots", raw: "GET / HTTP/1.1\r\nHost: app.example.com..\r\n\r\n", want: []int{400}, closed: true},
		{name: "empty label", raw: "GET / HTTP/1.1\r\nHost: app..example.com\r\n\r\n", want: []int{400}, closed: true},
		{name: "inet_aton short form", raw: "GET / HTTP/1.1\r\nHost: 127.1\r\n\r\n", want: []int{400}, closed: true},
		{name: "IPv6 zone", raw: "GET / HTTP/1.1\r\nHost: [fe80::1%25lo]\r\n\r\n", want: []int{400}, closed: true},
		{name: "empty host", raw: "GET / HTTP/1.1\r\nHost:\r\n\r\n", want: []int{400}, closed: true},
		{name: "bad port", raw: "GET / HTTP/1.1\r\nHost: app.example.com:99999\r\n\r\n", want: []int{400}, closed: true},

		// Headers.
		{name: "two Authorization lines",
			raw:  "GET / HTTP/1.1\r\n" + host + "Authorization: Basic YTpi\r\nAuthorization: Basic YzpkCg==\r\n\r\n",
			want: []int{400}, closed: true},

		// Paths (the canonical view).
		{name: "encoded slash", raw: "GET /a%2Fb HTTP/1.1\r\n" + host + "\r\n", want: []int{400}, closed: true},
		{name: "double encoding", raw: "GET /%252e%252e/x HTTP/1.1\r\n" + host + "\r\n", want: []int{400}, closed: true},
		{name: "raw fragment", raw: "GET /a#b HTTP/1.1\r\n" + host + "\r\n", want: []int{400}, closed: true},
		{name: "raw backslash", raw: "GET /a\\b HTTP/1.1\r\n" + host + "\r\n", want: []int{400}, closed: true},
		{name: "raw non-ASCII", raw: "GET /caf\xc3\xa9 HTTP/1.1\r\n" + host + "\r\n", want: []int{400}, closed: true},
		{name: "dot-dot above root", raw: "GET /../etc/passwd HTTP/1.1\r\n" + host + "\r\n", want: []int{400}, closed: true},
		{name: "encoded slash where the host allows it",
			raw:  "GET /api/v4/projects/group%2Fproject HTTP/1.1\r\nHost: git.example.org\r\n\r\n",
			want: []int{200}, forwarded: 1, bodyHas: `"uri":"/api/v4/projects/group%2Fproject"`},
		{name: "encoded slash on an exact host beside the allowing wildcard",
			raw: "GET /a%2Fb HTTP/1.1\r\nHost: admin.example.org\r\n\r\n", want: []int{400}, closed: true},
		{name: "encoded backslash where encoded slashes are allowed",
			raw: "GET /a%5Cb HTTP/1.1\r\nHost: git.example.org\r\n\r\n", want: []int{400}, closed: true},
		{name: "clean path with params and dots", raw: "GET /a/./b;v=1/../c HTTP/1.1\r\n" + host + "\r\n", want: []int{200}, forwarded: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := app.hits.Load()
			answers, closed := rawExchange(t, g.httpAddr, tc.raw, len(tc.want), tc.closed)
			if got := statuses(answers); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("statuses = %v, want %v", got, tc.want)
			}
			if tc.closed && !closed {
				t.Errorf("connection left open after the %d, want it closed", tc.want[len(tc.want)-1])
			}
			if got := app.hits.Load() - before; got != tc.forwarded {
				t.Errorf("upstream received %d requests, want %d", got, tc.forwarded)
			}
			if tc.bodyHas != "" && !strings.Contains(answers[len(answers)-1].body, tc.bodyHas) {
				t.Errorf("answer %q does not contain %q", answers[len(answers)-1].body, tc.bodyHas)
			}
		})
	}
}

// TestHygieneHeadersStripped: no client-sent forwarding, identity or
// rewrite header reaches the upstream, in any spelling; the gateway's own
// forwarding headers survive a Connection header naming them; request
// trailers never become headers.
func TestHygieneHeadersStripped(t *testing.T) {
	t.Parallel()
	app := newEchoUpstream(t, "app")
	// {SHA} entry for alice:wonderland, computed here so no tool is needed.
	sum := sha1.Sum([]byte("wonderland"))
	users := writeFile(t, "users.htpasswd", "alice:{SHA}"+base64.StdEncoding.EncodeToString(sum[:])+"\n")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [app.example.com]
    upstreams: [%s]
  - match: [auth.example.com]
    upstreams: [%s]
    basic_auth: {htpasswd: %s, user_header: Remote-User}
`, app.URL(), app.URL(), users)))

	spoofed := []string{
		"X-Forwarded-Port: 443", "X-Forwarded-Prefix: /admin", "X-Forwarded-Server: evil",
		"X_Forwarded_For: 203.0.113.1", "X.Forwarded.For: 203.0.113.2", "x-forwarded_proto: https",
		"X_Real_IP: 203.0.113.3", "X-Real-IP: 203.0.113.4", "Forwarded: for=203.0.113.5",
		"X-Original-URL: /admin", "X-Rewrite-URL: /admin", "X-Middleware-Subrequest: middleware",
		"Proxy: http://203.0.113.6:3128", "X-Forwarded-User: root", "X_Forwarded_User: root",
		"Remote-User: root", "Remote_User: root", "True-Client-IP: 203.0.113.7", "X-Client-IP: 203.0.113.8",
	}
	allowed := map[string]bool{"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true, "X-Real-Ip": true}

	check := func(t *testing.T, e echo, wantUser string) {
		t.Helper()
		for name, v := range e.Header {
			n := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(name))
			switch {
			case allowed[name]:
			case n == "remote-user" && wantUser != "" && name == "Remote-User":
			case strings.HasPrefix(n, "x-forwarded-"), strings.Contains(n, "real-ip"), n == "forwarded",
				n == "x-original-url", n == "x-rewrite-url", n == "x-middleware-subrequest", n == "proxy",
				n == "remote-user", n == "true-client-ip", n == "x-client-ip":
				t.Errorf("upstream received %s: %q", name, v)
			}
		}
		for name, want := range map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "http"} {
			if got := e.Header.Values(name); len(got) != 1 || got[0] != want {
				t.Errorf("upstream %s = %q, want [%q]", name, got, want)
			}
		}
		if got := e.Header.Get("Remote-User"); got != wantUser {
			t.Errorf("upstream Remote-User = %q, want %q", got, wantUser)
		}
	}

	t.Run("spoofed headers", func(t *testing.T) {
		raw := "GET /h HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n" + strings.Join(spoofed, "\r\n") + "\r\n\r\n"
		answers, _ := rawExchange(t, g.httpAddr, raw, 1, false)
		if len(answers) != 1 || answers[0].status != 200 {
			t.Fatalf("answers = %v, want one 200", statuses(answers))
		}
		check(t, decodeEcho(t, []byte(answers[0].body)), "")
	})
	t.Run("connection header cannot drop gateway headers", func(t *testing.T) {
		raw := "GET /h HTTP/1.1\r\nHost: auth.example.com\r\n" +
			"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wonderland")) + "\r\n" +
			"Connection: close, X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, Remote-User\r\n" +
			strings.Join(spoofed, "\r\n") + "\r\n\r\n"
		answers, _ := rawExchange(t, g.httpAddr, raw, 1, false)
		if len(answers) != 1 || answers[0].status != 200 {
			t.Fatalf("answers = %v, want one 200", statuses(answers))
		}
		check(t, decodeEcho(t, []byte(answers[0].body)), "alice")
	})
	t.Run("trailers are not forwarded", func(t *testing.T) {
		raw := "POST /t HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n" +
			"Trailer: X-Forwarded-For, X-Smuggled\r\n\r\n3\r\nabc\r\n0\r\nX-Forwarded-For: 203.0.113.9\r\nX-Smuggled: yes\r\n\r\n"
		answers, _ := rawExchange(t, g.httpAddr, raw, 1, false)
		if len(answers) != 1 || answers[0].status != 200 {
			t.Fatalf("answers = %v, want one 200", statuses(answers))
		}
		e := decodeEcho(t, []byte(answers[0].body))
		if e.Body != "abc" {
			t.Errorf("upstream body = %q, want %q", e.Body, "abc")
		}
		if v := e.Header.Values("X-Smuggled"); len(v) != 0 {
			t.Errorf("upstream X-Smuggled = %q, want none", v)
		}
		check(t, e, "")
	})
}

// TestHygieneResponseHeaders: the default security headers, no Server
// version, and no HSTS over plain HTTP.
func TestHygieneResponseHeaders(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "Apache/2.4.1 (Unix) PHP/5.3")
		w.Header().Set("X-Powered-By", "PHP/5.3")
		io.WriteString(w, "ok")
	}))
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [app.example.com]
    upstreams: [%s]
`, up.URL)))
	for _, path := range []string{"/", "/%2F"} { // an upstream answer and the gateway's own
		resp, _ := g.get(t, "app.example.com", path)
		for name, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Server":                 "",
			"X-Powered-By":           "",
			// Sent only over TLS (RFC 6797 §8.1).
			"Strict-Transport-Security": "",
		} {
			if got := resp.Header.Get(name); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, name, got, want)
			}
		}
		if path == "/" {
			if got := resp.Header.Get("Referrer-Policy"); got != "strict-origin-when-cross-origin" {
				t.Errorf("GET /: Referrer-Policy = %q, want strict-origin-when-cross-origin", got)
			}
		}
	}
}

// TestConnsPerIP: a client over limits.conns_per_ip has its connection
// closed at once and is reported to the flood jail; the others are served,
// and a freed slot is usable again.
func TestConnsPerIP(t *testing.T) {
	t.Parallel()
	app := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`limits: {conns_per_ip: 3}
jails:
  flood: {maxretry: 100, findtime: 1m, bantime: 1m}
hosts:
  - match: [app.example.com]
    upstreams: [%s]
`, app.URL())))
	var held []net.Conn
	for range 3 {
		c, err := net.DialTimeout("tcp", g.httpAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		held = append(held, c)
	}
	// The three are open and counted once the gateway answers on one:
	// connections are accepted in order.
	get := func(c net.Conn) (int, error) {
		if err := c.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
			return 0, err
		}
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(held[2]); err != nil || code != 200 {
		t.Fatalf("third connection: status %d, error %v; want 200", code, err)
	}
	over, err := net.DialTimeout("tcp", g.httpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if code, err := get(over); err == nil {
		t.Fatalf("fourth connection answered %d, want it closed", code)
	}
	g.waitMetric(t, 1, "gatehouse_jail_offences_total", "jail", "flood")
	if code, err := get(held[0]); err != nil || code != 200 {
		t.Fatalf("first connection after the refusal: status %d, error %v; want 200", code, err)
	}
	held[1].Close()
	// The slot is given back when the gateway sees the close; poll with
	// new connections until one is served.
	poll(t, "a freed connection slot", func() bool {
		c, err := net.DialTimeout("tcp", g.httpAddr, 5*time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		code, err := get(c)
		return err == nil && code == 200
	})
}

// ---- HTTP/2: raw frames over the TLS listener ----

// h2Gateway starts a gateway with a TLS listener serving app.example.com
// and 127.0.0.1 from upstream, with a certificate from a fresh test CA.
func h2Gateway(t *testing.T, upstream, extra string) (*gateway, *testCA) {
	t.Helper()
	ca := newTestCA(t)
	cert, key := ca.issue(t, "app.example.com", "127.0.0.1")
	g := startGateway(t, fmt.Sprintf(`listen:
  http: 127.0.0.1:0
  https: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
tls:
  certificates:
    - {cert: %s, key: %s}
hosts:
  - match: [app.example.com, 127.0.0.1]
    upstreams: [%s]
%s`, cert, key, upstream, extra))
	if g.httpsAddr == "" {
		t.Fatal("the gateway logged no https listener")
	}
	return g, ca
}

// h2Conn is a client HTTP/2 connection driven frame by frame, so a test
// can send what no conforming client would.
type h2Conn struct {
	c   *tls.Conn
	fr  *http2.Framer
	buf bytes.Buffer
	enc *hpack.Encoder
}

func dialH2(t *testing.T, addr string, roots *x509.CertPool) *h2Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: "app.example.com", RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN = %q, want h2", p)
	}
	if err := c.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
		t.Fatal(err)
	}
	h := &h2Conn{c: c, fr: http2.NewFramer(c, c)}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.buf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return h
}

// h2Result is how the server ended a stream: a response status, a stream
// reset, or a connection-level GOAWAY.
type h2Result struct {
	status string
	reset  http2.ErrCode
	goaway bool
}

func (r h2Result) String() string {
	switch {
	case r.status != "":
		return ":status " + r.status
	case r.goaway:
		return "GOAWAY"
	}
	return "RST_STREAM " + r.reset.String()
}

// request sends fields (written to the wire as given, unvalidated) on
// stream id, then data if any, and reads until the stream's answer.
func (h *h2Conn) request(t *testing.T, id uint32, fields [][2]string, data string) h2Result {
	t.Helper()
	h.buf.Reset()
	for _, f := range fields {
		if err := h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.buf.Bytes(),
		EndHeaders: true, EndStream: data == ""}); err != nil {
		t.Fatal(err)
	}
	if data != "" {
		if err := h.fr.WriteData(id, true, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := h.fr.WriteSettingsAck(); err != nil {
					t.Fatal(err)
				}
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				return h2Result{status: f.PseudoValue("status")}
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return h2Result{reset: f.ErrCode}
			}
		case *http2.GoAwayFrame:
			return h2Result{goaway: true}
		}
	}
}

// TestHygieneHTTP2 sends, over HTTP/2, the requests that only a raw
// client can: a host header that disagrees with :authority, CR and LF in a
// value, a content-length that lies, te other than trailers, CONNECT.
func TestHygieneHTTP2(t *testing.T) {
	t.Parallel()
	app := newEchoUpstream(t, "app")
	g, ca := h2Gateway(t, app.URL(), "")
	base := func(extra ...[2]string) [][2]string {
		return append([][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "app.example.com"}, {":path", "/h2"}}, extra...)
	}
	post := func(extra ...[2]string) [][2]string {
		return append([][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "app.example.com"}, {":path", "/h2"}}, extra...)
	}
	tests := []struct {
		name   string
		fields [][2]string
		data   string
		// ok: the request must be answered 200 by the upstream; else it
		// must be refused (400, a stream reset or GOAWAY) and never be
		// answered by the upstream.
		ok bool
	}{
		{name: "plain request", fields: base(), ok: true},
		{name: "host header agrees", fields: base([2]string{"host", "APP.example.com"}), ok: true},
		{name: "te trailers", fields: base([2]string{"te", "trailers"}), ok: true},
		{name: "honest content-length", fields: post([2]string{"content-length", "3"}), data: "abc", ok: true},
		{name: "host header disagrees", fields: base([2]string{"host", "other.example.com"})},
		{name: "two host headers", fields: base([2]string{"host", "app.example.com"}, [2]string{"host", "other.example.com"})},
		{name: "CR LF in a value", fields: base([2]string{"x-note", "a\r\nx-forwarded-for: 203.0.113.1"})},
		{name: "LF in a value", fields: base([2]string{"x-note", "a\nb"})},
		{name: "content-length larger than the body", fields: post([2]string{"content-length", "10"}), data: "abc"},
		{name: "content-length smaller than the body", fields: post([2]string{"content-length", "1"}), data: "abc"},
		{name: "te gzip", fields: base([2]string{"te", "gzip"})},
		{name: "transfer-encoding", fields: post([2]string{"transfer-encoding", "chunked"}), data: "0\r\n\r\n"},
		{name: "connection header", fields: base([2]string{"connection", "keep-alive"})},
		{name: "CONNECT", fields: [][2]string{{":method", "CONNECT"}, {":authority", "app.example.com:443"}}},
		// :method must be an RFC 9110 token.
		{name: "method with a space", fields: [][2]string{{":method", "GET /admin"}, {":scheme", "https"}, {":authority", "app.example.com"}, {":path", "/h2"}}},
		{name: "method with a quote", fields: [][2]string{{":method", `DELETE"`}, {":scheme", "https"}, {":authority", "app.example.com"}, {":path", "/h2"}}},
		{name: "extension method", fields: [][2]string{{":method", "PROPFIND"}, {":scheme", "https"}, {":authority", "app.example.com"}, {":path", "/h2"}}, ok: true},
		{name: "invalid authority", fields: [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "app_1.example.com"}, {":path", "/"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A fresh connection per case: a GOAWAY ends one.
			h := dialH2(t, g.httpsAddr, ca.pool)
			before := app.answered.Load()
			res := h.request(t, 1, tc.fields, tc.data)
			answered := app.answered.Load() - before
			if tc.ok {
				if res.status != "200" || answered != 1 {
					t.Fatalf("got %v, upstream answered %d; want :status 200 from the upstream", res, answered)
				}
				return
			}
			if res.status != "" && res.status[0] != '4' {
				t.Errorf("got %v, want 400, a stream reset or GOAWAY", res)
			}
			if answered != 0 {
				t.Errorf("upstream answered %d requests, want 0", answered)
			}
		})
	}
}

// TestH2Spec runs the h2spec conformance suite against gatehouse's TLS
// listener and, in the same run, against a plain net/http TLS server:
// gatehouse must fail no test that plain Go passes.
func TestH2Spec(t *testing.T) {
	t.Parallel()
	h2spec := testenv.GoTool(t, "h2spec", "make tools (go install github.com/summerwind/h2spec/cmd/h2spec)")
	app := newEchoUpstream(t, "app")
	g, _ := h2Gateway(t, app.URL(), "")

	plain := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok\n")
	}))
	plain.EnableHTTP2 = true
	plain.Config.ErrorLog = log.New(io.Discard, "", 0) // h2spec's malformed frames are expected
	plain.StartTLS()
	t.Cleanup(plain.Close)

	run := func(name, addr string) map[string]bool {
		t.Helper()
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		report := filepath.Join(t.TempDir(), name+".xml")
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, h2spec, "-h", "127.0.0.1", "-p", port, "-t", "-k", "-o", "5", "-j", report).CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) { // h2spec exits 1 when a test fails
			t.Fatalf("h2spec against %s: %v\n%s", name, err, out)
		}
		failed, total, err := junitFailures(report)
		if err != nil {
			t.Fatalf("h2spec report for %s: %v\n%s", name, err, out)
		}
		if total < 100 {
			t.Fatalf("h2spec ran %d tests against %s, want the full suite\n%s", total, name, out)
		}
		t.Logf("h2spec %s: %d tests, %d failed %q", name, total, len(failed), slices.Sorted(maps.Keys(failed)))
		return failed
	}
	goFailed := run("net-http", plain.Listener.Addr().String())
	ghFailed := run("gatehouse", g.httpsAddr)
	for id := range ghFailed {
		if !goFailed[id] {
			t.Errorf("h2spec %s fails against gatehouse but passes against plain net/http", id)
		}
	}
	if len(ghFailed) > len(goFailed) {
		t.Errorf("h2spec: gatehouse fails %d tests, plain net/http %d", len(ghFailed), len(goFailed))
	}
}

// junitFailures reads an h2spec JUnit report and returns the names of the
// failed test cases and the number of test cases.
func junitFailures(path string) (map[string]bool, int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var suites struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"classname,attr"` // h2spec puts the case's title here
				Package string    `xml:"package,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &suites); err != nil {
		return nil, 0, err
	}
	failed := map[string]bool{}
	total := 0
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			total++
			if c.Failure != nil || c.Error != nil {
				failed[c.Package+": "+c.Name] = true
			}
		}
	}
	return failed, total, nil
}

// ---- slow clients: slowhttptest ----

// TestSlowClients runs slowhttptest's slowloris (slow headers) and slow
// body attacks, bounded in connections and time, from 127.0.0.1 while a
// normal client on 127.0.0.2 keeps being answered. The slow connections
// are cut off by read_header_timeout and conns_per_ip.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	slow := testenv.Tool(t, "slowhttptest")
	app := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`limits:
  read_header_timeout: 2s
  conns_per_ip: 64
jails:
  flood: {maxretry: 1000, findtime: 1s, bantime: 1m}
hosts:
  - match: [127.0.0.1, app.example.com]
    upstreams: [%s]
`, app.URL())))

	normal := &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       (&net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
			DisableKeepAlives: true, // a new connection each time, as a new visitor would
		},
		Timeout: clientTimeout,
	}
	for _, attack := range []struct {
		name string
		args []string
	}{
		{"slowloris", []string{"-H", "-i", "5"}},
		{"slow body", []string{"-B", "-i", "5", "-s", "100000"}},
	} {
		t.Run(attack.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			args := append([]string{"-c", "300", "-r", "100", "-l", "12", "-t", "POST", "-x", "20",
				"-u", "http://" + g.httpAddr + "/slow"}, attack.args...)
			cmd := exec.CommandContext(ctx, slow, args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			served := 0
			for running := true; running; {
				select {
				case err := <-done:
					running = false
					if err != nil {
						t.Logf("slowhttptest: %v", err)
					}
				default:
					resp, err := normal.Get("http://" + g.httpAddr + "/normal")
					if err != nil {
						t.Fatalf("normal client during %s: %v\nslowhttptest:\n%s", attack.name, err, out.String())
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("normal client during %s: status %d", attack.name, resp.StatusCode)
					}
					served++
					g.pause(t)
				}
			}
			if served == 0 {
				t.Fatalf("the normal client sent no request during %s", attack.name)
			}
			t.Logf("%s: normal client served %d times; slowhttptest:\n%s", attack.name, served, lastLines(out.String(), 12))
		})
	}
	// 300 connections from one address against conns_per_ip 64: the
	// ones over the limit were closed and reported.
	if n := g.metric(t, "gatehouse_jail_offences_total", "jail", "flood"); n == 0 {
		t.Errorf("flood offences = %v, want connections over conns_per_ip reported", n)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestHygieneTLS: HSTS on answers over TLS (per host, off included) and
// listen.strict_sni.
func TestHygieneTLS(t *testing.T) {
	t.Parallel()
	app := newEchoUpstream(t, "app")
	ca := newTestCA(t)
	cert, key := ca.issue(t, "app.example.com", "legacy.example.com", "127.0.0.1")
	g := startGateway(t, fmt.Sprintf(`listen:
  http: 127.0.0.1:0
  https: 127.0.0.1:0
  strict_sni: true
admin:
  listen: 127.0.0.1:0
tls:
  certificates:
    - {cert: %s, key: %s}
hosts:
  - match: [app.example.com, 127.0.0.1]
    upstreams: [%[3]s]
  - match: [legacy.example.com]
    upstreams: [%[3]s]
    hsts: off
`, cert, key, app.URL()))
	if g.httpsAddr == "" {
		t.Fatal("the gateway logged no https listener")
	}
	client := tlsClient(g.httpsAddr, ca.pool)
	get := func(url, host string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s (Host %s): %v", url, host, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, tc := range []struct {
		name, url, host string
		status          int
		hsts            string
	}{
		{"default HSTS", "https://app.example.com/", "app.example.com", 200, "max-age=31536000"},
		{"hsts off", "https://legacy.example.com/", "legacy.example.com", 200, ""},
		{"refusal before routing carries no HSTS", "https://app.example.com/%2F", "app.example.com", 400, ""},
		{"SNI differs from Host", "https://app.example.com/", "legacy.example.com", 421, ""},
		{"no SNI, IP host", "https://127.0.0.1/", "127.0.0.1", 200, "max-age=31536000"},
		{"no SNI, named host", "https://127.0.0.1/", "app.example.com", 421, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := get(tc.url, tc.host)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Strict-Transport-Security"); got != tc.hsts {
				t.Errorf("Strict-Transport-Security = %q, want %q", got, tc.hsts)
			}
		})
	}

	// HTTP/1.1 over TLS passes the same framing guard as plain HTTP, and
	// its requests still know their TLS state (strict_sni, HSTS).
	for _, tc := range []struct {
		name, req string
		want      []int
		closed    bool
	}{
		{"pipelined well-formed", "GET /a HTTP/1.1\r\nHost: app.example.com\r\n\r\nGET /b HTTP/1.1\r\nHost: app.example.com\r\n\r\n", []int{200, 200}, false},
		{"CL+TE smuggling", "POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.example.com\r\n\r\n", []int{400}, true},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: app.example.com\r\nX-A: a\r\n b\r\n\r\n", []int{400}, true},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: app.example.com\r\n\r\n", []int{400}, true},
		{"SNI differs from Host", "GET / HTTP/1.1\r\nHost: legacy.example.com\r\n\r\n", []int{421}, false},
	} {
		t.Run("http/1.1 "+tc.name, func(t *testing.T) {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.httpsAddr,
				&tls.Config{ServerName: "app.example.com", RootCAs: ca.pool, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			before := app.hits.Load()
			answers, closed := rawExchangeConn(t, c, tc.req, len(tc.want)+1, tc.closed)
			// Only the answered 200s reached the upstream: nothing smuggled.
			var ok int64
			for _, st := range tc.want {
				if st == 200 {
					ok++
				}
			}
			if hits := app.hits.Load() - before; hits != ok {
				t.Errorf("upstream saw %d requests, want %d", hits, ok)
			}
			if got := statuses(answers); !slices.Equal(got, tc.want) {
				t.Fatalf("statuses = %v, want %v", got, tc.want)
			}
			if tc.closed && !closed {
				t.Error("connection left open after a refused request")
			}
			if tc.want[0] == 200 && answers[0].header.Get("Strict-Transport-Security") == "" {
				t.Error("no HSTS on an HTTP/1.1-over-TLS answer: r.TLS lost")
			}
		})
	}

}
