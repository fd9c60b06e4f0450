package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// rawUpstream is an upstream that answers each request it reads (up to
// the empty line) with the next of answers, written as is; an answer
// ending in "\x00close" closes the connection after it (the marker is
// not sent). It records the request heads it got.
type rawUpstream struct {
	ln      net.Listener
	mu      sync.Mutex
	answers []string
	heads   []string
	conns   int
}

func newRawUpstream(t *testing.T, answers ...string) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln, answers: answers}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns++
			u.mu.Unlock()
			wg.Go(func() { u.serve(c) })
		}
	})
	return u
}

func (u *rawUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		u.mu.Lock()
		u.heads = append(u.heads, head.String())
		var a string
		if len(u.answers) > 0 {
			a, u.answers = u.answers[0], u.answers[1:]
		}
		u.mu.Unlock()
		a, closing := strings.CutSuffix(a, "\x00close")
		if _, err := io.WriteString(c, a); err != nil || closing {
			return
		}
	}
}

func (u *rawUpstream) addr() string { return u.ln.Addr().String() }

func (u *rawUpstream) connCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}

// get sends a GET (or HEAD) through c to addr and returns the status,
// header, body and trailer the client read.
func get(t *testing.T, c *Client, addr string, head bool) (int, http.Header, string, http.Header, error) {
	t.Helper()
	method := "GET"
	if head {
		method = "HEAD"
	}
	u := &url.URL{Scheme: "http", Host: addr}
	h := http.Header{}
	cn, status, err := c.exchange(t.Context(), addr, u, head, func(w *bufio.Writer, u *url.URL) error {
		_, err := w.WriteString(method + " / HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n")
		return err
	}, h)
	if err != nil {
		return 0, nil, "", nil, err
	}
	defer cn.Release()
	for status < 200 {
		clear(h)
		if status, err = cn.NextHead(t.Context(), h, head); err != nil {
			return 0, nil, "", nil, err
		}
	}
	body, err := io.ReadAll(cn)
	return status, h, string(body), cn.Trailer, err
}

