package listener

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
)

// The reasons a PROXY listener closes a connection, passed to
// ProxyConfig.OnRefuse (wrapped with their cause).
var (
	// ErrProxyHeaderNotAllowed: a peer outside ProxyConfig.Allowed opened
	// with a PROXY protocol signature. A client talking to the listener
	// directly has no business sending one: it is claiming another
	// address.
	ErrProxyHeaderNotAllowed = errors.New("PROXY header from a peer not allowed to send one")
	// ErrProxyHeaderMissing: an allowed peer's first bytes are not a PROXY
	// header. The balancer is not configured to send one (HAProxy's
	// send-proxy, an NLB's proxy protocol v2 attribute), or the allowed
	// prefixes cover clients that reach the listener directly.
	ErrProxyHeaderMissing = errors.New("no PROXY header from a peer that must send one")
	// ErrProxyHeaderIncomplete: an allowed peer closed the connection, or
	// sent nothing more, before a whole header arrived within
	// ProxyConfig.Timeout (a port probe, a plain TCP health check).
	ErrProxyHeaderIncomplete = errors.New("connection closed or timed out before a whole PROXY header")
	// ErrProxyHeaderInvalid: an allowed peer sent a malformed header, or
	// one for a transport the listener does not serve (UDP, UNIX).
	ErrProxyHeaderInvalid = errors.New("invalid PROXY header")
)

// DefaultProxyHeaderTimeout bounds the header read when
// ProxyConfig.Timeout is not set.
const DefaultProxyHeaderTimeout = 10 * time.Second

// proxyReadBuffer is the size of the buffer a header is read through:
// the longest v1 line (107 bytes, which must arrive in one read) and a v2
// header with a few TLVs fit; longer TLVs are read in several fills.
const proxyReadBuffer = 256

// ProxyConfig configures NewProxy.
type ProxyConfig struct {
	// Allowed lists the peers that may, and must, open every connection
	// with a PROXY protocol header, v1 or v2 (listen.proxy_protocol): the
	// load balancers in front of the listener. From anyone else a header
	// is refused.
	Allowed []netip.Prefix
	// Timeout bounds the read of the header from an allowed peer
	// (limits.read_header_timeout). Zero or less:
	// DefaultProxyHeaderTimeout.
	Timeout time.Duration
	// OnRefuse is called with the TCP peer and the reason (one of the
	// ErrProxyHeader errors, wrapped) of each connection the listener
	// closed; the connection is closed when it is called. It runs on the
	// connection's own goroutine, or on the goroutine reading from a
	// direct client's connection. nil: nothing.
	OnRefuse func(peer netip.Addr, err error)
}

// proxyListener reads the PROXY protocol header (HAProxy's
// proxy-protocol.txt, versions 1 and 2) that a load balancer sends ahead
// of each connection, so that everything above it (connection limits,
// jails, bans, the access log) sees the client the header names instead
// of the balancer:
//
//   - from an allowed peer the header is required, and read on the
//     connection's own goroutine, bounded by Timeout, so a silent
//     connection holds up no other; the connection is handed to Accept
//     only once its header is read, with RemoteAddr the header's source.
//     A LOCAL header (the balancer's own health check) keeps the
//     balancer as the peer, and Limit does not count it.
//   - a connection from anyone else is handed to Accept at once, its
//     first bytes checked on the first Read by the reader's goroutine: a
//     PROXY signature closes it (ErrProxyHeaderNotAllowed); anything else
//     passes unchanged. The reader's deadlines (net/http's header
//     timeout, the TLS handshake's) bound that read.
//
// Headers are parsed by github.com/pires/go-proxyproto, which is fuzzed
// and handles v2 TLVs; TLVs are read past and not used.
type proxyListener struct {
	inner net.Listener
	cfg   ProxyConfig

	conns     chan net.Conn
	errs      chan error // accept errors, for Accept to return
	done      chan struct{}
	closeOnce sync.Once
	// readers recycles the header read buffers: a connection holds one
	// only until it has read the bytes that came with its header.
	readers sync.Pool
}

// NewProxy returns a listener that accepts from inner and takes each
// connection's client address from its PROXY header as cfg says (see
// proxyListener). Put it right above the socket, below Limit, so that
// connections are counted by the client the header names. Header reads
// in progress when it is closed end within cfg.Timeout.
func NewProxy(inner net.Listener, cfg ProxyConfig) net.Listener {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultProxyHeaderTimeout
	}
	l := &proxyListener{
		inner: inner, cfg: cfg,
		conns: make(chan net.Conn), errs: make(chan error), done: make(chan struct{}),
	}
	go l.acceptLoop()
	return l
}

