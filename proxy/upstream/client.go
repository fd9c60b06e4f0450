package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// DialTimeout bounds connecting to an upstream; 0: no bound.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an answer's head once
	// the request is written; 0: no bound.
	ResponseHeaderTimeout time.Duration
	// MaxIdlePerHost is how many idle keep-alive connections are kept
	// per upstream address; 0: 2, as net/http's Transport.
	MaxIdlePerHost int
	// IdleTimeout is how long an idle connection is kept; 0: 90s.
	IdleTimeout time.Duration
	// Now is the clock. nil: time.Now.
	Now func() time.Time
	// Dial connects to an upstream. nil: a net.Dialer with DialTimeout
	// and a 30s TCP keep-alive.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client is a purpose-built HTTP/1.1 client for the proxy's common
// case: a request without a body to a plain-HTTP upstream. It keeps
// pooled keep-alive connections per upstream address and runs each
// exchange on the caller's goroutine: the request line and header go
// straight into the connection's bufio.Writer, and the answer's head is
// parsed into the caller's header map with one string allocation for
// the whole head. net/http's Transport, by contrast, runs two goroutines
// per connection, hands each request and answer over channels and
// clones headers.
//
// Everything else (request bodies, upgrades, HTTPS upstreams) goes
// through net/http's Transport. A Client is shared by the pools of a
// config and is safe for concurrent use.
type Client struct {
	dial           func(ctx context.Context, network, addr string) (net.Conn, error)
	responseHeader time.Duration
	maxIdle        int
	idleTimeout    time.Duration
	now            func() time.Time

	mu   sync.Mutex
	idle map[string][]*Conn // by address; the most recently used last
	// sweep closes the idle connections past idleTimeout; armed while
	// any connection is idle.
	sweep *time.Timer
}

// NewClient returns a Client for cfg.
func NewClient(cfg ClientConfig) *Client {
	c := &Client{
		dial:           cfg.Dial,
		responseHeader: cfg.ResponseHeaderTimeout,
		maxIdle:        cfg.MaxIdlePerHost,
		idleTimeout:    cfg.IdleTimeout,
		now:            cfg.Now,
		idle:           map[string][]*Conn{},
	}
	if c.maxIdle <= 0 {
		c.maxIdle = 2
	}
	if c.idleTimeout <= 0 {
		c.idleTimeout = 90 * time.Second
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.dial == nil {
		d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
		c.dial = d.DialContext
	}
	return c
}

// CloseIdleConnections closes the idle connections; those in use are
// closed when their exchange ends.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	idle := c.idle
	c.idle = map[string][]*Conn{}
	c.mu.Unlock()
	for _, conns := range idle {
		for _, cn := range conns {
			cn.nc.Close()
		}
	}
}

// CloseIdleExcept closes the idle connections to the addresses keep
// does not hold: those of upstreams a new config no longer names.
func (c *Client) CloseIdleExcept(keep func(addr string) bool) {
	var gone []*Conn
	c.mu.Lock()
	for addr, conns := range c.idle {
		if !keep(addr) {
			gone = append(gone, conns...)
			delete(c.idle, addr)
		}
	}
	c.mu.Unlock()
	for _, cn := range gone {
		cn.nc.Close()
	}
}

// sweepIdle closes the idle connections past the idle timeout, and
// arms the next sweep while any is left: one timer for the client, not
// one per connection.
func (c *Client) sweepIdle() {
	now := c.now()
	var gone []*Conn
	c.mu.Lock()
	var next time.Duration
	for addr, conns := range c.idle {
		n := 0
		for n < len(conns) && now.Sub(conns[n].idleSince) >= c.idleTimeout {
			n++
		}
		gone = append(gone, conns[:n]...)
		if n == len(conns) {
			delete(c.idle, addr)
			continue
		}
		if d := c.idleTimeout - now.Sub(conns[n].idleSince); next == 0 || d < next {
			next = d
		}
		if n > 0 {
			c.idle[addr] = append(conns[:0], conns[n:]...)
		}
	}
	if next > 0 {
		c.sweep.Reset(next)
	} else {
		c.sweep = nil
	}
	c.mu.Unlock()
	for _, cn := range gone {
		cn.nc.Close()
	}
}

