package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"gatehouse/rules"
	"gatehouse/rules/match"

	"golang.org/x/net/http/httpguts"
)

// HygieneConfig configures Hygiene.
type HygieneConfig struct {
	// StrictSNI answers 421 Misdirected Request to a TLS request whose
	// host differs from the server name (SNI) the client sent in its TLS
	// handshake; a request without SNI is accepted only for an IP-literal
	// host. Default false: the host alone routes.
	StrictSNI bool
	// UserHeaders lists the request headers gatehouse sets to tell an
	// upstream who logged in (every host's basic_auth.user_header).
	// X-Forwarded-User is always among them. A client-sent one, or an
	// alias of it with "_" or "." in place of "-", never reaches an
	// upstream. Default: X-Forwarded-User only.
	UserHeaders []string
	// Loosen returns the path refusals the host (canonical, as in
	// Scope.RequestHost) waives: an encoded "/" (%2F,
	// hosts[].allow_encoded_slash) and NTFS stream syntax (":$",
	// hosts[].allow_stream_syntax); see match.CanonicalOptions. It is
	// asked only about paths refused for one of those. nil: no host
	// waives any.
	Loosen func(host string) match.CanonicalOptions
	// PassClient reports whether the host (canonical, as in
	// Scope.RequestHost) takes the client identity header name (one of
	// ClientIdentityHeaders, lower case) from clients
	// (hosts[].headers.pass_client). It is asked only when such a header
	// is present. nil: no host does, and every one is removed.
	PassClient func(host, name string) bool
	// Jail receives an offence for every request refused with 400 for a
	// form no browser or client library sends (see refuse and
	// match.UnsafePathError.Hostile): scanners send them all the time, so
	// they are not free. "" or nil jails: none is reported.
	// proxy sets the probes jail.
	Jail string
}

// Reasons a request is refused by Hygiene: constant texts, safe to log.
const (
	reasonMethod      = "method not proxied"
	reasonBadMethod   = "method is not a token"
	reasonTrace       = "TRACE not proxied"
	reasonVersion     = "HTTP version not 1.0 or 1.1"
	reasonHost        = "invalid host"
	reasonNoHost      = "no host (HTTP/1.0)"
	reasonHostHeader  = "host header differs from :authority"
	reasonSNI         = "host differs from TLS server name"
	reasonTwoAuth     = "several Authorization headers"
	reasonAbsoluteURI = "invalid absolute-form request target"
)

// strippedHeaders are request headers no upstream ever receives from a
// client, in the normalised form of normaliseHeaderName. The forwarding
// headers are set by the proxy itself (from the resolved client, after
// hop-by-hop removal); the rewrite headers make IIS, Symfony, Laminas
// and Next.js serve another path than the one every rule matched
// (X-Original-URL, X-Rewrite-URL, X-Middleware-Subrequest,
// CVE-2025-29927); Proxy is httpoxy (CVE-2016-5385); the X-Client-Cert-*
// headers tell the upstream of a host with client_certs which client
// certificate the gateway verified, on every host, so that no client
// can claim one where none was asked for. It is a never-mutated table.
var strippedHeaders = []string{
	"forwarded", "x-real-ip",
	"x-original-url", "x-rewrite-url", "x-middleware-subrequest", "proxy",
	"x-forwarded-user",
	// Set by the gateway from its GeoIP databases (Geo).
	"x-client-country", "x-client-asn",
	"x-client-cert-verify", "x-client-cert-subject", "x-client-cert-issuer",
	"x-client-cert-serial", "x-client-cert-fingerprint",
}

// ClientIdentityHeaders are the request headers that claim who the client
// is or what it asked for, which frameworks, CDN integrations and auth
// proxies believe when present: client addresses (Client-IP,
// CF-Connecting-IP and -IPv6, …, Forwarded-For and X-Forwarded without the
// usual suffix), authenticated users set by a front auth proxy
// (Remote-User, X-WEBAUTH-USER for Grafana, oauth2-proxy's
// X-Auth-Request-*), and the method-override family, which turns a GET
// into a DELETE behind every method-based rule (Rails, Laravel, Symfony,
// Express method-override). gatehouse removes them from every client
// request, with the "_" and "." spellings; a host opts back in
// one by one with headers.pass_client. Lower case; a never-mutated table.
var ClientIdentityHeaders = []string{
	"client-ip", "x-client-ip", "true-client-ip", "cf-connecting-ip", "cf-connecting-ipv6",
	"fastly-client-ip", "x-cluster-client-ip", "x-originating-ip",
	"x-remote-ip", "x-remote-addr", "forwarded-for", "x-forwarded",
	"x-proxyuser-ip", "x-original-forwarded-for", "x-envoy-external-address",
	"x-azure-clientip", "cloudfront-viewer-address",
	"remote-user", "x-remote-user", "x-webauth-user", "x-auth-request-user",
	"x-auth-request-email", "x-auth-request-preferred-username",
	"x-auth-request-groups", "x-auth-request-access-token",
	"x-http-method-override", "x-http-method", "x-method-override",
}