func (l *proxyListener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			// The server decides whether to retry (net/http backs off on
			// temporary errors); a closed listener ends the loop.
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		peer := tcpPeer(c)
		if !l.allowed(peer) {
			l.deliver(&sniffConn{Conn: c, peer: peer, onRefuse: l.cfg.OnRefuse})
			continue
		}
		go l.readHeader(c, peer)
	}
}

// tcpPeer returns c's peer address, unmapped; the zero Addr for a
// connection that is not TCP.
func tcpPeer(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

func (l *proxyListener) allowed(peer netip.Addr) bool {
	if !peer.IsValid() {
		return false
	}
	for _, p := range l.cfg.Allowed {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// deliver hands c to Accept, or closes it if the listener is closed
// first.
func (l *proxyListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		// Closing a connection nobody will serve: its error says nothing.
		_ = c.Close()
	}
}

// readHeader reads the header an allowed peer must send and delivers the
// connection, or closes it and tells OnRefuse why.
func (l *proxyListener) readHeader(c net.Conn, peer netip.Addr) {
	pc, err := readProxyHeader(c, l.cfg.Timeout, &l.readers)
	if err != nil {
		// Closing a refused connection: its error says nothing.
		_ = c.Close()
		if f := l.cfg.OnRefuse; f != nil {
			f(peer, err)
		}
		return
	}
	l.deliver(pc)
}

// readProxyHeader reads the PROXY header at the start of c within timeout
// and returns c as the header's client, its read deadline cleared. Its
// read buffer comes from readers, and goes back there once drained.
func readProxyHeader(c net.Conn, timeout time.Duration, readers *sync.Pool) (_ *proxyConn, err error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProxyHeaderIncomplete, err)
	}
	br, _ := readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(c, proxyReadBuffer)
	} else {
		br.Reset(c)
	}
	pc := &proxyConn{Conn: c, br: br, readers: readers}
	defer func() {
		if err != nil || pc.br.Buffered() == 0 {
			pc.release() // nothing read past the header, or no connection
		}
	}()
	if err := bufferV1Line(br); err != nil {
		return nil, classifyHeaderError(err, br.Buffered())
	}
	h, err := proxyproto.Read(br)
	if err != nil {
		return nil, classifyHeaderError(err, br.Buffered())
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProxyHeaderIncomplete, err)
	}
	switch {
	case h.Command.IsLocal():
		// The balancer's own connection (a health check; v1's UNKNOWN
		// too): the spec says to use the real endpoints.
		pc.remote, pc.local = c.RemoteAddr(), true
	case h.TransportProtocol == proxyproto.TCPv4 || h.TransportProtocol == proxyproto.TCPv6:
		src, ok := h.SourceAddr.(*net.TCPAddr)
		if !ok || !src.AddrPort().Addr().IsValid() {
			return nil, fmt.Errorf("%w: source address %v", ErrProxyHeaderInvalid, h.SourceAddr)
		}
		pc.remote = src
	default:
		return nil, fmt.Errorf("%w: transport %#x is not TCP", ErrProxyHeaderInvalid, byte(h.TransportProtocol))
	}
	return pc, nil
}

// maxV1Header is the longest v1 header, CRLF included (the spec's 107).
const maxV1Header = 107

// bufferV1Line waits until a v1 header's whole line is in br (or
// maxV1Header bytes are): the v1 parser reads only what is buffered, so
// a header split over several reads (a slow balancer, a split segment)
// would be refused as malformed. It returns the read error (a timeout,
// EOF) of a header that stalls or ends half-way. What does not start
// like a v1 header is left to proxyproto.Read.
func bufferV1Line(br *bufio.Reader) error {
	b, err := br.Peek(len("PROXY"))
	if err != nil {
		if len(b) > 0 && !strings.HasPrefix("PROXY", string(b)) {
			return nil // not v1: proxyproto.Read judges it
		}
		return err
	}
	if string(b) != "PROXY" {
		return nil
	}
	for n := len(b) + 1; n <= maxV1Header; n++ {
		b, err := br.Peek(n)
		if err != nil {
			return err
		}
		if b[n-1] == '\n' {
			return nil
		}
	}
	return nil // too long: proxyproto.Read refuses it
}

// classifyHeaderError maps an error of proxyproto.Read, after buffered
// bytes were read, to one of the ErrProxyHeader reasons.
func classifyHeaderError(err error, buffered int) error {
	var opErr *net.OpError
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		if buffered == 0 {
			// Read reports a connection closed before its first byte as
			// "no signature".
			return fmt.Errorf("%w: closed before any byte", ErrProxyHeaderIncomplete)
		}
		return ErrProxyHeaderMissing
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &opErr):
		return fmt.Errorf("%w: %w", ErrProxyHeaderIncomplete, err)
	default:
		return fmt.Errorf("%w: %w", ErrProxyHeaderInvalid, err)
	}
}