// get returns an idle connection to addr, or dials one. reused tells
// which.
func (c *Client) get(ctx context.Context, addr string, now time.Time) (cn *Conn, reused bool, err error) {
	c.mu.Lock()
	conns := c.idle[addr]
	// The oldest idle connection first: past IdleTimeout it goes.
	for len(conns) > 0 && now.Sub(conns[0].idleSince) > c.idleTimeout {
		old := conns[0]
		conns = conns[1:]
		defer old.nc.Close()
	}
	if n := len(conns); n > 0 {
		cn = conns[n-1]
		conns[n-1] = nil
		conns = conns[:n-1]
	}
	c.idle[addr] = conns
	c.mu.Unlock()
	if cn != nil {
		if cn.alive() {
			return cn, true, nil
		}
		// Bytes the upstream sent while the connection was idle (junk,
		// a body longer than announced, a body on HEAD, 204 or 304)
		// would become the next answer; or the upstream closed it.
		cn.nc.Close()
	}
	nc, err := c.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &Conn{nc: nc, addr: addr, client: c,
		br: bufio.NewReaderSize(nc, 4096), bw: bufio.NewWriterSize(nc, 4096)}, false, nil
}

// put keeps cn for the next request to its address, or closes it when
// enough are kept.
func (c *Client) put(cn *Conn) {
	cn.idleSince = c.now()
	c.mu.Lock()
	conns := c.idle[cn.addr]
	if len(conns) < c.maxIdle {
		c.idle[cn.addr] = append(conns, cn)
		if c.sweep == nil {
			c.sweep = time.AfterFunc(c.idleTimeout, c.sweepIdle)
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	cn.nc.Close()
}

// bodyKind is how an answer's body is delimited (RFC 9112 §6.3).
type bodyKind uint8

const (
	bodyNone    bodyKind = iota // HEAD, 1xx, 204, 304, or Content-Length: 0
	bodyLength                  // Content-Length
	bodyChunked                 // Transfer-Encoding: chunked
	bodyClose                   // until the upstream closes the connection
)

// maxHeadBytes bounds an answer's head (status line and header fields).
const maxHeadBytes = 1 << 20

// maxTrailerBytes bounds a chunked answer's trailer section.
const maxTrailerBytes = 4096

// Conn is one keep-alive connection to an upstream, in the middle of an
// exchange: the answer's body is read from it (Read), then Release hands
// it back. A Conn is used by one goroutine at a time.
type Conn struct {
	nc        net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	addr      string
	client    *Client
	idleSince time.Time
	// raw, peek and idleOK serve alive's look at an idle connection.
	raw    syscall.RawConn
	peek   func(fd uintptr) bool
	idleOK bool

	// The exchange in progress.
	head   []byte // the answer head being read, reused
	kind   bodyKind
	remain int64 // bodyLength: bytes left; bodyChunked: bytes left in the chunk
	// lastChunk: the chunked body's zero-length chunk was read.
	lastChunk bool
	// excess weighs a chunked body's chunk lines against its data.
	excess int64
	done   bool // the body was read to its end
	// reusable: the answer allows the connection to carry another
	// request (HTTP/1.1 without Connection: close).
	reusable bool
	broken   bool // an error or a cancelled context: never reused
	// readAny: the failed head read had read some of the answer.
	readAny bool
	// headDeadline ends the wait for the answer's final head; zero: no
	// bound. informational counts the 1xx answers before it.
	headDeadline  time.Time
	informational int
	// cancel cuts the connection off when the request's context ends.
	cancel func()
	// stop ends the context watch of the exchange (AfterFunc).
	stop func() bool
	// Trailer holds a chunked answer's trailer fields once the body has
	// been read; nil when it had none.
	Trailer http.Header
}

// countHead counts the informational answers of the exchange and
// refuses one too many.
func (cn *Conn) countHead(status int, err error) (int, error) {
	if err == nil && status < 200 {
		if cn.informational++; cn.informational > maxInformational {
			cn.broken = true
			return 0, headError("more than %d informational answers", maxInformational)
		}
	}
	return status, err
}

// ErrHead reports an upstream answer whose head is not valid HTTP/1.1.
var ErrHead = errors.New("malformed upstream answer")

// headError is a malformed answer head.
func headError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrHead, fmt.Sprintf(format, args...))
}

