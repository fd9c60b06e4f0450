package listener

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConnLimiterKeys(t *testing.T) {
	t.Parallel()
	l := NewLimiter(LimitConfig{Max: 2, IPv6Prefix: 64, Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for _, tc := range []struct {
		name, addr string
		want       string // "" for exempt
	}{
		{"IPv4", "203.0.113.7", "203.0.113.7/32"},
		{"IPv4-mapped folds to IPv4", "::ffff:203.0.113.7", "203.0.113.7/32"},
		{"IPv6 by its /64", "2001:db8::1", "2001:db8::/64"},
		{"IPv6 neighbour shares the /64", "2001:db8::ffff:1", "2001:db8::/64"},
		{"exempt", "10.1.2.3", ""},
	} {
		k, counted := l.key(netip.MustParseAddr(tc.addr))
		if tc.want == "" {
			if counted {
				t.Errorf("%s: key(%s) = %v, counted; want exempt", tc.name, tc.addr, k)
			}
			continue
		}
		if want := netip.MustParsePrefix(tc.want).Addr().As16(); !counted || k != want {
			t.Errorf("%s: key(%s) = %v, %v; want %s", tc.name, tc.addr, netip.AddrFrom16(k), counted, tc.want)
		}
	}
}

// TestConnLimiterExemptNow: a client ExemptNow reports is not counted,
// and the answer is asked at each connection.
func TestConnLimiterExemptNow(t *testing.T) {
	t.Parallel()
	var cdn atomic.Pointer[netip.Prefix]
	p := netip.MustParsePrefix("198.51.100.0/24")
	cdn.Store(&p)
	l := NewLimiter(LimitConfig{Max: 1, ExemptNow: func(a netip.Addr) bool { return cdn.Load().Contains(a) }})
	edge := netip.MustParseAddr("198.51.100.7")
	if _, counted := l.key(edge); counted {
		t.Error("a client ExemptNow reports is counted")
	}
	q := netip.MustParsePrefix("203.0.113.0/24")
	cdn.Store(&q)
	if _, counted := l.key(edge); !counted {
		t.Error("a client ExemptNow no longer reports is still exempt")
	}
}

func TestConnLimiterCounts(t *testing.T) {
	t.Parallel()
	l := NewLimiter(LimitConfig{Max: 2})
	k := connKey(netip.MustParseAddr("203.0.113.7").As16())
	for i := range 2 {
		if !l.acquire(k) {
			t.Fatalf("acquire %d under the limit refused", i+1)
		}
	}
	if l.acquire(k) {
		t.Fatal("acquire over the limit allowed")
	}
	l.release(k)
	if !l.acquire(k) {
		t.Fatal("acquire after a release refused")
	}
	l.release(k)
	l.release(k)
	if n := len(l.open); n != 0 {
		t.Errorf("open map has %d entries after every release, want 0", n)
	}
}

// TestLimitListener: over a real loopback listener, the connection over
// the limit is closed at once and reported; closing a counted one frees
// its slot.
func TestLimitListener(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var exceeded []netip.Addr
	l := NewLimiter(LimitConfig{Max: 2, OnExceed: func(a netip.Addr) {
		mu.Lock()
		defer mu.Unlock()
		exceeded = append(exceeded, a)
	}})
	ll := Limit(ln, l)
	defer ll.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	recv := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no connection accepted")
			return nil
		}
	}
	dial()
	a := recv()
	dial()
	recv()
	over := dial()
	// The third is closed by the listener: the client reads EOF.
	over.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on the connection over the limit: %v, want EOF", err)
	}
	mu.Lock()
	got := append([]netip.Addr(nil), exceeded...)
	mu.Unlock()
	if len(got) != 1 || got[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("OnExceed got %v, want [127.0.0.1]", got)
	}
	a.Close()
	a.Close() // a second close must not free a second slot
	dial()
	recv()
	over2 := dial()
	over2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := over2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on the connection over the limit after a double close: %v, want EOF", err)
	}
}
