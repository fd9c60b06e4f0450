package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/middleware"
)

// What became of a request body, as clientBody saw it.
const (
	bodyReading   uint32 = iota // not read to its end (yet)
	bodyDone                    // read to EOF
	bodyTooLarge                // over max_body: answered 413
	bodyStalled                 // no byte within body_read_timeout: 408
	bodyMalformed               // bad framing, or cut short: 400
)

// clientBody wraps every request body the gateway forwards.
// It gives each Read body_read_timeout to return — the time allowed
// between two successful reads, nginx's client_body_timeout — through
// the connection's read deadline (the writer's SetReadDeadline, which
// HTTP/1 applies to the connection and HTTP/2 to the stream), and it records
// how the body ended, so the route can answer a stalled body 408 and a
// malformed one 400, and close the client connection in both cases.
//
// Its errors other than EOF are *clientBodyError: they reach proxyError
// wrapped in the transport's, and the transport, failing to write the
// body, closes the upstream connection before the request is complete.
//
// Read may be called from the transport's goroutine while the handler's
// reads state; state is atomic. It is only built for a request with a
// body, so bodiless requests cost nothing.
type clientBody struct {
	// The request's context, which clientBody extends with itself
	// (bodyOf): one allocation serves as body and context.
	context.Context
	rc io.ReadCloser
	// dl sets the connection's (HTTP/1) or stream's (HTTP/2) read
	// deadline; nil when the writer has none (never in our servers).
	dl      readDeadliner
	timeout time.Duration // zero: no deadline (only in unit tests)
	state   atomic.Uint32
	// reading is held for the length of each Read, so settle can wait
	// for a read in flight to return and set state.
	reading sync.Mutex
	// answered is set, on the handler's goroutine, once the failure has
	// been answered (408 or 400 with the connection closed).
	answered bool
}

// newClientBody wraps r's body. Install it as both r.Body and r's
// context.
var _ io.ReadCloser = (*clientBody)(nil)

func newClientBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) *clientBody {
	b := &clientBody{Context: r.Context(), rc: r.Body, timeout: timeout, dl: deadlinerOf(w)}
	if b.dl == nil {
		b.timeout = 0
	}
	return b
}

// readDeadliner is what http.ResponseController.SetReadDeadline looks
// for.
type readDeadliner interface{ SetReadDeadline(time.Time) error }