// ReadHead reads the next answer head from the upstream into h (which
// the caller has cleared or which is fresh) and returns its status code.
// head tells whether the request was HEAD, whose answer has no body.
// An informational answer (1xx) has no body; the caller reads the next
// head after it.
func (cn *Conn) ReadHead(h http.Header, head bool) (int, error) {
	cn.head = cn.head[:0]
	skipped := 0 // empty lines before the status line count against the limit
	for {
		line, err := cn.br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			cn.broken = true
			cn.readAny = len(cn.head)+len(line) > 0
			if errors.Is(err, io.EOF) && cn.readAny {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if skipped+len(cn.head)+len(line) > maxHeadBytes {
			cn.broken = true
			return 0, headError("head over %d bytes", maxHeadBytes)
		}
		cn.head = append(cn.head, line...)
		if err != nil { // the line goes on
			continue
		}
		if headComplete(cn.head) {
			break
		}
		if n := len(cn.head); n == 1 || n == 2 && cn.head[0] == '\r' {
			// Empty lines before the status line: RFC 9112 §2.2 lets
			// a recipient ignore at least one.
			skipped += len(cn.head)
			cn.head = cn.head[:0]
		}
	}
	status, err := cn.parseHead(h, head)
	if err != nil {
		cn.broken = true
		return 0, err
	}
	// What net/http's ReadResponse does for HTTP/1.0 caches.
	if hp := h["Pragma"]; len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	return status, nil
}

// parseHead parses cn.head, a complete answer head, into h and sets the
// body framing.
func (cn *Conn) parseHead(h http.Header, head bool) (int, error) {
	// One string for the whole head: names and values are slices of it.
	s := string(cn.head)
	line, rest := nextLine(s)
	// Status line: HTTP-version SP status-code SP [reason-phrase].
	if len(line) < 12 || line[:7] != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return 0, headError("status line %q", truncate(line))
	}
	status := 0
	for _, b := range []byte(line[9:12]) {
		if b < '0' || b > '9' {
			return 0, headError("status line %q", truncate(line))
		}
		status = status*10 + int(b-'0')
	}
	if status < 100 {
		return 0, headError("status code %d", status)
	}
	http11 := line[7] == '1'
	for i := 12; i < len(line); i++ {
		if c := line[i]; c < ' ' && c != '\t' || c == 0x7f {
			return 0, headError("control character in the reason phrase")
		}
	}
	// Count the fields first: one backing array holds every value.
	fields := strings.Count(rest, "\n") - 1
	var vals []string
	if fields > 0 {
		vals = make([]string, 0, fields)
	}
	for {
		line, rest = nextLine(rest)
		if line == "" {
			break
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			if line[0] == ' ' || line[0] == '\t' {
				// RFC 9112 §5.2: obs-fold may be rejected by a proxy.
				return 0, headError("folded header line")
			}
			return 0, headError("header line without a colon")
		}
		name := line[:colon]
		canonical := true
		upper := true
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !isTokenByte(c) {
				return 0, headError("invalid header name %q", truncate(name))
			}
			if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
				canonical = false
			}
			upper = c == '-'
		}
		if !canonical {
			name = http.CanonicalHeaderKey(name)
		}
		value := strings.Trim(line[colon+1:], " \t")
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
				return 0, headError("control character in header %s", name)
			}
		}
		vals = append(vals, value)
		if prior, ok := h[name]; ok {
			h[name] = append(prior, value)
		} else {
			h[name] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	return status, cn.framing(h, status, head, http11)
}

