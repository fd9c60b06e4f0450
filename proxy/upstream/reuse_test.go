package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptedUpstream answers the first request it reads with first; once
// sendLate is closed it writes late (the bytes an upstream sends after
// its answer) and closes wrote. Every later request, on any
// connection, gets next. closed gets a value each time a connection
// ends.
type scriptedUpstream struct {
	ln       net.Listener
	sendLate chan struct{}
	wrote    chan struct{}
	closed   chan struct{}
	mu       sync.Mutex
	conns    int
}

func newScriptedUpstream(t *testing.T, first, late, next string) *scriptedUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &scriptedUpstream{ln: ln, sendLate: make(chan struct{}), wrote: make(chan struct{}), closed: make(chan struct{}, 16)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); ln.Close(); wg.Wait() })
	var once sync.Once
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns++
			u.mu.Unlock()
			wg.Go(func() {
				defer func() { u.closed <- struct{}{} }()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					answered := false
					once.Do(func() {
						answered = true
						io.WriteString(c, first)
						if late == "" {
							return
						}
						select {
						case <-u.sendLate:
							io.WriteString(c, late)
							close(u.wrote)
						case <-stop:
						}
					})
					if !answered {
						io.WriteString(c, next)
					}
				}
			})
		}
	})
	return u
}

func (u *scriptedUpstream) addr() string { return u.ln.Addr().String() }

func (u *scriptedUpstream) connCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}

// Bytes an upstream sends on a keep-alive connection after its answer
// ended must never be read as the next request's answer: a connection
// that got anything while idle is dropped.
func TestClientDropsConnectionThatSpokeWhileIdle(t *testing.T) {
	t.Parallel()
	const evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Injected: 1\r\n\r\nevil"
	const next = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal"
	tests := []struct {
		name  string
		head  bool
		first string
		late  string
	}{
		{name: "junk after a complete answer", first: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", late: evil},
		{name: "body on a HEAD answer", head: true, first: "HTTP/1.1 200 OK\r\nContent-Length: 83\r\n\r\n", late: evil},
		{name: "body on a 204", first: "HTTP/1.1 204 No Content\r\n\r\n", late: evil},
		{name: "body on a 304", first: "HTTP/1.1 304 Not Modified\r\n\r\n", late: evil},
		{name: "body longer than its content-length", first: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", late: "def" + evil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newScriptedUpstream(t, tc.first, tc.late, next)
			c := NewClient(ClientConfig{MaxIdlePerHost: 4})
			defer c.CloseIdleConnections()
			if _, _, _, _, err := get(t, c, up.addr(), tc.head); err != nil {
				t.Fatalf("first get: %v", err)
			}
			// The connection is idle in the client when the bytes come;
			// on loopback, written is received.
			close(up.sendLate)
			<-up.wrote
			status, h, body, _, err := get(t, c, up.addr(), false)
			if err != nil || status != 200 || body != "real" || h.Get("X-Injected") != "" {
				t.Fatalf("next get = %d %q %v, %v; want 200 \"real\" from a new connection", status, body, h, err)
			}
			if n := up.connCount(); n != 2 {
				t.Errorf("connections = %d, want 2", n)
			}
		})
	}
}

// A connection the upstream closed while it was idle is found so before
// the next request is written on it.
func TestClientDropsConnectionClosedWhileIdle(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\x00close", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c := NewClient(ClientConfig{MaxIdlePerHost: 4})
	defer c.CloseIdleConnections()
	if _, _, _, _, err := get(t, c, up.addr(), false); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	cn := c.idle[up.addr()][0]
	c.mu.Unlock()
	// Wait for the upstream's close to reach the socket.
	if _, err := cn.br.Peek(1); err == nil {
		t.Fatal("the upstream sent more than its answer")
	}
	got, reused, err := c.get(t.Context(), up.addr(), c.now())
	if err != nil {
		t.Fatal(err)
	}
	defer got.nc.Close()
	if reused || got == cn {
		t.Error("get returned the connection the upstream closed")
	}
}

