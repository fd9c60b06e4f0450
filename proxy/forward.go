package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"gatehouse/middleware"
	"gatehouse/proxy/upstream"
	"gatehouse/signer"

	"golang.org/x/net/http/httpguts"
)

// The proxy's fast path: a GET or HEAD without a body, to a host whose
// upstreams all speak plain HTTP, goes through upstream.Client on the
// request's own goroutine instead of httputil.ReverseProxy and
// net/http's Transport. It does what ReverseProxy with route.rewrite and
// route.modifyResponse does, header by header: hop-by-hop headers (and
// those the client's Connection names) stripped both ways, the client's
// Forwarded and X-Forwarded-* replaced by the gateway's own, Referer
// signatures redacted, "Te: trailers" passed, informational answers
// (1xx) passed on, trailers announced and passed, answers of unknown
// length flushed as they arrive, and a body cut off midway ending the
// client's connection. Everything else (request bodies, upgrades, HTTPS
// upstreams, read_timeout, queries ReverseProxy rewrites) takes
// ReverseProxy.

// forward serves r through the fast path when it can, through the
// reverse proxy otherwise.
func (rt *route) forward(w http.ResponseWriter, r *http.Request) {
	if rt.fast == nil || !fastEligible(r) {
		rt.proxy.ServeHTTP(w, r)
		return
	}
	head := r.Method == http.MethodHead
	h := w.Header()
	var fresh http.Header
	if len(h) != 0 {
		// The upstream's header is added to what is there, as
		// ReverseProxy's copyHeader does, after the header policy
		// has been applied to the upstream's header alone.
		fresh = http.Header{}
		h = fresh
	}
	cn, status, err := rt.fast.Exchange(r, head, func(bw *bufio.Writer, u *url.URL) error {
		return rt.writeRequest(bw, r, u)
	}, h)
	if err != nil {
		clear(h) // a head that failed midway
		rt.proxyError(w, r, err)
		return
	}
	defer cn.Release()
	for status < 200 {
		if status == http.StatusSwitchingProtocols {
			clear(h)
			rt.proxyError(w, r, errors.New("upstream switched protocols unasked"))
			return
		}
		// An informational answer (103 Early Hints): passed on with its
		// header, which then goes, as ReverseProxy's Got1xxResponse does.
		if fresh != nil {
			copyHeader(w.Header(), fresh)
		}
		w.WriteHeader(status)
		clear(w.Header())
		h, fresh = w.Header(), nil
		if status, err = cn.NextHead(r.Context(), h, head); err != nil {
			clear(h)
			rt.proxyError(w, r, err)
			return
		}
	}
	var announced []string
	if cn.Chunked() {
		if announced, err = trailerNames(h["Trailer"]); err != nil {
			clear(h)
			rt.proxyError(w, r, err)
			return
		}
	}
	removeHopByHop(h)
	if r.TLS != nil {
		rt.headers.ApplyTLS(h)
	} else {
		rt.headers.Apply(h)
	}
	if fresh != nil {
		copyHeader(w.Header(), fresh)
	}
	if len(announced) > 0 {
		w.Header().Add("Trailer", strings.Join(announced, ", "))
	}
	flush := cn.ContentLength() < 0 || eventStream(w.Header()["Content-Type"])
	w.WriteHeader(status)
	if err := rt.copyBody(w, cn, flush); err != nil {
		if r.Context().Err() == nil && !errors.Is(err, errClientWrite) {
			// Debug, as ReverseProxy logs a body copy error.
			rt.log.Debug("upstream answer cut off", "host", rt.name,
				"upstream", middleware.ScopeFrom(r).Upstream, "error", err)
		}
		// The client must not take a short answer for a whole one.
		panic(http.ErrAbortHandler)
	}
	if len(announced) == 0 && len(cn.Trailer) == 0 {
		return
	}
	// Force chunking, so net/http sends the trailers rather than a
	// Content-Length of its own.
	_ = http.NewResponseController(w).Flush() // a writer that cannot flush sends no trailers either
	prefix := ""
	for k := range cn.Trailer {
		if !containsFold(announced, k) {
			// Trailers the upstream did not announce are sent under
			// net/http's TrailerPrefix, all of them, as ReverseProxy does.
			prefix = http.TrailerPrefix
			break
		}
	}
	for k, vv := range cn.Trailer {
		for _, v := range vv {
			w.Header().Add(prefix+k, v)
		}
	}
}