// framing sets how the answer's body is delimited and whether the
// connection may be kept, as RFC 9112 §6.3 and §9.3 say, and as strictly
// as net/http's Transport.
func (cn *Conn) framing(h http.Header, status int, head, http11 bool) error {
	cn.kind, cn.remain, cn.lastChunk, cn.done, cn.Trailer, cn.excess = bodyNone, 0, false, false, nil, 0
	conn := h["Connection"]
	if http11 {
		cn.reusable = !headerHasToken(conn, "close")
	} else {
		cn.reusable = headerHasToken(conn, "keep-alive")
	}
	te, hasTE := h["Transfer-Encoding"]
	cl, hasCL := h["Content-Length"]
	if hasTE && !http11 {
		// As net/http: Transfer-Encoding means nothing in HTTP/1.0;
		// it is dropped and the body framed without it.
		delete(h, "Transfer-Encoding")
		hasTE = false
	}
	if hasTE {
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return headError("unsupported transfer encoding %q", te)
		}
		// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length,
		// which is dropped (as net/http does).
		delete(h, "Content-Length")
		hasCL = false
	}
	var length int64 = -1
	if hasCL {
		var err error
		if length, err = contentLength(cl); err != nil {
			return err
		}
	}
	switch {
	case status < 200 || status == http.StatusNoContent || status == http.StatusNotModified || head:
		cn.done = true
	case hasTE:
		cn.kind = bodyChunked
	case length == 0:
		cn.done = true
	case length > 0:
		cn.kind, cn.remain = bodyLength, length
	default:
		cn.kind = bodyClose
		cn.reusable = false
	}
	return nil
}

// ContentLength returns the answer's body length, -1 when it is not
// known before the end (chunked, or delimited by the close).
func (cn *Conn) ContentLength() int64 {
	switch cn.kind {
	case bodyLength:
		return cn.remain
	case bodyNone:
		return 0
	}
	return -1
}

// Chunked tells whether the answer's body is chunked, so it may end in
// trailer fields.
func (cn *Conn) Chunked() bool { return cn.kind == bodyChunked }

// contentLength parses Content-Length's values as net/http does:
// repeated equal fields are one value; differing ones, and a list in
// one field ("5, 5", which RFC 9110 §8.6 lets a recipient accept), are
// an error.
func contentLength(vals []string) (int64, error) {
	var n int64 = -1
	for _, v := range vals {
		m, ok := parseDecimal(v)
		if !ok {
			return 0, headError("Content-Length %q", truncate(v))
		}
		if n >= 0 && m != n {
			return 0, headError("differing Content-Length values")
		}
		n = m
	}
	return n, nil
}

// parseDecimal parses 1*DIGIT into a non-negative int64.
func parseDecimal(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// Read reads the answer's body. It returns io.EOF at its end; a chunked
// body's trailer fields are then in Trailer.
func (cn *Conn) Read(p []byte) (int, error) {
	if cn.done {
		return 0, io.EOF
	}
	switch cn.kind {
	case bodyLength:
		if int64(len(p)) > cn.remain {
			p = p[:cn.remain]
		}
		n, err := cn.br.Read(p)
		cn.remain -= int64(n)
		if cn.remain == 0 {
			cn.done = true
			return n, nil
		}
		if err != nil {
			cn.broken = true
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
		}
		return n, err
	case bodyChunked:
		return cn.readChunked(p)
	}
	n, err := cn.br.Read(p)
	if errors.Is(err, io.EOF) {
		cn.done = true
	}
	return n, err
}

// readChunked reads a chunked body (RFC 9112 §7.1).
func (cn *Conn) readChunked(p []byte) (int, error) {
	for cn.remain == 0 {
		if cn.lastChunk {
			return 0, cn.finishChunked()
		}
		size, err := cn.chunkSize()
		if err != nil {
			cn.broken = true
			return 0, err
		}
		if size == 0 {
			cn.lastChunk = true
			continue
		}
		cn.remain = size
	}
	if int64(len(p)) > cn.remain {
		p = p[:cn.remain]
	}
	n, err := cn.br.Read(p)
	cn.remain -= int64(n)
	if cn.remain == 0 && err == nil {
		// The CRLF after the chunk's data.
		err = cn.chunkEnd()
	}
	if err != nil {
		cn.broken = true
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
	}
	return n, err
}

// chunkSize reads a chunk-size line (RFC 9112 §7.1) as net/http does:
// CRLF-terminated (a bare LF is refused there, errata 7633), hex digits,
// extensions ignored; and, as net/http, it refuses a body whose chunk
// lines outweigh its data by far.
func (cn *Conn) chunkSize() (int64, error) {
	line, err := cn.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, headError("chunk size line too long")
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	if len(line) < 2 || bytes.IndexByte(line, '\r') != len(line)-2 {
		return 0, headError("chunk size line not ended by CRLF")
	}
	cn.excess += int64(len(line))
	line = bytes.TrimRight(line[:len(line)-2], " \t")
	line, _, _ = bytes.Cut(line, []byte(";"))
	if len(line) == 0 {
		return 0, headError("empty chunk size")
	}
	if len(line) > 15 {
		return 0, headError("chunk size too large")
	}
	var size int64
	for _, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, headError("chunk size %q", truncate(string(line)))
		}
		size = size<<4 | int64(d)
	}
	cn.excess = max(cn.excess-16-2*size, 0)
	if cn.excess > 16<<10 {
		return 0, headError("chunked body with too much besides data")
	}
	return size, nil
}

