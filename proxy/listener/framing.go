package listener

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
)

// framingGuard refuses the HTTP/1 requests whose framing two parsers could
// read differently, before net/http parses them. net/http hides the
// evidence from handlers: it drops Content-Length when Transfer-Encoding
// is chunked, drops Transfer-Encoding on HTTP/1.0, folds obs-fold lines
// into one value, and accepts HTTP/1.2 to HTTP/1.9 — so a front proxy that
// frames by Content-Length, or reads a folded line as its own header,
// sees other requests than gatehouse (request smuggling, RFC 9112 §11.2).
//
// The guard reads the connection's bytes ahead of the server and holds
// back each request head until it is complete. A head with Content-Length
// and Transfer-Encoding together, Transfer-Encoding on HTTP/1.0, an
// obs-fold line (RFC 9112 §5.2) or a version other than HTTP/1.0 and
// HTTP/1.1 is replaced by a line the server answers with 400 Bad Request
// and Connection: close, and nothing after it is read. Bodies are skipped
// by their Content-Length or chunked framing, parsed as net/http does.
//
// Where it cannot follow the stream — a head over the server's limit, a
// Transfer-Encoding other than one "chunked", a bad Content-Length —
// net/http refuses the request and closes the connection itself, so the
// guard passes the rest through unread. After a WebSocket handshake
// answered with 101 the connection is a tunnel and is passed through as
// well.
//
// A body whose framing breaks — a chunk-size line net/http refuses (a
// bare LF, "0x", a CR before an extension, too long), a chunk not
// followed by CRLF, an over-long trailer — or whose read fails (the
// body_read_timeout deadline, a reset) poisons the connection (issue
// 17): the bytes up to the fault are handed out, so net/http sees the
// error, and then only EOF, so nothing after a malformed body is ever
// parsed as a request, whether or not the server would keep the
// connection.
type framingGuard struct {
	net.Conn
	// maxHead is the most bytes a request head may take before the guard
	// stops holding it back (past net/http's own limit).
	maxHead int
	// onReject is called with the reason of each refused request.
	onReject func(reason string)

	buf   []byte // bytes read from Conn; buf[out:ready] may be handed out
	out   int
	ready int
	pos   int // where parsing resumes; ready <= pos <= len(buf)
	state framingState

	// The request head being read (stHead).
	lines     int  // lines of the head so far
	v10       bool // HTTP/1.0
	clSeen    bool
	clBad     bool // a Content-Length net/http refuses
	cl        int64
	teLines   int
	teChunked bool
	ws        bool // Upgrade: websocket
	post      bool // the previous request was a POST

	remaining int64 // body or chunk bytes left

	wsPending atomic.Bool // a WebSocket handshake was handed out, answer not yet seen
	switched  atomic.Bool // a 101 was written: the connection is a tunnel
}

type framingState uint8

const (
	stHead      framingState = iota // reading a request head
	stBody                          // remaining Content-Length bytes
	stChunkSize                     // a chunk-size line
	stChunkData                     // remaining chunk bytes
	stChunkCRLF                     // the CRLF after a chunk
	stTrailer                       // trailer lines up to an empty one
	stPass                          // not parsed any more
	stRejected                      // the refusal was handed out; EOF follows
	stPoisoned                      // a body broke: buf[out:ready] then EOF
)

// Reasons the guard refuses a request; constant, safe to log.
const (
	reasonCLTE      = "Content-Length with Transfer-Encoding"
	reasonTE10      = "Transfer-Encoding on HTTP/1.0"
	reasonObsFold   = "obs-fold header line"
	reasonVersion   = "HTTP version not 1.0 or 1.1"
	reasonBadChunk  = "malformed chunked body"
	maxChunkLine    = 4096 // net/http's limit on a chunk-size line
	maxTrailerBytes = 4096 // net/http's limit on a trailer section
)

// refusal is what the server reads instead of a refused head: a request
// line without spaces, which it answers with 400 and Connection: close.
var refusal = []byte("REFUSED\r\n\r\n")

// guardListener puts a framingGuard on every accepted connection.
type guardListener struct {
	net.Listener
	maxHeaderBytes int
	// refused is told of each request the guard refuses, with the
	// connection's peer; nil: nobody.
	refused func(peer net.Addr, reason string)
}