// errClientWrite marks a failed write to the client.
var errClientWrite = errors.New("client write failed")

// copyBody copies the answer's body to w with a pooled buffer, flushing
// after each read when flush is set.
func (rt *route) copyBody(w http.ResponseWriter, cn *upstream.Conn, flush bool) error {
	bp := rt.buffers.get()
	defer rt.buffers.put(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		// The head goes at once, before the first byte of a body that
		// may be slow to come (ReverseProxy's initial flush). net/http
		// then sniffs no Content-Type from the body; behind ReverseProxy
		// it does when the first body write wins the race with that
		// flush's timer.
		rc = http.NewResponseController(w)
		var err error
		if rc, err = flushClient(rc); err != nil {
			return err
		}
	}
	for {
		n, rerr := cn.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return fmt.Errorf("%w: %w", errClientWrite, werr)
			}
			if rc != nil {
				if ferr := rc.Flush(); ferr != nil {
					return fmt.Errorf("%w: %w", errClientWrite, ferr)
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// flushClient flushes rc; it returns nil for a writer that cannot
// flush, which then sends the answer whole.
func flushClient(rc *http.ResponseController) (*http.ResponseController, error) {
	switch err := rc.Flush(); {
	case errors.Is(err, http.ErrNotSupported):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%w: %w", errClientWrite, err)
	}
	return rc, nil
}

// fastEligible tells whether r can take the fast path: a GET or HEAD
// without a body or a protocol switch, whose query and Host ReverseProxy
// and net/http would pass as they are.
func fastEligible(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Body != nil && r.Body != http.NoBody || r.ContentLength != 0 {
		return false
	}
	if _, ok := r.Header["Upgrade"]; ok {
		return false
	}
	// A control character in the query is net/http's error to answer:
	// writeRequest fails only when the connection does.
	return queryClean(r.URL.RawQuery) && isASCIIPrint(r.URL.RawQuery) && isASCIIPrint(r.Host)
}

// queryClean is the negation of the cases in which ReverseProxy
// rewrites a query (httputil's cleanQueryParams): a semicolon, a bad
// percent escape, more than 10,000 parameters.
func queryClean(s string) bool {
	if strings.Count(s, "&") >= 10000 {
		return false
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 3
		default:
			i++
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isASCIIPrint(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// requestHopHeaders are the headers never forwarded as the client sent
// them: the hop-by-hop ones (RFC 9110 §7.6.1, the list ReverseProxy
// removes), the forwarding headers the gateway writes itself (route.rewrite),
// and those the request line and writeRequest write (Host, User-Agent,
// Content-Length).
var requestHopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"X-Real-Ip": true, "Host": true, "User-Agent": true, "Content-Length": true,
}

// responseHopHeaders are the hop-by-hop headers of an answer.
var responseHopHeaders = [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// writeRequest writes r's request line and header for upstream u into
// bw: what net/http's Request.write sends for the request ReverseProxy
// and route.rewrite make of r.
func (rt *route) writeRequest(bw *bufio.Writer, r *http.Request, u *url.URL) error {
	uri := requestURI(r.URL, u)
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	host := r.Host
	if host == "" {
		host = u.Host
	}
	bw.WriteString(host)
	bw.WriteString("\r\n")
	in := r.Header
	// Headers the client's Connection header names are hop-by-hop too,
	// User-Agent among them.
	var named []string
	for _, v := range in["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.Trim(f, " \t"); f != "" {
				named = append(named, http.CanonicalHeaderKey(f))
			}
		}
	}
	if ua := in["User-Agent"]; len(ua) > 0 && ua[0] != "" && !containsFold(named, "User-Agent") {
		writeField(bw, "User-Agent", ua[0])
	}
	s := middleware.ScopeFrom(r)
	for k, vv := range in {
		if requestHopHeaders[k] || containsFold(named, k) {
			continue
		}
		if k == "Referer" {
			for _, v := range vv {
				writeField(bw, k, signer.RedactSignatures(v))
			}
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	// The user header basic auth set is the gateway's: a client's
	// Connection header cannot drop it.
	if rt.authHeader != "" && s.User != "" && containsFold(named, rt.authHeader) {
		if v := in[rt.authHeader]; len(v) == 1 {
			writeField(bw, rt.authHeader, v[0])
		}
	}
	if httpguts.HeaderValuesContainsToken(in["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	if s.Peer.IsValid() {
		rt.writeForwarded(bw, r, s)
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// writeForwarded writes the forwarding headers route.rewrite sets.
func (rt *route) writeForwarded(bw *bufio.Writer, r *http.Request, s *middleware.Scope) {
	in := r.Header
	proto, host := "http", r.Host
	if r.TLS != nil {
		proto = "https"
	}
	bw.WriteString("X-Forwarded-For: ")
	if s.PeerTrusted {
		if prior := in["X-Forwarded-For"]; len(prior) > 0 {
			for _, p := range prior {
				writeValue(bw, p)
				bw.WriteString(", ")
			}
		}
		if v := in.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
		if v := in.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
	}
	bw.Write(s.Peer.AppendTo(bw.AvailableBuffer()))
	bw.WriteString("\r\n")
	writeField(bw, "X-Forwarded-Proto", proto)
	writeField(bw, "X-Forwarded-Host", host)
	bw.WriteString("X-Real-Ip: ")
	switch {
	case s.ClientIP == s.Peer || s.ClientIP.IsValid():
		bw.Write(s.ClientIP.AppendTo(bw.AvailableBuffer()))
	default:
		bw.WriteString(s.ClientIP.String()) // as route.rewrite writes it
	}
	bw.WriteString("\r\n")
}

// requestURI is the request target for upstream u: r's path joined to
// u's base path (as target does), with r's query.
func requestURI(in, u *url.URL) string {
	if u.Path == "" || u.Path == "/" {
		out := url.URL{Path: in.Path, RawPath: in.RawPath, RawQuery: in.RawQuery, ForceQuery: in.ForceQuery}
		return out.RequestURI()
	}
	out := url.URL{Path: singleJoiningSlash(u.Path, in.Path), RawQuery: in.RawQuery, ForceQuery: in.ForceQuery}
	if in.RawPath != "" {
		out.RawPath = singleJoiningSlash(u.EscapedPath(), in.RawPath)
	}
	return out.RequestURI()
}

func singleJoiningSlash(a, b string) string {
	aslash := a[len(a)-1] == '/'
	bslash := b != "" && b[0] == '/'
	switch {
	case aslash && bslash:
		return a + b[1:]
	case !aslash && !bslash:
		return a + "/" + b
	}
	return a + b
}

// writeField writes one header field line.
func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	writeValue(bw, v)
	bw.WriteString("\r\n")
}

// writeValue writes a header value, a line break in it turned into a
// space as net/http's Header.Write does.
func writeValue(bw *bufio.Writer, v string) {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(v)
}

// trailerNames parses a chunked answer's Trailer header into the names
// it announces, as net/http's Transport does: canonical, deduplicated,
// and never one that frames the message.
func trailerNames(vals []string) ([]string, error) {
	var names []string
	for _, v := range vals {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.Trim(f, " \t")
			if f == "" {
				continue
			}
			f = http.CanonicalHeaderKey(f)
			switch f {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return nil, fmt.Errorf("upstream announced trailer %q", f)
			}
			if !containsFold(names, f) {
				names = append(names, f)
			}
		}
	}
	return names, nil
}

// removeHopByHop removes an answer's hop-by-hop headers, those its
// Connection header names included (ReverseProxy's
// removeHopByHopHeaders).
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.Trim(f, " \t"); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range responseHopHeaders {
		delete(h, k)
	}
}

// copyHeader adds src's values to dst.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		dst[k] = append(dst[k], vv...)
	}
}

// eventStream tells whether a Content-Type is text/event-stream, whose
// events ReverseProxy flushes as they come.
func eventStream(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	v, _, _ := strings.Cut(ct[0], ";")
	return strings.EqualFold(strings.Trim(v, " \t"), "text/event-stream")
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