// chunkEnd reads the CRLF that ends a chunk's data.
func (cn *Conn) chunkEnd() error {
	var crlf [2]byte
	if _, err := io.ReadFull(cn.br, crlf[:]); err != nil {
		return err
	}
	if crlf != [2]byte{'\r', '\n'} {
		return headError("chunk data not followed by CRLF")
	}
	return nil
}

// finishChunked reads the trailer section after the last chunk
// (RFC 9112 §7.1.2) into Trailer and ends the body.
func (cn *Conn) finishChunked() error {
	cn.head = cn.head[:0]
	for {
		line, err := cn.br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			cn.broken = true
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(cn.head)+len(line) > maxHeadBytes {
			cn.broken = true
			return headError("trailer over %d bytes", maxHeadBytes)
		}
		cn.head = append(cn.head, line...)
		if err != nil {
			continue
		}
		if len(cn.head) == len(line) && len(trimLineEnd(line)) == 0 || headComplete(cn.head) {
			break
		}
	}
	cn.done = true
	if string(cn.head) == "\n" {
		// net/http ends an empty trailer section with CRLF only.
		cn.broken = true
		return headError("chunked body not ended by CRLF")
	}
	if string(cn.head) == "\r\n" {
		return io.EOF
	}
	if len(cn.head) > maxTrailerBytes || !bytes.HasSuffix(cn.head, []byte("\r\n\r\n")) {
		// As net/http: a trailer section fits its 4 KiB read buffer
		// and ends with CRLF CRLF.
		cn.broken = true
		return headError("trailer section too long or not ended by CRLF")
	}
	// The trailer section is parsed as a head after a dummy status line.
	t := http.Header{}
	saved := cn.head
	cn.head = append([]byte("HTTP/1.1 200 OK\r\n"), saved...)
	kind, reusable := cn.kind, cn.reusable
	_, err := cn.parseHead(t, true)
	cn.kind, cn.remain, cn.reusable, cn.lastChunk, cn.done = kind, 0, reusable, true, true
	cn.head = saved[:0]
	if err != nil {
		cn.broken = true
		return err
	}
	cn.Trailer = t
	return io.EOF
}

// Release ends the exchange: the connection goes back to the client's
// idle set when its answer was read to the end and allows another
// request, and is closed otherwise.
func (cn *Conn) Release() {
	if cn.stop != nil && !cn.stop() {
		// The request's context ended: the watch has set (or is
		// setting) a past deadline.
		cn.broken = true
	}
	cn.stop = nil
	if cn.broken || !cn.done || !cn.reusable || cn.br.Buffered() > 0 {
		cn.nc.Close()
		return
	}
	cn.client.put(cn)
}