func TestClientFraming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		answer     string
		head       bool
		wantStatus int
		wantBody   string
		wantHeader map[string]string
		wantTrail  map[string]string
		wantErr    string
		wantReuse  bool
	}{
		{name: "content-length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
			wantStatus: 200, wantBody: "hello", wantHeader: map[string]string{"Content-Type": "text/plain", "Content-Length": "5"}, wantReuse: true},
		{name: "content-length zero", answer: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			wantStatus: 200, wantReuse: true},
		{name: "repeated equal content-length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
			wantStatus: 200, wantBody: "ok", wantReuse: true},
		{name: "content-length list", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
			wantErr: "Content-Length"},
		{name: "HTTP/1.0 ignores transfer-encoding", answer: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok",
			wantStatus: 200, wantBody: "ok", wantHeader: map[string]string{"Transfer-Encoding": "", "Content-Length": "2"}},
		{name: "differing content-length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
			wantErr: "differing Content-Length"},
		{name: "signed content-length", answer: "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
			wantErr: "Content-Length"},
		{name: "chunked", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
			wantStatus: 200, wantBody: "hello world", wantReuse: true},
		{name: "chunked wins over content-length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
			wantStatus: 200, wantBody: "ok", wantHeader: map[string]string{"Content-Length": ""}, wantReuse: true},
		{name: "chunked with trailers", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: abc\r\nx-other: 1\r\n\r\n",
			wantStatus: 200, wantBody: "ok", wantTrail: map[string]string{"X-Sum": "abc", "X-Other": "1"}, wantReuse: true},
		{name: "bad chunk size", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
			wantStatus: 200, wantErr: "chunk size"},
		{name: "chunk without its CRLF", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX0\r\n\r\n",
			wantStatus: 200, wantErr: "CRLF"},
		{name: "gzip transfer coding", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
			wantErr: "unsupported transfer encoding"},
		{name: "close delimited", answer: "HTTP/1.1 200 OK\r\n\r\nuntil the end\x00close",
			wantStatus: 200, wantBody: "until the end"},
		{name: "connection close", answer: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
			wantStatus: 200, wantBody: "ok"},
		{name: "HTTP/1.0 without keep-alive", answer: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
			wantStatus: 200, wantBody: "ok"},
		{name: "HTTP/1.0 keep-alive", answer: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
			wantStatus: 200, wantBody: "ok", wantReuse: true},
		{name: "HEAD has no body", head: true, answer: "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
			wantStatus: 200, wantHeader: map[string]string{"Content-Length": "1000"}, wantReuse: true},
		{name: "204 has no body", answer: "HTTP/1.1 204 No Content\r\n\r\n",
			wantStatus: 204, wantReuse: true},
		{name: "304 has no body", answer: "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
			wantStatus: 304, wantReuse: true},
		{name: "1xx before the answer", answer: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
			wantStatus: 200, wantBody: "ok", wantHeader: map[string]string{"Link": ""}, wantReuse: true},
		{name: "bare LF line ends", answer: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
			wantStatus: 200, wantBody: "ok", wantReuse: true},
		{name: "non-canonical names", answer: "HTTP/1.1 200 OK\r\ncontent-TYPE: a/b\r\nx-custom-thing:  v \r\nContent-Length: 0\r\n\r\n",
			wantStatus: 200, wantHeader: map[string]string{"Content-Type": "a/b", "X-Custom-Thing": "v"}, wantReuse: true},
		{name: "folded header", answer: "HTTP/1.1 200 OK\r\nX-A: a\r\n  b\r\nContent-Length: 0\r\n\r\n",
			wantErr: "folded"},
		{name: "space before colon", answer: "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 0\r\n\r\n",
			wantErr: "invalid header name"},
		{name: "control character in value", answer: "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n",
			wantErr: "control character"},
		{name: "bad status line", answer: "HTTP/2.0 200 OK\r\n\r\n",
			wantErr: "status line"},
		{name: "short status code", answer: "HTTP/1.1 20 OK\r\n\r\n",
			wantErr: "status line"},
		{name: "truncated body", answer: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort\x00close",
			wantStatus: 200, wantErr: "unexpected EOF"},
		{name: "no answer", answer: "\x00close",
			wantErr: "EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newRawUpstream(t, tc.answer, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
			c := NewClient(ClientConfig{MaxIdlePerHost: 4})
			defer c.CloseIdleConnections()
			status, h, body, trailer, err := get(t, c, up.addr(), tc.head)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("get = %d %q, error %v, want error containing %q", status, body, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if status != tc.wantStatus || body != tc.wantBody {
				t.Errorf("get = %d %q, want %d %q", status, body, tc.wantStatus, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := h.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			for k, v := range tc.wantTrail {
				if got := trailer.Get(k); got != v {
					t.Errorf("trailer %s = %q, want %q", k, got, v)
				}
			}
			// The next request shows whether the connection was kept.
			status, _, body, _, err = get(t, c, up.addr(), false)
			if err != nil || status != 200 || body != "second" {
				t.Fatalf("second get = %d %q, %v; want 200 \"second\"", status, body, err)
			}
			if reused := up.connCount() == 1; reused != tc.wantReuse {
				t.Errorf("connection reused = %v, want %v", reused, tc.wantReuse)
			}
		})
	}
}

// A keep-alive connection the upstream closed while idle is found dead
// only when the next request is written on it; that request must go
// again on a new connection rather than fail.
func TestClientRetriesStaleConnection(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\x00close", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c := NewClient(ClientConfig{MaxIdlePerHost: 4})
	defer c.CloseIdleConnections()
	// The first answer says nothing of closing: the client keeps the
	// connection, which the upstream then closes.
	if _, _, _, _, err := get(t, c, up.addr(), false); err != nil {
		t.Fatal(err)
	}
	status, _, body, _, err := get(t, c, up.addr(), false)
	if err != nil || status != 200 || body != "ok" {
		t.Fatalf("get on a stale connection = %d %q, %v; want 200 \"ok\"", status, body, err)
	}
	if n := up.connCount(); n != 2 {
		t.Errorf("connections = %d, want 2", n)
	}
}

func TestClientResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t, "") // reads the request, never answers
	c := NewClient(ClientConfig{ResponseHeaderTimeout: 50 * time.Millisecond})
	defer c.CloseIdleConnections()
	_, _, _, _, err := get(t, c, up.addr(), false)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("get = %v, want a timeout", err)
	}
}

func TestClientContextCancel(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t, "")
	c := NewClient(ClientConfig{})
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithCancel(t.Context())
	u := &url.URL{Scheme: "http", Host: up.addr()}
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.exchange(ctx, up.addr(), u, false, func(w *bufio.Writer, _ *url.URL) error {
			_, err := w.WriteString("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			return err
		}, http.Header{})
		errc <- err
	}()
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("exchange after cancel = nil error, want one")
	}
}

func TestClientDialError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := NewClient(ClientConfig{})
	_, _, _, _, err = get(t, c, addr, false)
	if !isDialError(err) {
		t.Fatalf("get to a closed port = %v, want a dial error", err)
	}
}

