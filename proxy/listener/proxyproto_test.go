package listener

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// Loopback addresses the tests dial from: the balancer is allowed to
// send PROXY headers, the direct client is not.
const (
	balancerIP = "127.0.0.2"
	directIP   = "127.0.0.3"
)

// proxyRefusal is one OnRefuse call.
type proxyRefusal struct {
	peer netip.Addr
	err  error
}

// proxyHarness is a NewProxy listener on 127.0.0.1 that allows
// balancerIP, with its accepted connections and refusals on channels.
type proxyHarness struct {
	ln       net.Listener
	accepted chan net.Conn
	refused  chan proxyRefusal
}

func newProxyHarness(t *testing.T, timeout time.Duration, wrap func(net.Listener) net.Listener) *proxyHarness {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &proxyHarness{accepted: make(chan net.Conn, 16), refused: make(chan proxyRefusal, 16)}
	h.ln = NewProxy(inner, ProxyConfig{
		Allowed: []netip.Prefix{netip.MustParsePrefix(balancerIP + "/32")},
		Timeout: timeout,
		OnRefuse: func(peer netip.Addr, err error) {
			h.refused <- proxyRefusal{peer, err}
		},
	})
	ln := h.ln
	if wrap != nil {
		ln = wrap(ln)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(h.accepted)
				return
			}
			h.accepted <- c
		}
	}()
	return h
}