// Guard puts the framing guard on every connection ln accepts.
// maxHeaderBytes is the HTTP server's MaxHeaderBytes; refused, when not
// nil, is told of each request the guard refuses, with the connection's
// peer.
func Guard(ln net.Listener, maxHeaderBytes int, refused func(peer net.Addr, reason string)) net.Listener {
	return &guardListener{Listener: ln, maxHeaderBytes: maxHeaderBytes, refused: refused}
}

func (gl *guardListener) Accept() (net.Conn, error) {
	c, err := gl.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newFramingGuard(c, gl.maxHeaderBytes, onRefusal(gl.refused, c.RemoteAddr())), nil
}

var (
	_ net.Listener = (*guardListener)(nil)
	_ net.Conn     = (*framingGuard)(nil)
)

// onRefusal binds refused to one connection's peer; nil stays nil.
func onRefusal(refused func(peer net.Addr, reason string), peer net.Addr) func(reason string) {
	if refused == nil {
		return nil
	}
	return func(reason string) { refused(peer, reason) }
}

// newFramingGuard wraps an accepted HTTP/1 connection. maxHeaderBytes is
// the server's MaxHeaderBytes.
func newFramingGuard(c net.Conn, maxHeaderBytes int, onReject func(reason string)) *framingGuard {
	// net/http reads at most MaxHeaderBytes + 4096 bytes for a head.
	return &framingGuard{Conn: c, maxHead: maxHeaderBytes + 4096 + 64, onReject: onReject}
}

// Read hands out checked bytes. net/http never calls it concurrently.
func (g *framingGuard) Read(p []byte) (int, error) {
	for {
		if g.ready > g.out {
			n := copy(p, g.buf[g.out:g.ready])
			g.out += n
			if g.out == len(g.buf) {
				g.buf, g.out, g.ready, g.pos = g.buf[:0], 0, 0, 0
			}
			return n, nil
		}
		switch {
		case g.state == stPoisoned:
			return 0, io.EOF
		case g.state == stRejected:
			// Drain until the server closes: an EOF here would tell it
			// the client left, cancelling a request still in flight
			// ahead of the refused one.
			if len(p) == 0 {
				return 0, nil
			}
			for {
				if _, err := g.Conn.Read(p); err != nil {
					return 0, err
				}
			}
		case g.state == stPass || g.switched.Load():
			g.state = stPass
			if g.out < len(g.buf) {
				g.ready = len(g.buf)
				continue
			}
			return g.Conn.Read(p)
		case g.state == stBody && g.out == len(g.buf) && len(p) > 0:
			// Nothing held: the body goes straight to the caller.
			n, err := g.Conn.Read(p[:int(min(int64(len(p)), g.remaining))])
			g.remaining -= int64(n)
			switch {
			case g.remaining == 0:
				g.state = stHead
			case err != nil:
				// Timed out or broke off mid-body: the rest is not a
				// request.
				g.state = stPoisoned
			}
			return n, err
		}
		if g.advance() {
			continue
		}
		if err := g.fill(); err != nil {
			return 0, err
		}
	}
}

// Write passes p on and notices the 101 that turns the connection into a
// WebSocket tunnel.
func (g *framingGuard) Write(p []byte) (int, error) {
	if g.wsPending.Load() && bytes.HasPrefix(p, []byte("HTTP/1.")) {
		g.wsPending.Store(false)
		if len(p) >= 13 && string(p[8:13]) == " 101 " {
			g.switched.Store(true)
		}
	}
	return g.Conn.Write(p)
}

