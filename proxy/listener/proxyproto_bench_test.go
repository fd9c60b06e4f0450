package listener

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// memConn is a net.Conn reading from a byte slice: the header read's cost
// without the socket's.
type memConn struct {
	net.Conn
	r bytes.Reader
}

func (c *memConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c *memConn) SetReadDeadline(time.Time) error    { return nil }
func (c *memConn) RemoteAddr() net.Addr               { return balancerTCPAddr }
func (c *memConn) Close() error                       { return nil }
func (c *memConn) Write(p []byte) (int, error)        { return len(p), nil }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

var balancerTCPAddr = &net.TCPAddr{IP: net.ParseIP(balancerIP), Port: 40000}

// BenchmarkProxyHeader is the cost per connection of reading its PROXY
// header (allowed peer) or of checking that it has none (direct client),
// then reading the request after it.
func BenchmarkProxyHeader(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{"v1", header(b, 1, "203.0.113.7:40000", "198.51.100.1:443")},
		{"v2", header(b, 2, "203.0.113.7:40000", "198.51.100.1:443")},
		{"v2-ipv6", header(b, 2, "[2001:db8::7]:40000", "[2001:db8::1]:443")},
		{"v2-tlv-nlb", headerTLV(b, "203.0.113.7:40000", "198.51.100.1:443")},
	} {
		in := append(bc.in, request...)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			c := &memConn{}
			buf := make([]byte, 4096)
			var readers sync.Pool
			for b.Loop() {
				c.r.Reset(in)
				pc, err := readProxyHeader(c, time.Second, &readers)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.ReadFull(pc, buf[:len(request)]); err != nil || n != len(request) {
					b.Fatal(n, err)
				}
			}
		})
	}
	b.Run("direct-sniff", func(b *testing.B) {
		b.ReportAllocs()
		in := []byte(request)
		mc := &memConn{}
		buf := make([]byte, 4096)
		for b.Loop() {
			mc.r.Reset(in)
			sc := &sniffConn{Conn: mc}
			if n, err := io.ReadFull(sc, buf[:len(request)]); err != nil || n != len(request) {
				b.Fatal(n, err)
			}
		}
	})
}

// BenchmarkProxyAccept is a whole connection over loopback — dial, write,
// accept, read the request, close — on a bare listener and behind
// NewProxy from an allowed balancer (v2 header) and from a direct client
// (sniffed): the header's share of a connection's cost.
func BenchmarkProxyAccept(b *testing.B) {
	hdr := header(b, 2, "203.0.113.7:40000", "198.51.100.1:443")
	for _, bc := range []struct {
		name  string
		proxy bool
		from  string
		send  []byte
	}{
		{"bare", false, directIP, []byte(request)},
		{"proxy-v2", true, balancerIP, append(append([]byte(nil), hdr...), request...)},
		{"proxy-direct", true, directIP, []byte(request)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			var ln net.Listener = inner
			if bc.proxy {
				ln = NewProxy(inner, ProxyConfig{Allowed: []netip.Prefix{netip.MustParsePrefix(balancerIP + "/32")}})
			}
			defer ln.Close()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(bc.from)}}
			buf := make([]byte, len(request))
			b.ReportAllocs()
			for b.Loop() {
				c, err := d.Dial("tcp", inner.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(bc.send); err != nil {
					b.Fatal(err)
				}
				s, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(s, buf); err != nil {
					b.Fatal(err)
				}
				s.Close()
				c.Close()
			}
		})
	}
}