// dial connects to the harness from the loopback address from.
func (h *proxyHarness) dial(t *testing.T, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", h.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}

func (h *proxyHarness) accept(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-h.accepted:
		t.Cleanup(func() { c.Close() })
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func (h *proxyHarness) refusal(t *testing.T) proxyRefusal {
	t.Helper()
	select {
	case r := <-h.refused:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no refusal reported")
		return proxyRefusal{}
	}
}

// header renders a PROXY header from src to dst (host:port) in version v.
func header(t testing.TB, v byte, src, dst string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(v, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// headerTLV is a v2 header with TLVs, as an AWS NLB sends (its VPC
// endpoint ID, type 0xEA) beside ALPN and authority.
func headerTLV(t testing.TB, src, dst string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	if err := h.SetTLVs([]proxyproto.TLV{
		{Type: proxyproto.PP2_TYPE_ALPN, Value: []byte("h2")},
		{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("www.example.com")},
		{Type: 0xEA, Value: append([]byte{0x01}, strings.Repeat("vpce-0123456789abcdef0", 20)...)},
	}); err != nil {
		t.Fatal(err)
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// localV2 is a v2 LOCAL header: the balancer's own health check.
var localV2 = append(append([]byte(nil), proxyproto.SIGV2...), 0x20, 0x00, 0x00, 0x00)

const request = "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"

// TestProxyHeaderFromAllowedPeer: a balancer's header, in each version,
// sets the accepted connection's RemoteAddr; the bytes after the header,
// in the same segment or not, reach the reader unchanged.
func TestProxyHeaderFromAllowedPeer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		header   []byte
		split    bool // header and request in separate writes
		wantPeer string
	}{
		{"v1 TCP4", header(t, 1, "203.0.113.7:40000", "198.51.100.1:443"), false, "203.0.113.7:40000"},
		{"v1 TCP6", header(t, 1, "[2001:db8::7]:40000", "[2001:db8::1]:443"), true, "[2001:db8::7]:40000"},
		{"v2 TCP4", header(t, 2, "203.0.113.8:40001", "198.51.100.1:80"), false, "203.0.113.8:40001"},
		{"v2 TCP6", header(t, 2, "[2001:db8::8]:40001", "[2001:db8::1]:80"), true, "[2001:db8::8]:40001"},
		{"v2 with TLVs longer than the read buffer", headerTLV(t, "203.0.113.9:40002", "198.51.100.1:443"), false, "203.0.113.9:40002"},
		{"v1 UNKNOWN keeps the balancer", []byte("PROXY UNKNOWN\r\n"), false, balancerIP},
		{"v2 LOCAL keeps the balancer", localV2, true, balancerIP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newProxyHarness(t, 10*time.Second, nil)
			c := h.dial(t, balancerIP)
			if tc.split {
				if _, err := c.Write(tc.header); err != nil {
					t.Fatal(err)
				}
				if _, err := io.WriteString(c, request); err != nil {
					t.Fatal(err)
				}
			} else if _, err := c.Write(append(append([]byte(nil), tc.header...), request...)); err != nil {
				t.Fatal(err)
			}
			s := h.accept(t)
			got := s.RemoteAddr().String()
			if tc.wantPeer == balancerIP {
				ap, err := netip.ParseAddrPort(got)
				if err != nil || ap.Addr().String() != balancerIP {
					t.Errorf("RemoteAddr() = %q, want the balancer %s", got, balancerIP)
				}
			} else if got != tc.wantPeer {
				t.Errorf("RemoteAddr() = %q, want %q", got, tc.wantPeer)
			}
			buf := make([]byte, len(request))
			if _, err := io.ReadFull(s, buf); err != nil {
				t.Fatalf("read the request after the header: %v", err)
			}
			if string(buf) != request {
				t.Errorf("read %q after the header, want %q", buf, request)
			}
			// Writes go through to the balancer.
			if _, err := io.WriteString(s, "HTTP/1.1 204 No Content\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "HTTP/1.1 204 No Content\r\n" {
				t.Errorf("balancer read %q, %v; want the answer", line, err)
			}
		})
	}
}

// TestProxyHeaderV1InPieces: a v1 header that arrives over several reads
// (a slow balancer, a split segment) is read whole, not refused.
func TestProxyHeaderV1InPieces(t *testing.T) {
	t.Parallel()
	h := newProxyHarness(t, 10*time.Second, nil)
	c := h.dial(t, balancerIP)
	for _, piece := range []string{"PRO", "XY TCP4 203.0.113.7 ", "198.51.100.1 40000 443\r", "\n" + request} {
		if _, err := io.WriteString(c, piece); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s := h.accept(t)
	if got := s.RemoteAddr().String(); got != "203.0.113.7:40000" {
		t.Errorf("RemoteAddr() = %q, want 203.0.113.7:40000", got)
	}
	buf := make([]byte, len(request))
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != request {
		t.Errorf("read %q, %v after the header, want the request", buf, err)
	}
}

// TestProxyHeaderRefused: each way a connection is closed, and the
// reason OnRefuse is told.
func TestProxyHeaderRefused(t *testing.T) {
	t.Parallel()
	udp := proxyproto.HeaderProxyFromAddrs(2, &net.UDPAddr{IP: net.ParseIP("203.0.113.7"), Port: 53},
		&net.UDPAddr{IP: net.ParseIP("198.51.100.1"), Port: 53})
	udpHeader, err := udp.Format()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		from   string
		writes []string // each written in turn; then the client waits
		close  bool     // the client closes its side after writing
		want   error
	}{
		{name: "allowed peer without a header", from: balancerIP, writes: []string{request}, want: ErrProxyHeaderMissing},
		{name: "allowed peer sending a TLS ClientHello", from: balancerIP, writes: []string{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"}, want: ErrProxyHeaderMissing},
		{name: "allowed peer silent until the timeout", from: balancerIP, want: ErrProxyHeaderIncomplete},
		{name: "allowed peer closing at once", from: balancerIP, close: true, want: ErrProxyHeaderIncomplete},
		{name: "allowed peer stalling inside a v2 header", from: balancerIP, writes: []string{string(header(t, 2, "203.0.113.7:1", "198.51.100.1:2")[:20])}, want: ErrProxyHeaderIncomplete},
		{name: "allowed peer stalling inside a v1 header", from: balancerIP, writes: []string{"PROXY TCP4 203.0.113.7"}, want: ErrProxyHeaderIncomplete},
		{name: "allowed peer with a malformed v1 header", from: balancerIP, writes: []string{"PROXY TCP4 203.0.113.7 nonsense\r\n"}, want: ErrProxyHeaderInvalid},
		{name: "allowed peer with a v1 header too long", from: balancerIP, writes: []string{"PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n"}, want: ErrProxyHeaderInvalid},
		{name: "allowed peer with a UDP header", from: balancerIP, writes: []string{string(udpHeader)}, want: ErrProxyHeaderInvalid},
		{name: "direct client sending v1", from: directIP, writes: []string{string(header(t, 1, "203.0.113.7:1", "198.51.100.1:2")) + request}, want: ErrProxyHeaderNotAllowed},
		{name: "direct client sending v2", from: directIP, writes: []string{string(header(t, 2, "203.0.113.7:1", "198.51.100.1:2")) + request}, want: ErrProxyHeaderNotAllowed},
		{name: "direct client sending v2 a byte at a time", from: directIP, writes: strings.Split(string(proxyproto.SIGV2), ""), want: ErrProxyHeaderNotAllowed},
		{name: "direct client sending the v1 signature split", from: directIP, writes: []string{"PR", "OXY"}, want: ErrProxyHeaderNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newProxyHarness(t, 200*time.Millisecond, nil)
			c := h.dial(t, tc.from)
			for _, w := range tc.writes {
				if _, err := io.WriteString(c, w); err != nil {
					t.Fatal(err)
				}
			}
			if tc.close {
				c.Close()
			}
			if tc.from == directIP {
				// A direct client's connection is accepted at once; its
				// first read finds the signature.
				s := h.accept(t)
				n, err := s.Read(make([]byte, 64))
				if !errors.Is(err, ErrProxyHeaderNotAllowed) {
					t.Errorf("server Read = %d, %v; want %v", n, err, ErrProxyHeaderNotAllowed)
				}
				if _, err := s.Read(make([]byte, 64)); !errors.Is(err, ErrProxyHeaderNotAllowed) {
					t.Errorf("second server Read: %v, want %v again", err, ErrProxyHeaderNotAllowed)
				}
			}
			r := h.refusal(t)
			if !errors.Is(r.err, tc.want) {
				t.Errorf("OnRefuse(%s, %v), want %v", r.peer, r.err, tc.want)
			}
			if r.peer.String() != tc.from {
				t.Errorf("OnRefuse peer = %s, want the TCP peer %s", r.peer, tc.from)
			}
			if !tc.close {
				// The listener closed the connection: the client reads
				// EOF, or a reset when bytes it sent were left unread.
				if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("client read after the refusal: %v, want EOF or a reset", err)
				}
			}
			select {
			case s := <-h.accepted:
				if tc.from != directIP {
					t.Errorf("refused connection from %s accepted", s.RemoteAddr())
				}
			default:
			}
		})
	}
}

// TestProxyDirectClientPasses: a direct client's bytes reach the reader
// unchanged, however they are split, and its peer is its own address.
func TestProxyDirectClientPasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		writes []string
	}{
		{"HTTP request", []string{request}},
		{"method sharing a prefix with the v1 signature", []string{"PRO", "PFIND / HTTP/1.1\r\n\r\n"}},
		{"leading CRLF, as RFC 9112 lets a server skip", []string{"\r\n", "\r", "\nGET / HTTP/1.1\r\n\r\n"}},
		{"TLS ClientHello", []string{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + strings.Repeat("\x00", 32)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newProxyHarness(t, 10*time.Second, nil)
			c := h.dial(t, directIP)
			s := h.accept(t)
			want := strings.Join(tc.writes, "")
			go func() {
				for _, w := range tc.writes {
					if _, err := io.WriteString(c, w); err != nil {
						return
					}
				}
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(s)
			if err != nil || string(got) != want {
				t.Errorf("server read %q, %v; want %q", got, err, want)
			}
			if ap := netip.MustParseAddrPort(s.RemoteAddr().String()); ap.Addr().String() != directIP {
				t.Errorf("RemoteAddr() = %s, want the client's own %s", ap, directIP)
			}
			select {
			case r := <-h.refused:
				t.Errorf("OnRefuse(%s, %v) for a client that sent no header", r.peer, r.err)
			default:
			}
		})
	}
}

// TestProxySilentPeerHoldsNoOther: a balancer connection that sends
// nothing does not keep the next one, nor a direct client's, from being
// accepted.
func TestProxySilentPeerHoldsNoOther(t *testing.T) {
	t.Parallel()
	h := newProxyHarness(t, time.Minute, nil)
	h.dial(t, balancerIP) // silent
	c := h.dial(t, balancerIP)
	if _, err := c.Write(header(t, 2, "203.0.113.7:1234", "198.51.100.1:80")); err != nil {
		t.Fatal(err)
	}
	if got := h.accept(t).RemoteAddr().String(); got != "203.0.113.7:1234" {
		t.Errorf("accepted %s, want the connection with a header (203.0.113.7:1234)", got)
	}
	h.dial(t, directIP)
	if ap := netip.MustParseAddrPort(h.accept(t).RemoteAddr().String()); ap.Addr().String() != directIP {
		t.Errorf("accepted %s, want the direct client", ap)
	}
}

// TestProxyThenLimit: with Limit above NewProxy, connections are counted
// by the client the header names, not by the balancer, and a LOCAL health
// check is not counted at all.
func TestProxyThenLimit(t *testing.T) {
	t.Parallel()
	exceeded := make(chan netip.Addr, 8)
	l := NewLimiter(LimitConfig{Max: 1, OnExceed: func(a netip.Addr) { exceeded <- a }})
	h := newProxyHarness(t, 10*time.Second, func(ln net.Listener) net.Listener { return Limit(ln, l) })
	send := func(hdr []byte) net.Conn {
		t.Helper()
		c := h.dial(t, balancerIP)
		if _, err := c.Write(hdr); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Two clients through one balancer: both served under Max 1.
	send(header(t, 1, "203.0.113.7:1", "198.51.100.1:80"))
	h.accept(t)
	send(header(t, 2, "203.0.113.8:1", "198.51.100.1:80"))
	h.accept(t)
	// Health checks: the balancer's own connections, never counted.
	for range 3 {
		send(localV2)
		h.accept(t)
	}
	// A second connection of 203.0.113.7 is over its limit.
	over := send(header(t, 2, "203.0.113.7:2", "198.51.100.1:80"))
	if _, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on the connection over the limit: %v, want EOF", err)
	}
	// OnExceed runs just after the close the client saw.
	select {
	case a := <-exceeded:
		if a != netip.MustParseAddr("203.0.113.7") {
			t.Errorf("OnExceed(%s), want 203.0.113.7", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnExceed not called")
	}
	if len(exceeded) != 0 {
		t.Errorf("OnExceed called %d more times, want once", len(exceeded))
	}
}

// TestProxyListenerClose: Accept returns net.ErrClosed once the listener
// is closed.
func TestProxyListenerClose(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewProxy(inner, ProxyConfig{})
	errc := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		errc <- err
	}()
	ln.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still blocked after Close")
	}
}

func TestProxySignature(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want sigMatch
	}{
		{"", sigMore},
		{"P", sigMore},
		{"PROX", sigMore},
		{"PROXY", sigFound},
		{"PROXY TCP4 ", sigFound},
		{"PROPFIND", sigNone},
		{"GET ", sigNone},
		{"\r\n\r\n\x00\r\nQUI", sigMore},
		{"\r\n\r\n\x00\r\nQUIT\n", sigFound},
		{"\r\nGET", sigNone},
		{"\x16\x03\x01", sigNone},
	} {
		if got := proxySignature([]byte(tc.in)); got != tc.want {
			t.Errorf("proxySignature(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// FuzzProxySignature checks proxySignature against the library's own
// detection (a differential check: a direct client is refused exactly
// when proxyproto.Read would have taken its bytes for a header), and that
// a sniffConn hands every byte of a connection without a signature to
// its reader unchanged, however the bytes are split.
func FuzzProxySignature(f *testing.F) {
	// Requests and TLS records: no signature.
	f.Add([]byte(request), uint8(3))
	f.Add([]byte("PROPFIND / HTTP/1.1\r\n\r\n"), uint8(1))
	f.Add([]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), uint8(5))
	// Headers of each version.
	f.Add(header(f, 1, "203.0.113.7:1", "198.51.100.1:2"), uint8(2))
	f.Add(header(f, 2, "[2001:db8::7]:1", "[2001:db8::1]:2"), uint8(7))
	f.Add(localV2, uint8(1))
	// Prefixes of a signature, then something else.
	f.Add([]byte("PROX"), uint8(1))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIX"), uint8(4))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		got := proxySignature(in)
		_, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(in)))
		libSig := !errors.Is(err, proxyproto.ErrNoProxyProtocol)
		switch {
		case got == sigFound && !libSig:
			t.Fatalf("proxySignature(%q) found a signature; proxyproto.Read: %v", in, err)
		case got != sigFound && libSig:
			t.Fatalf("proxySignature(%q) = %d; proxyproto.Read took it for a header: %v", in, got, err)
		case got == sigMore && len(in) >= sigLen:
			t.Fatalf("proxySignature(%q) = more after %d bytes", in, len(in))
		}

		var refused []error
		step := max(int(chunk), 1)
		src := &chunkConn{step: step}
		src.r.Reset(in)
		sc := &sniffConn{Conn: src, onRefuse: func(_ netip.Addr, err error) { refused = append(refused, err) }}
		out, err := io.ReadAll(sc)
		if got == sigFound {
			if !errors.Is(err, ErrProxyHeaderNotAllowed) || len(refused) != 1 {
				t.Fatalf("sniffConn over %q: read %q, %v, refusals %v; want one refusal", in, out, err, refused)
			}
			return
		}
		if err != nil || !bytes.Equal(out, in) || len(refused) != 0 {
			t.Fatalf("sniffConn over %q in chunks of %d: read %q, %v, refusals %v; want the input", in, step, out, err, refused)
		}
	})
}