// CloseWrite half-closes the connection, so net/http's answer to a bad
// request reaches the client before the close (it looks for this method).
func (g *framingGuard) CloseWrite() error {
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// fill reads more bytes from the connection into buf.
func (g *framingGuard) fill() error {
	if g.out > 0 && g.out == len(g.buf) {
		g.buf, g.out, g.ready, g.pos = g.buf[:0], 0, 0, 0
	}
	if g.out > 0 && cap(g.buf)-len(g.buf) < 1024 {
		// Move the held bytes to the front.
		n := copy(g.buf, g.buf[g.out:])
		g.ready -= g.out
		g.pos -= g.out
		g.buf, g.out = g.buf[:n], 0
	}
	if cap(g.buf)-len(g.buf) < 1024 {
		nb := make([]byte, len(g.buf), max(4096, 2*cap(g.buf)))
		copy(nb, g.buf)
		g.buf = nb
	}
	n, err := g.Conn.Read(g.buf[len(g.buf):cap(g.buf)])
	g.buf = g.buf[:len(g.buf)+n]
	if n > 0 {
		return nil // an error comes back on the next read
	}
	if err == io.EOF && g.ready < len(g.buf) {
		// The client is gone mid-head (or mid-chunk-line): hand out what
		// it sent, which the server cannot take for a whole request, and
		// the EOF after it.
		g.pass()
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	if g.inBody() {
		// A body that timed out (body_read_timeout) or broke off: what
		// would come after it is not a request.
		g.ready = len(g.buf)
		g.state = stPoisoned
	}
	return err
}

// inBody reports whether the guard is inside a request body.
func (g *framingGuard) inBody() bool {
	switch g.state {
	case stBody, stChunkSize, stChunkData, stChunkCRLF, stTrailer:
		return true
	}
	return false
}

// poison hands out buf[out:at], where the body's framing broke, so that
// net/http reads the fault and refuses the body; after that the
// connection only gives EOF.
func (g *framingGuard) poison(at int) {
	g.ready = at
	g.pos = at
	g.state = stPoisoned
	if g.onReject != nil {
		g.onReject(reasonBadChunk)
	}
}

// advance parses from pos and moves ready as far as the bytes allow. It
// reports whether it made progress.
func (g *framingGuard) advance() bool {
	start := g.ready
	for g.ready < len(g.buf) {
		switch g.state {
		case stHead:
			if !g.head() {
				return g.ready > start || g.state == stPass || g.state == stRejected
			}
		case stBody, stChunkData:
			n := min(int64(len(g.buf)-g.ready), g.remaining)
			g.ready += int(n)
			g.pos = g.ready
			g.remaining -= n
			if g.remaining == 0 {
				if g.state == stBody {
					g.state = stHead
				} else {
					g.state = stChunkCRLF
				}
			}
		case stChunkCRLF:
			if len(g.buf)-g.ready < 2 {
				return g.ready > start
			}
			if string(g.buf[g.ready:g.ready+2]) != "\r\n" {
				g.poison(g.ready + 2)
				return true
			}
			g.ready += 2
			g.pos = g.ready
			g.state = stChunkSize
		case stChunkSize:
			at := g.pos
			line, ok := g.line(maxChunkLine)
			if !ok {
				if g.state == stPass { // over the limit: enough of it for net/http to see
					g.poison(at + maxChunkLine + 1)
					return true
				}
				return g.ready > start
			}
			size, ok := chunkSize(line)
			if !ok || g.pos < 2 || g.buf[g.pos-2] != '\r' { // net/http wants CRLF here, not a bare LF
				g.poison(g.pos)
				return true
			}
			g.ready = g.pos
			if size == 0 {
				g.state, g.remaining = stTrailer, maxTrailerBytes
			} else {
				g.state, g.remaining = stChunkData, size
			}
		case stTrailer:
			at, limit := g.pos, int(g.remaining)
			line, ok := g.line(limit)
			if !ok {
				if g.state == stPass { // over net/http's trailer limit
					g.poison(at + limit + 1)
					return true
				}
				return g.ready > start
			}
			g.remaining -= int64(g.pos - g.ready)
			g.ready = g.pos
			if len(line) == 0 {
				g.state = stHead
			}
		default: // stPass, stRejected, stPoisoned
			return true
		}
	}
	return g.ready > start
}

// pass gives up parsing: net/http refuses what follows and closes.
func (g *framingGuard) pass() {
	g.state = stPass
	g.ready = len(g.buf)
	g.pos = g.ready
}

// line returns the next complete line from pos without its line end and
// moves pos past it. It reports false when no complete line is there
// yet; a line over limit passes the connection through.
func (g *framingGuard) line(limit int) ([]byte, bool) {
	i := bytes.IndexByte(g.buf[g.pos:], '\n')
	if i < 0 {
		if len(g.buf)-g.pos > limit {
			g.pass()
		}
		return nil, false
	}
	line := g.buf[g.pos : g.pos+i]
	g.pos += i + 1
	if len(line) > limit {
		g.pass()
		return nil, false
	}
	return bytes.TrimSuffix(line, []byte("\r")), true
}

// head parses the request head from pos, line by line. It reports true
// when the head was decided (handed out, refused or passed through).
func (g *framingGuard) head() bool {
	if g.lines == 0 && g.pos == g.ready && g.post {
		// After a POST net/http peeks at four bytes and skips the CR and
		// LF among them (RFC 9112 §2.2 tolerance for old clients); so
		// does the guard.
		if len(g.buf)-g.pos < 4 {
			return false
		}
		for k := 0; k < 4 && (g.buf[g.pos] == '\r' || g.buf[g.pos] == '\n'); k++ {
			g.pos++
		}
		g.ready = g.pos
		g.post = false
	}
	for {
		line, ok := g.line(g.maxHead - (g.pos - g.ready))
		if !ok {
			return g.state == stPass
		}
		g.lines++
		switch {
		case g.lines == 1:
			g.requestLine(line)
		case len(line) == 0:
			g.endHead()
			return true
		case line[0] == ' ' || line[0] == '\t':
			g.refuse(reasonObsFold)
		default:
			g.headerLine(line)
		}
		if g.state == stRejected {
			return true
		}
	}
}

// headerLine notes the framing headers of one "Name: value" line.
func (g *framingGuard) headerLine(line []byte) {
	name, value, _ := bytes.Cut(line, []byte(":"))
	value = bytes.Trim(value, " \t")
	switch {
	case asciiEqualFold(name, "content-length"):
		n, ok := parseDecimal(value)
		if !ok || g.clSeen && n != g.cl {
			g.clBad = true
		}
		g.clSeen, g.cl = true, n
	case asciiEqualFold(name, "transfer-encoding"):
		g.teLines++
		g.teChunked = asciiEqualFold(value, "chunked")
	case asciiEqualFold(name, "upgrade"):
		if tokenListHas(value, "websocket") {
			g.ws = true
		}
	}
}

// requestLine checks the version of "METHOD TARGET VERSION", split at the
// first two spaces as net/http does.
func (g *framingGuard) requestLine(line []byte) {
	method, rest, _ := bytes.Cut(line, []byte(" "))
	_, proto, _ := bytes.Cut(rest, []byte(" "))
	switch string(proto) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		g.v10 = true
	default:
		g.refuse(reasonVersion)
	}
	g.post = string(method) == "POST"
}

// refuse replaces the head being read, and everything after it, by the
// refusal, at once: nothing more of the connection is read.
func (g *framingGuard) refuse(reason string) {
	g.buf = append(g.buf[:g.ready], refusal...)
	g.pos = len(g.buf)
	g.ready = g.pos
	g.state = stRejected
	g.resetHead()
	if g.onReject != nil {
		g.onReject(reason)
	}
}

func (g *framingGuard) resetHead() {
	g.lines, g.v10, g.clSeen, g.clBad, g.cl, g.teLines, g.teChunked, g.ws = 0, false, false, false, 0, 0, false, false
}

// endHead decides a complete head at buf[ready:pos].
func (g *framingGuard) endHead() {
	switch {
	case g.teLines > 0 && g.clSeen:
		g.refuse(reasonCLTE)
		return
	case g.teLines > 0 && g.v10:
		g.refuse(reasonTE10)
		return
	}
	ws, te, chunked, clBad, cl := g.ws, g.teLines, g.teChunked, g.clBad, g.cl
	g.resetHead()
	g.ready = g.pos
	switch {
	case te > 0 && (te != 1 || !chunked), clBad:
		g.pass() // net/http answers 501 or 400 and closes
	case te > 0:
		g.state = stChunkSize
	case cl > 0:
		g.state, g.remaining = stBody, cl
	}
	if ws {
		g.wsPending.Store(true)
	}
}

// chunkSize parses a chunk-size line (without its CRLF) as net/http does:
// trailing whitespace trimmed, ";extensions" cut, then 1 to 16 hex digits.
func chunkSize(line []byte) (int64, bool) {
	if len(line) == 0 || bytes.IndexByte(line, '\r') >= 0 {
		return 0, false
	}
	line = bytes.TrimRight(line, " \t")
	line, _, _ = bytes.Cut(line, []byte(";"))
	if len(line) == 0 || len(line) > 16 {
		return 0, false
	}
	var n uint64
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
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
	if n > 1<<62 {
		return 0, false
	}
	return int64(n), true
}

// parseDecimal parses a Content-Length value: 1 to 18 decimal digits.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// asciiEqualFold reports whether b equals the lower-case s, ignoring ASCII
// case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// tokenListHas reports whether the comma-separated list v has token
// (lower case), ignoring ASCII case.
func tokenListHas(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if asciiEqualFold(bytes.Trim(t, " \t"), token) {
			return true
		}
	}
	return false
}
