package listener

import (
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// LimitConfig configures a Limiter.
type LimitConfig struct {
	// Max is the most connections one client may hold open at once
	// (limits.conns_per_ip). Zero or less: no limit.
	Max int
	// IPv6Prefix keys IPv6 clients by this prefix length (ipv6_prefix):
	// one host owns the whole /64. 0 means 128.
	IPv6Prefix int
	// Exempt lists clients never counted: the config's allow list and the
	// trusted proxies, whose connections carry many clients.
	Exempt []netip.Prefix
	// ExemptNow, when set, reports further clients never counted, asked
	// at each connection: the trusted proxies as the current config and
	// its refreshed CDN ranges have them. It must be safe for concurrent
	// use and fast. nil: Exempt only.
	ExemptNow func(netip.Addr) bool
	// OnExceed is called, outside any lock, with the client whose
	// connection was closed for being over Max; the proxy reports it to
	// the flood jail. nil: nothing.
	OnExceed func(client netip.Addr)
}

// Limiter counts open connections per client address. Its map only
// holds clients with connections open, so it is bounded by the open
// file limit. It is safe for concurrent use.
type Limiter struct {
	cfg  LimitConfig
	mu   sync.Mutex
	open map[connKey]int32
}

// connKey is a client as a Limiter counts it: the 16-byte form of its
// address, an IPv6 address masked to the configured prefix. An IPv4
// address is kept IPv4-mapped, and key unmaps every IPv4-mapped address
// it is given, so no IPv6 prefix shares an IPv4 client's key. Half the
// size of a netip.Prefix (which carries a zone pointer): the map entry
// and each connection's copy are what a client costs.
type connKey [16]byte

// NewLimiter returns a limiter counting connections by cfg. Wrap each
// public listener with Limit(ln, l) below anything else but NewProxy, TLS
// included, so a connection over the limit costs no handshake and is
// counted by the client a PROXY header names; listeners sharing l share
// the count.
func NewLimiter(cfg LimitConfig) *Limiter {
	if cfg.IPv6Prefix <= 0 || cfg.IPv6Prefix > 128 {
		cfg.IPv6Prefix = 128
	}
	return &Limiter{cfg: cfg, open: map[connKey]int32{}}
}

// key returns the counting key of a, and false for an exempt client
// or an invalid address.
func (l *Limiter) key(a netip.Addr) (connKey, bool) {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return connKey{}, false
	}
	for _, p := range l.cfg.Exempt {
		if p.Contains(a) {
			return connKey{}, false
		}
	}
	if l.cfg.ExemptNow != nil && l.cfg.ExemptNow(a) {
		return connKey{}, false
	}
	if a.Is6() {
		p, err := a.Prefix(l.cfg.IPv6Prefix)
		if err != nil {
			return connKey{}, false
		}
		a = p.Addr()
	}
	return a.As16(), true
}

// acquire counts a connection of k; it reports false, counting nothing,
// when k is at the limit.
func (l *Limiter) acquire(k connKey) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.open[k]
	if l.cfg.Max > 0 && int(n) >= l.cfg.Max || n == math.MaxInt32 {
		return false
	}
	l.open[k] = n + 1
	return true
}

func (l *Limiter) release(k connKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.open[k]; n > 1 {
		l.open[k] = n - 1
	} else {
		delete(l.open, k)
	}
}

// limitListener closes, right after accepting, each connection that would
// take its client over the limit; the others are counted until closed.
type limitListener struct {
	net.Listener
	l *Limiter
}

// Limit wraps ln with the limiter l.
func Limit(ln net.Listener, l *Limiter) net.Listener {
	return &limitListener{Listener: ln, l: l}
}

// Accept returns the next connection within the limit. A connection over
// it is closed without a byte read or written: the client learns nothing,
// and it costs one accept and one close.
func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if pc, ok := c.(*proxyConn); ok && pc.local {
			return c, nil // a balancer's own connection (NewProxy): not a client
		}
		ta, ok := c.RemoteAddr().(*net.TCPAddr)
		if !ok {
			return c, nil // not a TCP connection: nothing to count
		}
		ap := ta.AddrPort()
		k, counted := ll.l.key(ap.Addr())
		if !counted {
			return c, nil
		}
		if !ll.l.acquire(k) {
			// Closing a just-accepted connection: its error says nothing.
			_ = c.Close()
			if f := ll.l.cfg.OnExceed; f != nil {
				f(ap.Addr().Unmap())
			}
			continue
		}
		return &limitedConn{Conn: c, l: ll.l, key: k}, nil
	}
}

var _ net.Listener = (*limitListener)(nil)

// limitedConn gives its client's slot back when closed, once.
type limitedConn struct {
	net.Conn
	l      *Limiter
	key    connKey
	closed atomic.Bool
}

var _ net.Conn = (*limitedConn)(nil)

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.key)
	}
	return err
}

// CloseWrite half-closes the connection; net/http looks for it to let an
// error answer reach the client before the close.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