// The response header timeout starts once the request is written: a
// dial slower than it does not fail the request.
func TestClientHeaderTimeoutStartsAfterDial(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	var d net.Dialer
	c := NewClient(ClientConfig{
		ResponseHeaderTimeout: 50 * time.Millisecond,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			time.Sleep(200 * time.Millisecond) // a slow connect
			return d.DialContext(ctx, network, addr)
		},
	})
	defer c.CloseIdleConnections()
	status, _, body, _, err := get(t, c, up.addr(), false)
	if err != nil || status != 200 || body != "ok" {
		t.Fatalf("get = %d %q, %v; want 200 \"ok\"", status, body, err)
	}
}

// Informational answers do not extend the wait for the final one: the
// response header timeout bounds the whole head phase.
func TestClientHeaderTimeoutCoversInformational(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// Four 103s, each well within the timeout of the one before,
		// all together past it.
		for range 4 {
			if _, err := io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-time.After(60 * time.Millisecond):
			}
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		<-done
	}()
	c := NewClient(ClientConfig{ResponseHeaderTimeout: 120 * time.Millisecond})
	defer c.CloseIdleConnections()
	_, _, _, _, err = get(t, c, ln.Addr().String(), false)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("get = %v, want a timeout", err)
	}
}

// More informational answers than net/http's Transport takes are an
// error.
func TestClientBoundsInformational(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t, strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", maxInformational+1)+
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c := NewClient(ClientConfig{})
	defer c.CloseIdleConnections()
	if _, _, _, _, err := get(t, c, up.addr(), false); !errors.Is(err, ErrHead) {
		t.Fatalf("get = %v, want a malformed answer", err)
	}
	up = newRawUpstream(t, strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", maxInformational)+
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if status, _, body, _, err := get(t, c, up.addr(), false); err != nil || status != 200 || body != "ok" {
		t.Fatalf("get = %d %q, %v; want 200 \"ok\"", status, body, err)
	}
}

// Empty lines before the status line count against the head's limit.
func TestClientCountsLeadingEmptyLines(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t, strings.Repeat("\r\n", maxHeadBytes/2)+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c := NewClient(ClientConfig{})
	defer c.CloseIdleConnections()
	if _, _, _, _, err := get(t, c, up.addr(), false); err == nil || !strings.Contains(err.Error(), "head over") {
		t.Fatalf("get = %v, want the head refused as too long", err)
	}
}

// Idle connections close after the idle timeout with no request to
// notice them.
func TestClientSweepsIdleConnections(t *testing.T) {
	t.Parallel()
	up := newScriptedUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "", "")
	c := NewClient(ClientConfig{IdleTimeout: 20 * time.Millisecond})
	defer c.CloseIdleConnections()
	if _, _, _, _, err := get(t, c, up.addr(), false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-up.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle connection was never closed")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle) != 0 {
		t.Errorf("idle set = %v, want empty", c.idle)
	}
}

// CloseIdleExcept closes the idle connections to the addresses it is
// not told to keep, and only those.
func TestClientCloseIdleExcept(t *testing.T) {
	t.Parallel()
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	kept := newScriptedUpstream(t, ok, "", ok)
	gone := newScriptedUpstream(t, ok, "", ok)
	c := NewClient(ClientConfig{})
	defer c.CloseIdleConnections()
	for _, u := range []*scriptedUpstream{kept, gone} {
		if _, _, _, _, err := get(t, c, u.addr(), false); err != nil {
			t.Fatal(err)
		}
	}
	c.CloseIdleExcept(func(addr string) bool { return addr == kept.addr() })
	select {
	case <-gone.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection to the removed upstream was not closed")
	}
	if _, _, _, _, err := get(t, c, kept.addr(), false); err != nil {
		t.Fatal(err)
	}
	if n := kept.connCount(); n != 1 {
		t.Errorf("connections to the kept upstream = %d, want 1", n)
	}
}