// deadlinerOf finds w's read deadline through its Unwrap chain, as
// http.ResponseController does, without allocating a controller per
// request.
func deadlinerOf(w http.ResponseWriter) readDeadliner {
	for {
		switch t := w.(type) {
		case readDeadliner:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}

type bodyKey struct{}

// Value returns b itself for bodyOf.
func (b *clientBody) Value(key any) any {
	if key == (bodyKey{}) {
		return b
	}
	return b.Context.Value(key)
}

// bodyOf returns the clientBody of r, or of the request r was cloned
// from; nil for a request without a body.
func bodyOf(r *http.Request) *clientBody {
	b, _ := r.Context().Value(bodyKey{}).(*clientBody)
	return b
}

func (b *clientBody) Read(p []byte) (int, error) {
	b.reading.Lock()
	defer b.reading.Unlock()
	if b.timeout > 0 {
		// Fails only once the connection is gone, which the read then
		// reports.
		_ = b.dl.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.rc.Read(p)
	if err == nil {
		return n, nil
	}
	if b.timeout > 0 {
		// The body is over: without this an HTTP/1 server's background
		// read (started at the body's EOF to notice a client leaving)
		// would time out while a slow upstream answers, and cancel the
		// request.
		_ = b.dl.SetReadDeadline(time.Time{})
	}
	if err == io.EOF {
		b.state.CompareAndSwap(bodyReading, bodyDone)
		return n, err
	}
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		b.state.CompareAndSwap(bodyReading, bodyTooLarge)
		return n, err
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		b.state.CompareAndSwap(bodyReading, bodyStalled)
	default:
		// Chunk framing net/http refused, a trailer it could not parse,
		// a body shorter than its Content-Length (the client closed):
		// whatever follows on the connection is not a request.
		b.state.CompareAndSwap(bodyReading, bodyMalformed)
	}
	return n, &clientBodyError{err}
}

func (b *clientBody) Close() error { return b.rc.Close() }

// settle waits for a Read in flight to return. An HTTP/1 read that times
// out cancels the request's context before it returns, so the proxy can
// learn of the cancellation before state says why; settle closes that
// window. The read is returning already: its error cancelled the context.
func (b *clientBody) settle() {
	b.reading.Lock()
	//lint:ignore SA2001 an empty critical section: waiting for the reader is the point
	b.reading.Unlock()
}

// clientBodyError is an error reading the client's request body: a body
// that breaks off, lies about its length (an HTTP/2 content-length larger
// than the data sent), is malformed or stalls is the client's fault, and
// is answered 400 or 408, not 502.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// bodyFailed answers a request whose body stalled (408) or was malformed
// (400) and reports whether it did. Either way the client connection is
// closed after the answer (HTTP/1: Connection: close; an HTTP/2 stream
// has its own framing and ends on its own), since what the client sends
// next would be read from the middle of its body; and a stall is an
// offence for the flood jail, as a connection over conns_per_ip is.
func (rt *route) bodyFailed(w http.ResponseWriter, r *http.Request, b *clientBody) bool {
	var code int
	switch b.state.Load() {
	case bodyStalled:
		code = http.StatusRequestTimeout
	case bodyMalformed:
		code = http.StatusBadRequest
	default:
		return false
	}
	b.answered = true
	rt.reportBody(r, b)
	if r.ProtoMajor == 1 {
		w.Header()["Connection"] = []string{"close"}
	}
	rt.errorPage(w, r, code)
	return true
}

// reportBody logs a failed body and reports a stalled one to the flood
// jail.
func (rt *route) reportBody(r *http.Request, b *clientBody) {
	s := middleware.ScopeFrom(r)
	if b.state.Load() != bodyStalled {
		rt.log.Debug("malformed request body", "host", rt.name, "client_ip", s.ClientIP)
		return
	}
	rt.log.Debug("request body stalled", "host", rt.name, "client_ip", s.ClientIP,
		"body_read_timeout", b.timeout.Seconds())
	s.Offence = floodJail
	if rt.jails != nil {
		rt.jails.Report(floodJail, s.ClientIP, "slow body")
	}
}

// finishBody runs when the host's handler has returned. A body that
// failed without an answer (the upstream answered before the body broke
// off) aborts the response: the connection must not carry another
// request. An HTTP/1 body nobody read to its end (an early 401, an
// upstream that answered without reading it all) keeps the timeout for
// net/http's own drain of it, which otherwise waits without limit.
func (rt *route) finishBody(r *http.Request, b *clientBody) {
	switch b.state.Load() {
	case bodyStalled, bodyMalformed:
		if !b.answered {
			rt.reportBody(r, b)
			panic(http.ErrAbortHandler)
		}
	case bodyReading:
		if r.ProtoMajor == 1 && b.timeout > 0 {
			_ = b.dl.SetReadDeadline(time.Now().Add(b.timeout))
		}
	}
}

// bufferMemory is how much of a buffered request body (hosts[].
// buffer_requests) is kept in memory; the rest goes to an unlinked
// temporary file. nginx's client_body_buffer_size is 16KB; 64KB keeps
// typical form posts and JSON in memory, and bounds the memory of 256
// connections of one client at 16MB.
const bufferMemory = 64 << 10

// bufferBody reads the whole request body before next contacts the
// upstream (hosts[].buffer_requests, nginx's proxy_request_buffering):
// a client that sends its body slowly, or never, holds no upstream
// connection. It sits just before the proxy, after the gateway's own
// early answers (401, 403), which must not read the body. The body is
// read through clientBody, so body_read_timeout and max_body apply.
func (rt *route) bufferBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body, n, err := spool(r.Body, r.ContentLength, bufferMemory)
		if err != nil {
			rt.bufferError(w, r, err)
			return
		}
		defer body.Close()
		// The upstream gets a complete body with its length: no chunks,
		// no trailers, nothing to wait for.
		r.Body, r.ContentLength, r.TransferEncoding, r.Trailer = body, n, nil, nil
		if n == 0 {
			r.Body = http.NoBody
		}
		delete(r.Header, "Expect")
		next.ServeHTTP(w, r)
	})
}

// bufferError answers a body that could not be buffered.
func (rt *route) bufferError(w http.ResponseWriter, r *http.Request, err error) {
	if b := bodyOf(r); b != nil && rt.bodyFailed(w, r, b) {
		return
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		rt.errorPage(w, r, http.StatusRequestEntityTooLarge)
	case r.Context().Err() != nil:
		w.WriteHeader(statusClientClosed)
	default:
		// Only the temporary file can fail here: the gateway's fault.
		rt.log.Error("request body not buffered", "host", rt.name, "error", err)
		rt.errorPage(w, r, http.StatusInternalServerError)
	}
}

// spool reads r to its end: up to mem bytes into memory, the rest into
// an unlinked temporary file. It returns the body to replay and its
// length. size is the declared length, -1 when unknown.
func spool(r io.Reader, size int64, mem int) (io.ReadCloser, int64, error) {
	var buf bytes.Buffer
	if size > 0 {
		buf.Grow(int(min(size+1, int64(mem)+1)))
	}
	n, err := io.CopyN(&buf, r, int64(mem)+1)
	if err == io.EOF {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), n, nil
	}
	if err != nil {
		return nil, 0, err
	}
	f, err := os.CreateTemp("", "gatehouse-body-")
	if err != nil {
		return nil, 0, fmt.Errorf("create body buffer file: %w", err)
	}
	// Unlinked at once: the open file stays readable, and nothing is
	// left on disk when the request ends or the process dies.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("unlink body buffer file: %w", err)
	}
	total, err := buf.WriteTo(f)
	if err == nil {
		var m int64
		// io.Copy would take f's ReadFrom, which only adds a detour for
		// a reader that is not a file or socket.
		m, err = io.Copy(struct{ io.Writer }{f}, r)
		total += m
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		var cbe *clientBodyError
		var mbe *http.MaxBytesError
		if errors.As(err, &cbe) || errors.As(err, &mbe) {
			return nil, 0, err
		}
		return nil, 0, fmt.Errorf("write body buffer file: %w", err)
	}
	return f, total, nil
}