var _ net.Listener = (*proxyListener)(nil)

// Accept returns the next connection: a direct client's at once, an
// allowed peer's once its header is read.
func (l *proxyListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections waiting to be accepted are closed.
func (l *proxyListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

func (l *proxyListener) Addr() net.Addr { return l.inner.Addr() }

// proxyConn is a connection whose PROXY header was read: RemoteAddr is
// the client the header names. Reads and writes go to the underlying
// connection, after the bytes read past the header.
type proxyConn struct {
	net.Conn
	// br holds what was read past the header; nil once drained, when it
	// goes back to readers.
	br      *bufio.Reader
	readers *sync.Pool
	remote  net.Addr
	// local is a LOCAL header: the peer is the balancer itself, which
	// Limit does not count as a client.
	local bool
}

var _ net.Conn = (*proxyConn)(nil)

func (c *proxyConn) Read(p []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			n, err := c.br.Read(p)
			if c.br.Buffered() == 0 {
				c.release()
			}
			return n, err
		}
		c.release()
	}
	return c.Conn.Read(p)
}

// release gives the read buffer back, dropping its reference to the
// connection.
func (c *proxyConn) release() {
	c.br.Reset(nil)
	c.readers.Put(c.br)
	c.br = nil
}

// RemoteAddr returns the client the header names (the peer itself for a
// LOCAL header).
func (c *proxyConn) RemoteAddr() net.Addr { return c.remote }

// CloseWrite half-closes the connection; net/http looks for it to let an
// error answer reach the client before the close.
func (c *proxyConn) CloseWrite() error { return closeWrite(c.Conn) }

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// sigLen is the longest PROXY signature (v2's): enough bytes to tell
// whether a connection opens with one.
const sigLen = 12

// sniffConn is a connection from a peer that may not send a PROXY header.
// Its first Read reads up to sigLen bytes, as few as tell a PROXY
// signature from anything else (a TLS record, an HTTP method differ from
// both within their first bytes), and closes the connection on a
// signature. It costs no allocation beyond itself; like any net.Conn it
// is read from one goroutine at a time.
type sniffConn struct {
	net.Conn
	peer     netip.Addr
	onRefuse func(peer netip.Addr, err error)

	head    [sigLen]byte
	n, off  int  // bytes of head read, and returned to the reader
	sniffed bool // head tells: no signature
	refused bool // head held a signature; the connection is closed
}

var _ net.Conn = (*sniffConn)(nil)

func (c *sniffConn) Read(p []byte) (int, error) {
	if !c.sniffed {
		if err := c.sniff(); err != nil {
			return 0, err
		}
	}
	if c.off < c.n {
		k := copy(p, c.head[c.off:c.n])
		c.off += k
		return k, nil
	}
	return c.Conn.Read(p)
}

// sniff reads the first bytes until they tell; on a signature it closes
// the connection and reports it, once.
func (c *sniffConn) sniff() error {
	if c.refused {
		return ErrProxyHeaderNotAllowed
	}
	for {
		m, err := c.Conn.Read(c.head[c.n:])
		c.n += m
		switch proxySignature(c.head[:c.n]) {
		case sigFound:
			c.refused = true
			// Closing the connection the refusal ends: its error says
			// nothing.
			_ = c.Conn.Close()
			if c.onRefuse != nil {
				c.onRefuse(c.peer, ErrProxyHeaderNotAllowed)
			}
			return ErrProxyHeaderNotAllowed
		case sigNone:
			c.sniffed = true
			return nil
		}
		if err != nil {
			if c.n == 0 {
				return err // nothing read yet: sniff again on the next Read
			}
			// Too short to tell before the error: hand over what was
			// read; the next Read meets the error again.
			c.sniffed = true
			return nil
		}
	}
}

// CloseWrite half-closes the connection; see proxyConn.CloseWrite.
func (c *sniffConn) CloseWrite() error { return closeWrite(c.Conn) }

// sigMatch is what the first bytes of a connection say.
type sigMatch int

const (
	sigMore  sigMatch = iota // a prefix of a signature: read more
	sigFound                 // a whole v1 or v2 signature
	sigNone                  // neither signature can follow
)

// proxySignature tells whether b opens with a PROXY v1 signature
// ("PROXY") or v2 signature (twelve bytes starting "\r\n\r\n\x00"), the
// ones proxyproto.Read looks for.
func proxySignature(b []byte) sigMatch {
	more := false
	for _, sig := range [...][]byte{proxyproto.SIGV1, proxyproto.SIGV2} {
		switch {
		case len(b) >= len(sig) && bytes.Equal(b[:len(sig)], sig):
			return sigFound
		case len(b) < len(sig) && bytes.Equal(b, sig[:len(b)]):
			more = true
		}
	}
	if more {
		return sigMore
	}
	return sigNone
}