// nextLine splits s after its first line, returning the line without
// its CRLF (or bare LF, which RFC 9112 §2.2 lets a recipient accept).
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// headComplete reports whether b, lines of a head, ends with an empty
// line.
func headComplete(b []byte) bool {
	n := len(b)
	return n >= 2 && b[n-2] == '\n' || n >= 3 && string(b[n-3:]) == "\n\r\n"
}

func trimLineEnd(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// isTokenByte reports whether c is a tchar (RFC 9110 §5.6.2).
func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// headerHasToken reports whether a comma-separated list header holds
// token, case-insensitively.
func headerHasToken(vals []string, token string) bool {
	for _, v := range vals {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.Trim(part, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// aLongTimeAgo is a deadline in the past: it wakes up and fails any
// read or write of a connection.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes a request without a body to addr with write and reads
// the answer's first head into h. A reused connection that fails before
// any byte of an answer arrives was closed by the upstream while idle:
// the request goes again on another connection, as net/http's Transport
// does for requests without a body.
func (c *Client) exchange(ctx context.Context, addr string, u *url.URL, head bool,
	write func(*bufio.Writer, *url.URL) error, h http.Header) (*Conn, int, error) {
	for {
		cn, reused, err := c.get(ctx, addr, c.now())
		if err != nil {
			return nil, 0, err
		}
		cn.broken, cn.readAny, cn.done = false, false, false
		if cn.cancel == nil {
			nc := cn.nc
			cn.cancel = func() { _ = nc.SetDeadline(aLongTimeAgo) } // the read or write it wakes reports the error
		}
		cn.stop = context.AfterFunc(ctx, cn.cancel)
		err = write(cn.bw, u)
		if err == nil {
			err = cn.bw.Flush()
		}
		var status int
		if err == nil {
			// The wait for the head starts once the request is out: a
			// slow dial does not count against it.
			cn.headDeadline, cn.informational = time.Time{}, 0
			if d := c.responseHeader; d > 0 {
				cn.headDeadline = c.now().Add(d)
			}
			status, err = cn.nextHead(ctx, h, head)
		} else {
			cn.broken = true
		}
		if err == nil {
			return cn, status, nil
		}
		cn.Release()
		if !reused || cn.readAny || ctx.Err() != nil || errors.Is(err, ErrHead) || isTimeout(err) {
			return nil, 0, err
		}
		// The bufio.Writer's error is sticky; the connection is gone.
	}
}

// maxInformational bounds the informational answers (1xx) before the
// final one. net/http's Transport has no bound when the answers are
// relayed (ReverseProxy's Got1xxResponse); without one, an upstream
// could hold a client forever when no response header timeout is set.
const maxInformational = 10

// NextHead reads the next answer head into h, as ReadHead, after an
// informational one. The client's response header timeout bounds the
// whole wait for the final head, informational ones included.
func (cn *Conn) NextHead(ctx context.Context, h http.Header, head bool) (int, error) {
	return cn.nextHead(ctx, h, head)
}

// nextHead reads a head before cn.headDeadline.
func (cn *Conn) nextHead(ctx context.Context, h http.Header, head bool) (int, error) {
	if cn.headDeadline.IsZero() {
		return cn.countHead(cn.ReadHead(h, head))
	}
	_ = cn.nc.SetReadDeadline(cn.headDeadline) // fails only on a closed connection, which the read reports
	status, err := cn.countHead(cn.ReadHead(h, head))
	if err != nil {
		return 0, err
	}
	if status < 200 {
		return status, nil // the deadline holds for the next head
	}
	if cn.done || cn.kind == bodyLength && int64(cn.br.Buffered()) >= cn.remain {
		// Nothing more is read from the connection in this exchange
		// (the common small answer): the deadline can stay until the
		// next exchange sets its own.
		return status, nil
	}
	_ = cn.nc.SetReadDeadline(time.Time{})
	if ctx.Err() != nil {
		// The context ended while the deadline was being cleared: the
		// watch's past deadline may have been overwritten.
		cn.cancel()
	}
	return status, nil
}