// FuzzReadHead reads arbitrary bytes as an answer with Conn and with
// net/http's ReadResponse, the reference: what Conn accepts, net/http
// accepts too, with the same status, header, body and trailer.
func FuzzReadHead(f *testing.F) {
	// Seeds: each framing (length, chunked with extensions and
	// trailers, close-delimited), informational answers, and the
	// malformed heads the parser must refuse.
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody until close",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 999 Whatever\r\nA:\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := NewClient(ClientConfig{})
		cn := &Conn{br: bufio.NewReaderSize(bytes.NewReader(data), 4096), client: c}
		h := http.Header{}
		status, err := cn.ReadHead(h, false)
		if err != nil {
			return
		}
		body, err := io.ReadAll(cn)
		if err != nil {
			return
		}
		req, _ := http.NewRequest("GET", "http://example.com/", nil)
		resp, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), req)
		if rerr != nil {
			if len(data) > 0 && (data[0] == '\r' || data[0] == '\n') {
				return // empty lines before the status line: RFC 9112 §2.2 lets us skip them
			}
			t.Fatalf("Conn accepted %q, net/http refused it: %v", data, rerr)
		}
		want, rerr := io.ReadAll(resp.Body)
		if rerr != nil {
			t.Fatalf("Conn read the body of %q, net/http failed: %v", data, rerr)
		}
		if resp.StatusCode != status {
			t.Errorf("status = %d, net/http %d", status, resp.StatusCode)
		}
		if !bytes.Equal(body, want) {
			t.Errorf("body = %q, net/http %q", body, want)
		}
		for k, vv := range resp.Header {
			if k == "Trailer" {
				continue // net/http moves the announcement to resp.Trailer
			}
			if got := h[k]; strings.Join(got, "\n") != strings.Join(vv, "\n") {
				t.Errorf("header %s = %q, net/http %q", k, got, vv)
			}
		}
		for k, vv := range resp.Trailer {
			if got := cn.Trailer[k]; len(vv) > 0 && strings.Join(got, "\n") != strings.Join(vv, "\n") {
				t.Errorf("trailer %s = %q, net/http %q", k, got, vv)
			}
		}
	})
}

// Exchange shares RoundTrip's failover: an upstream that refuses the
// connection is marked down and the request goes to the next one.
func TestPoolExchangeFailover(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	c := NewClient(ClientConfig{})
	defer c.CloseIdleConnections()
	cfg := Config{FailTimeout: time.Minute, MaxFails: 1, Client: c,
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x"})}
	for _, a := range []string{refused, up.addr()} {
		cfg.URLs = append(cfg.URLs, &url.URL{Scheme: "http", Host: a})
	}
	p := NewPool(cfg)
	if !p.Plain() {
		t.Fatal("Plain() = false for http upstreams, want true")
	}
	for i := range 2 {
		h := http.Header{}
		cn, status, err := p.Exchange(outgoing("GET", "/", ""), false, func(w *bufio.Writer, _ *url.URL) error {
			_, err := w.WriteString("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			return err
		}, h)
		if err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
		body, err := io.ReadAll(cn)
		cn.Release()
		if status != 200 || string(body) != "ok" || err != nil {
			t.Fatalf("exchange %d = %d %q %v, want 200 \"ok\"", i, status, body, err)
		}
	}
	ups := p.Upstreams()
	if ups[0].DownUntil.IsZero() {
		t.Errorf("refusing upstream %s not marked down", refused)
	}
	if !ups[1].DownUntil.IsZero() {
		t.Errorf("answering upstream marked down until %v", ups[1].DownUntil)
	}
}

func TestPoolPlain(t *testing.T) {
	t.Parallel()
	c := NewClient(ClientConfig{})
	for _, tc := range []struct {
		name   string
		urls   []string
		client *Client
		want   bool
	}{
		{name: "http", urls: []string{"http://a:1", "http://b"}, client: c, want: true},
		{name: "one https", urls: []string{"http://a:1", "https://b"}, client: c},
		{name: "no client", urls: []string{"http://a:1"}},
	} {
		cfg := Config{Client: tc.client}
		for _, s := range tc.urls {
			u, _ := url.Parse(s)
			cfg.URLs = append(cfg.URLs, u)
		}
		if got := NewPool(cfg).Plain(); got != tc.want {
			t.Errorf("%s: Plain() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The response header timeout bounds the wait for the head only: a body
// slower than it still arrives whole.
func TestClientHeaderTimeoutSparesBody(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	release := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst")
		<-release
		io.WriteString(c, "-last")
	}()
	c := NewClient(ClientConfig{ResponseHeaderTimeout: 20 * time.Millisecond})
	defer c.CloseIdleConnections()
	u := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	cn, status, err := c.exchange(t.Context(), u.Host, u, false, func(w *bufio.Writer, _ *url.URL) error {
		_, err := w.WriteString("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		return err
	}, http.Header{})
	if err != nil || status != 200 {
		t.Fatalf("exchange = %d, %v", status, err)
	}
	defer cn.Release()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(cn, buf); err != nil {
		t.Fatal(err)
	}
	// Past the header timeout, the rest comes.
	time.AfterFunc(60*time.Millisecond, func() { close(release) })
	rest, err := io.ReadAll(cn)
	if err != nil || string(rest) != "-last" {
		t.Fatalf("rest of the body = %q, %v; want \"-last\"", rest, err)
	}
}
