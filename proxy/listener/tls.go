package listener

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// ACMETLSProtocol is the ALPN protocol of the TLS-ALPN-01 challenge
// (RFC 8737 §6.2).
const ACMETLSProtocol = "acme-tls/1"

// tlsListener terminates TLS itself, so that HTTP/1.1 over TLS passes the
// same framing guard (framing.go) as plain HTTP: net/http only speaks
// HTTP/2 on connections it handshakes itself, and a guard cannot wrap a
// *tls.Conn's plaintext from outside. Each accepted connection is
// handshaken in its own goroutine (bounded by readHeaderTimeout); then
//
//   - h2 is handed to the server as the *tls.Conn itself, so net/http
//     serves it as HTTP/2 (which refuses bad framing itself),
//   - acme-tls/1 (a TLS-ALPN-01 validation) is closed: the handshake was
//     the answer,
//   - anything else is HTTP/1.x: wrapped in a framing guard and handed to
//     the HTTP/1 server through Accept, carrying its TLS state, which
//     WithTLSState puts back on each request as r.TLS.
type tlsListener struct {
	inner   net.Listener
	cfg     *tls.Config
	timeout time.Duration
	maxHead int
	log     *slog.Logger
	// refused is told of each HTTP/1 request the framing guard refuses.
	refused func(peer net.Addr, reason string)

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

// NewTLS returns a listener that accepts from inner, terminates TLS with
// cfg and hands HTTP/1.x connections, behind the framing guard, to an
// http.Server (see tlsListener). readHeaderTimeout bounds each handshake;
// maxHeaderBytes and refused are as for Guard. The server must use
// ConnContext and WithTLSState so its requests carry r.TLS.
func NewTLS(inner net.Listener, cfg *tls.Config, readHeaderTimeout time.Duration, maxHeaderBytes int,
	refused func(peer net.Addr, reason string), log *slog.Logger) net.Listener {
	l := &tlsListener{
		inner: inner, cfg: cfg, timeout: readHeaderTimeout, maxHead: maxHeaderBytes, refused: refused, log: log,
		conns: make(chan net.Conn), done: make(chan struct{}),
	}
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			l.Close()
			return
		}
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.log.Debug("TLS handshake failed", "peer", c.RemoteAddr().String(), "error", err)
		tc.Close()
		return
	}
	var conn net.Conn = tc
	switch st := tc.ConnectionState(); st.NegotiatedProtocol {
	case "h2":
	case ACMETLSProtocol:
		tc.Close()
		return
	default:
		g := newFramingGuard(tc, l.maxHead, onRefusal(l.refused, c.RemoteAddr()))
		conn = &tlsPlainConn{framingGuard: g, state: st}
	}
	select {
	case l.conns <- conn:
	case <-l.done:
		tc.Close()
	}
}

var _ net.Listener = (*tlsListener)(nil)

// Accept returns the next handshaken HTTP/1.x connection.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections being handshaken are closed.
func (l *tlsListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

func (l *tlsListener) Addr() net.Addr { return l.inner.Addr() }

// tlsPlainConn is an HTTP/1.x connection whose TLS gatehouse terminated.
type tlsPlainConn struct {
	*framingGuard
	state tls.ConnectionState
}

type tlsStateKey struct{}

// ConnContext records a connection's TLS state in its context; it is
// the http.Server's ConnContext behind a NewTLS listener.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tlsPlainConn); ok {
		return context.WithValue(ctx, tlsStateKey{}, &tc.state)
	}
	return ctx
}

// WithTLSState sets r.TLS on requests from connections whose TLS gatehouse
// terminated, as net/http does on its own TLS connections.
func WithTLSState(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
				r.TLS = st
			}
		}
		next.ServeHTTP(w, r)
	})
}