// forwardedPrefix starts every X-Forwarded-* header. Only the exact
// X-Forwarded-For, -Proto and -Host survive Hygiene: the proxy reads them
// from trusted proxies and always replaces them for the upstream.
const forwardedPrefix = "x-forwarded-"

// hygiene is the compiled HygieneConfig.
type hygiene struct {
	strictSNI  bool
	loosen     func(host string) match.CanonicalOptions
	passClient func(host, name string) bool
	jail       string
	jails      *rules.Jails
	// names maps the normalised names of the stripped headers to
	// themselves when a host may pass them (client identity headers),
	// else to "".
	names map[string]string
	// shape has, for each first byte of a header name, bit L set when a
	// stripped name (or an X-Forwarded-* one) of length L (63: 63 or
	// more) starts with that byte in any case: a header of another shape
	// is never stripped, which keeps the cost of the common headers
	// (Cookie, Content-Type, Referer …) to one table lookup.
	shape [256]uint64
	log   *slog.Logger
}

// Hygiene computes one canonical view of every request — host, framing,
// headers, path — and refuses a request that two readers could see
// differently. It runs once, early in the chain, below ClientIP: every
// later rule matches what it stored in the Scope (RequestHost, Path).
//
// It answers 405 to TRACE and TRACK, and 400 (closing an HTTP/1
// connection either way) to: CONNECT and PRI; a
// method that is not an RFC 9110 token (HTTP/2 lets any through);
// an HTTP/1 version other than 1.0 and 1.1; a host (from the absolute-form
// request target, else Host — never X-Forwarded-Host) that is not a valid
// host name or IP address; an absolute-form target with user info or a
// scheme other than http and https; an HTTP/2 Host header that names
// another authority than :authority; several Authorization headers; and
// a path that match.Canonical refuses. With
// cfg.StrictSNI a TLS request whose host is not its SNI name gets 421.
//
// It removes the headers no upstream may get from a client (see
// strippedHeaders, every X-Forwarded-* but For, Proto and Host, the user
// headers, and all of them spelt with "_" or "." for "-"), request
// trailers, and an offer to upgrade to h2c. The upstream still receives the path and host as sent.
//
// A clean request costs no allocation unless its host needs lower-casing.
func Hygiene(cfg HygieneConfig, jails *rules.Jails, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hy := &hygiene{strictSNI: cfg.StrictSNI, loosen: cfg.Loosen, passClient: cfg.PassClient,
		jail: cfg.Jail, jails: jails, log: log, names: map[string]string{}}
	for _, n := range strippedHeaders {
		hy.names[n] = ""
	}
	for _, n := range ClientIdentityHeaders {
		hy.names[n] = n
	}
	for _, h := range cfg.UserHeaders {
		if !httpguts.ValidHeaderFieldName(h) {
			return nil, fmt.Errorf("user header %q is not a valid field name", h)
		}
		var buf [maxHeaderName]byte
		n, ok := normaliseHeaderName(h, buf[:])
		if !ok {
			return nil, fmt.Errorf("user header %q is longer than %d bytes", h, maxHeaderName)
		}
		hy.names[string(n)] = "" // a user header is never the client's to send
	}
	for c := range 256 {
		first := normalHeaderByte(byte(c))
		if first == forwardedPrefix[0] {
			for l := len(forwardedPrefix) + 1; l < 64; l++ {
				hy.shape[c] |= 1 << l
			}
		}
		for n := range hy.names {
			if first == n[0] {
				hy.shape[c] |= 1 << min(len(n), 63)
			}
		}
	}
	return hy.wrap, nil
}