// chunkConn is a memConn whose reads return at most step bytes, as a
// client's segments arrive.
type chunkConn struct {
	memConn
	step int
}

func (c *chunkConn) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.step)]) }

// FuzzReadProxyHeader: whatever an allowed peer sends, the header read
// either fails with one of the listener's reasons or yields a client
// address and hands on exactly the bytes after the header.
func FuzzReadProxyHeader(f *testing.F) {
	// Headers of each version, with a request after them.
	f.Add(append(header(f, 1, "203.0.113.7:1", "198.51.100.1:2"), request...))
	f.Add(append(header(f, 2, "[2001:db8::7]:1", "[2001:db8::1]:2"), request...))
	f.Add(append(headerTLV(f, "203.0.113.7:1", "198.51.100.1:2"), request...))
	f.Add(append(append([]byte(nil), localV2...), request...))
	f.Add([]byte("PROXY UNKNOWN\r\n" + request))
	// No header, and malformed ones.
	f.Add([]byte(request))
	f.Add([]byte("PROXY TCP4 203.0.113.7 198.51.100.1 1 65536\r\n"))
	f.Add([]byte{})
	var readers sync.Pool // shared across inputs, as across connections
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &memConn{}
		c.r.Reset(in)
		pc, err := readProxyHeader(c, time.Second, &readers)
		if err != nil {
			if !errors.Is(err, ErrProxyHeaderMissing) && !errors.Is(err, ErrProxyHeaderIncomplete) && !errors.Is(err, ErrProxyHeaderInvalid) {
				t.Fatalf("readProxyHeader(%q) = %v, not one of the listener's reasons", in, err)
			}
			return
		}
		ap, perr := netip.ParseAddrPort(pc.RemoteAddr().String())
		if perr != nil || !ap.Addr().IsValid() {
			t.Fatalf("readProxyHeader(%q): RemoteAddr %q is not an address: %v", in, pc.RemoteAddr(), perr)
		}
		rest, err := io.ReadAll(pc)
		if err != nil || !bytes.HasSuffix(in, rest) || len(rest) == len(in) {
			t.Fatalf("readProxyHeader(%q): then read %q, %v; want the bytes after the header", in, rest, err)
		}
	})
}