func (hy *hygiene) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := ScopeFrom(r)
		if reason, code := hy.check(r, s); code != 0 {
			hy.refuse(w, r, s, code, reason)
			return
		}
		if r.Trailer != nil {
			// Trailers arrive after the rules have run; an upstream that
			// merges them into the headers would believe them.
			r.Trailer = nil
		}
		raw := match.RequestPath(r.RequestURI)
		c, err := match.Canonical(raw)
		if err != nil && hy.loosen != nil && (errors.Is(err, match.ErrEncodedSlash) || errors.Is(err, match.ErrStreamSyntax)) {
			if opt := hy.loosen(s.RequestHost); opt != (match.CanonicalOptions{}) {
				c, err = match.CanonicalWith(raw, opt)
			}
		}
		if err != nil {
			var upe *match.UnsafePathError
			if !errors.As(err, &upe) {
				upe = &match.UnsafePathError{Reason: "unsafe path"}
			}
			hy.refuseAs(w, r, s, http.StatusBadRequest, upe.Reason, upe.Hostile(raw))
			return
		}
		s.Path = c
		next.ServeHTTP(w, r)
	})
}

// check validates the request line, the host and the framing headers and
// stores the canonical host. It returns the status to answer, 0 for a
// request that may go on.
func (hy *hygiene) check(r *http.Request, s *Scope) (string, int) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	case http.MethodConnect, "PRI":
		// gatehouse is no forward proxy, and PRI is the HTTP/2 preface
		// sent to an HTTP/1 listener.
		return reasonMethod, http.StatusBadRequest
	case http.MethodTrace, "TRACK":
		// TRACE echoes the request, credentials included, back to a
		// script (cross-site tracing); nginx answers 405 too.
		return reasonTrace, http.StatusMethodNotAllowed
	default:
		// net/http checks HTTP/1 methods, but its HTTP/2 server takes
		// any :method, spaces included: a method is a token
		// (RFC 9110 §9.1), the same characters as a field name.
		if !httpguts.ValidHeaderFieldName(r.Method) {
			return reasonBadMethod, http.StatusBadRequest
		}
	}
	if r.ProtoMajor != 2 && (r.ProtoMajor != 1 || r.ProtoMinor > 1) {
		return reasonVersion, http.StatusBadRequest
	}
	if uri := r.RequestURI; uri != "" && uri[0] != '/' && uri != "*" && !validAbsoluteForm(uri) {
		return reasonAbsoluteURI, http.StatusBadRequest
	}
	if r.Host == "" && r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		// Legal (only HTTP/1.1 requires Host) and what monitoring checks
		// send (check_http without -H, HAProxy's httpchk): refused, as
		// no host routes it, but no offence (refuse).
		return reasonNoHost, http.StatusBadRequest
	}
	host, port, ok := CanonicalHost(r.Host)
	if !ok {
		return reasonHost, http.StatusBadRequest
	}
	hv, up, auths := hy.scanHeaders(r.Header, host, s.PeerTrusted)
	if hv != nil {
		// Only HTTP/2 and HTTP/3 keep a Host field beside :authority (Go
		// moves the HTTP/1 one to r.Host); RFC 9113 §8.3.1.
		if len(hv) != 1 {
			return reasonHostHeader, http.StatusBadRequest
		}
		h2, p2, ok := CanonicalHost(hv[0])
		if !ok || h2 != host || p2 != port {
			return reasonHostHeader, http.StatusBadRequest
		}
		delete(r.Header, "Host")
	}
	if hy.strictSNI && r.TLS != nil && !sniMatches(r.TLS.ServerName, host) {
		return reasonSNI, http.StatusMisdirectedRequest
	}
	s.RequestHost = host
	if len(up) > 0 && httpguts.HeaderValuesContainsToken(up, "h2c") {
		// RFC 9113 §3.1 removed h2c, and a tunnel would carry requests no
		// rule sees. The offer is ignored, as RFC 9110 §7.8 allows and
		// nginx does: Java's HttpClient and curl --http2 send it on their
		// first http:// request and go on over HTTP/1.1 when no 101
		// comes. Without Upgrade the request is plain HTTP/1.1 to every
		// later rule and to the upstream.
		delete(r.Header, "Upgrade")
		delete(r.Header, "Http2-Settings")
	}
	if auths > 1 {
		// Which one would the upstream believe?
		return reasonTwoAuth, http.StatusBadRequest
	}
	return "", 0
}

// refuse answers a request Hygiene will not pass, closing an HTTP/1
// connection: what follows a malformed request on it cannot be trusted.
// A 400 is an offence for the configured jail (no browser sends such a
// request line, host or header set), except the one for an HTTP/1.0
// request without Host, which monitoring checks send; a 421
// (strict SNI) is not, since browsers reuse a connection for every host
// its certificate covers.
func (hy *hygiene) refuse(w http.ResponseWriter, r *http.Request, s *Scope, code int, reason string) {
	hy.refuseAs(w, r, s, code, reason, code == http.StatusBadRequest && reason != reasonNoHost)
}

// refuseAs is refuse, with offence saying whether the refusal is held
// against the client (see match.UnsafePathError.Hostile for paths).
func (hy *hygiene) refuseAs(w http.ResponseWriter, r *http.Request, s *Scope, code int, reason string, offence bool) {
	if hy.log.Enabled(r.Context(), slog.LevelDebug) {
		hy.log.Debug("request refused", "client_ip", s.ClientIP, "status", code, "reason", reason)
	}
	if offence && hy.jail != "" && hy.jails != nil {
		s.Offence = "malformed request: " + reason
		hy.jails.Report(hy.jail, s.ClientIP, "malformed request")
	}
	if r.ProtoMajor == 1 {
		w.Header()["Connection"] = []string{"close"}
	}
	PlainStatus(w, code)
}

// scanHeaders deletes the headers no client may send to an upstream
// (those of host's own pass_client list kept) and returns, from the same
// pass over the map, the Host field (HTTP/2 only), the Upgrade values and
// the number of Authorization lines.
func (hy *hygiene) scanHeaders(h http.Header, host string, peerTrusted bool) (hostField, upgrade []string, auths int) {
	for k, v := range h {
		switch k {
		case "Host":
			hostField = v
		case "Upgrade":
			upgrade = v
		case "Authorization":
			auths = len(v)
		default:
			if !peerTrusted && cdnHeader(k) {
				// A CDN's client address header a host passes
				// (pass_client) stays; nothing else of the CDN's does.
				if _, name := hy.stripped(k); name == "" || hy.passClient == nil || !hy.passClient(host, name) {
					delete(h, k)
				}
				continue
			}
			if k == "" || hy.shape[k[0]]&(1<<min(len(k), 63)) == 0 {
				continue
			}
			if strip, name := hy.stripped(k); strip && (name == "" || hy.passClient == nil || !hy.passClient(host, name)) {
				delete(h, k)
			}
		}
	}
	return hostField, upgrade, auths
}

// cdnPrefixes start the headers a CDN writes for its origin about the
// request it forwards: Cloudflare's CF-IPCountry, CF-Visitor and
// Cf-Access-Authenticated-User-Email, CloudFront's CloudFront-Viewer-*
// and -Forwarded-Proto, Fastly's Fastly-SSL … Apps moved from behind a
// CDN believe them; only a CDN may send them. Normalised as
// normalHeaderByte makes them.
var cdnPrefixes = []string{"cf-", "cloudfront-", "fastly-"}

// cdnHeader reports whether header k is one that only a CDN sends: a
// name of the cdnPrefixes or CDN-Loop, in any case and with "_" or "."
// for "-". Hygiene removes them from requests whose peer is not a trusted
// proxy (trusted_proxies, cloudflare …): a direct client forging them.
func cdnHeader(k string) bool {
	if len(k) < 3 {
		return false
	}
	switch k[0] {
	case 'c', 'C', 'f', 'F':
	default:
		return false
	}
	for _, p := range cdnPrefixes {
		if len(k) > len(p) && hasNormalPrefix(k, p) {
			return true
		}
	}
	return len(k) == len("cdn-loop") && hasNormalPrefix(k, "cdn-loop")
}

// hasNormalPrefix reports whether k starts with p once normalised by
// normalHeaderByte.
func hasNormalPrefix(k, p string) bool {
	for i := 0; i < len(p); i++ {
		if normalHeaderByte(k[i]) != p[i] {
			return false
		}
	}
	return true
}

// maxHeaderName bounds the header names normaliseHeaderName handles; no
// stripped name comes near it.
const maxHeaderName = 64

// stripped reports whether header k is one no client may send, and when
// a host may take it from clients (a client identity header), its
// normalised name.
func (hy *hygiene) stripped(k string) (strip bool, passable string) {
	var buf [maxHeaderName]byte
	n, ok := normaliseHeaderName(k, buf[:])
	if !ok {
		// Longer than any stripped name; only the prefix can match.
		n = buf[:0]
		for i := 0; i < len(forwardedPrefix); i++ {
			n = append(n, normalHeaderByte(k[i]))
		}
		return string(n) == forwardedPrefix, ""
	}
	if len(n) > len(forwardedPrefix) && string(n[:len(forwardedPrefix)]) == forwardedPrefix {
		switch k {
		case "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host":
			// The exact names only: the proxy reads these from trusted
			// proxies and replaces them for every upstream.
			return false, ""
		}
		return true, ""
	}
	name, ok := hy.names[string(n)]
	return ok, name
}

// normaliseHeaderName writes name lower-cased, with "_" and "." read as
// "-", to buf: the spelling CGI, PHP and many frameworks reduce a header
// name to (HTTP_X_FORWARDED_FOR), so "X_Forwarded_For" must be stripped
// like "X-Forwarded-For". It reports false when name does not fit.
func normaliseHeaderName(name string, buf []byte) ([]byte, bool) {
	if len(name) > len(buf) {
		return nil, false
	}
	for i := 0; i < len(name); i++ {
		buf[i] = normalHeaderByte(name[i])
	}
	return buf[:len(name)], true
}

func normalHeaderByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_' || c == '.':
		return '-'
	}
	return c
}

// validAbsoluteForm reports whether an absolute-form request target
// (RFC 9112 §3.2.2) is an http or https URI without user info, which
// RFC 9110 §4.2.4 says to treat as an error. Its host is checked as
// r.Host, which Go takes from it.
func validAbsoluteForm(uri string) bool {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
		return false
	}
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '/', '?', '#':
			return true
		case '@':
			return false
		}
	}
	return true
}

// sniMatches reports whether host (canonical) is the TLS server name sni.
// Clients send no SNI for an IP address (RFC 6066 §3), so without one only
// an IP-literal host matches.
func sniMatches(sni, host string) bool {
	if sni == "" {
		_, err := netip.ParseAddr(host)
		return err == nil
	}
	return strings.EqualFold(strings.TrimSuffix(sni, "."), host)
}

// CanonicalHost parses an HTTP host (Host header, :authority or the
// authority of an absolute-form request target): a DNS name, an IPv4
// address or a bracketed IPv6 address, with an optional port. It returns
// the host lower-cased, without brackets, port and one trailing dot, and
// the port ("" when absent). It reports false for anything else: an empty
// host, a name with characters other than letters, digits and "-", an
// empty label or one starting or ending with "-", a label over 63 bytes, a
// name over 253, a last label of only digits that is no IPv4 address
// ("127.1", "0x7f.1" — inet_aton spellings), an IPv6 zone, user info, a
// port that is not 1 to 5 digits.
//
// It allocates only when the name has upper-case letters. It is safe for
// concurrent use.
func CanonicalHost(hostport string) (host, port string, ok bool) {
	h := hostport
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", "", false
		}
		rest := h[end+1:]
		h = h[1:end]
		if rest != "" {
			if rest[0] != ':' || !match.ValidPort(rest[1:]) {
				return "", "", false
			}
			port = rest[1:]
		}
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", "", false
		}
		return strings.ToLower(h), port, true
	}
	if i := strings.IndexByte(h, ':'); i >= 0 {
		if !match.ValidPort(h[i+1:]) {
			return "", "", false
		}
		h, port = h[:i], h[i+1:]
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return "", "", false
	}
	upper := false
	labelStart := 0
	digitsOnly := true
	for i := 0; i <= len(h); i++ {
		if i == len(h) || h[i] == '.' {
			n := i - labelStart
			if n == 0 || n > 63 || h[labelStart] == '-' || h[i-1] == '-' {
				return "", "", false
			}
			if i < len(h) {
				labelStart = i + 1
				digitsOnly = true
			}
			continue
		}
		switch c := h[i]; {
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'z', c == '-':
			digitsOnly = false
		case 'A' <= c && c <= 'Z':
			digitsOnly = false
			upper = true
		default:
			return "", "", false
		}
	}
	if digitsOnly {
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is4() {
			return "", "", false
		}
	}
	if upper {
		h = strings.ToLower(h)
	}
	return h, port, true
}
