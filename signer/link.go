package signer

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The query parameters of a gateway-signed link. The gateway removes
// them before the request reaches the upstream. Every parameter whose
// name starts with LinkParamPrefix is reserved: a URL that already
// carries one is not signed.
const (
	// LinkParamPrefix starts the name of every link parameter.
	LinkParamPrefix = "gh_"
	// ParamExpires is the link's expiry, in Unix seconds.
	ParamExpires = "gh_expires"
	// ParamIP is "1" when the link is bound to the client address it was
	// signed for; the address itself is not in the link.
	ParamIP = "gh_ip"
	// ParamSignature is the HMAC-SHA256 signature, unpadded base64url.
	ParamSignature = "gh_signature"
)

// MinLinkKey is the shortest link key accepted, in bytes: 256 bits for
// HMAC-SHA256 (RFC 2104 §3 recommends at least the hash's output size).
const MinLinkKey = 32

// linkDomain separates this MAC from any other use of the key, and
// versions the message format. v2 signs the exact method, the
// raw path and the query; a v1 link (method with HEAD folded into GET,
// canonical path, no query) no longer verifies under any key, so links
// issued before it fail closed (403) instead of passing with less
// coverage.
const linkDomain = "gatehouse-link-v2\n"

// LinkClockSkew is how far a link's expiry may lie beyond the host's
// max_expires when it is verified: the node that signed it may run a
// little ahead of the node that checks it. A link further away was not
// made by the signing API (which caps validity at max_expires) and is
// refused with ErrLinkTooLong.
const LinkClockSkew = time.Minute

// RedactedSignature replaces a gh_signature value wherever gatehouse
// writes a URI or a Referer to a log, and in the Referer sent upstream.
const RedactedSignature = "[redacted]"

// sigLen is the length of an encoded signature: 32 bytes in unpadded
// base64url.
const sigLen = 43

// Verification failures. Every one of them is answered with 403.
var (
	// ErrLinkMissing is a request without link parameters.
	ErrLinkMissing = errors.New("no signed-link parameters")
	// ErrLinkMalformed is a request with unreadable or repeated link
	// parameters.
	ErrLinkMalformed = errors.New("malformed signed-link parameters")
	// ErrLinkNotBound is a link without client address binding where
	// bind_ip requires one.
	ErrLinkNotBound = errors.New("signed link is not bound to a client address")
	// ErrLinkSignature is a signature that no key produced for this
	// method, host, path, expiry (and client address): tampered, signed
	// for another client, or made with a retired key.
	ErrLinkSignature = errors.New("bad signed-link signature")
	// ErrLinkExpired is a genuine link past its expiry.
	ErrLinkExpired = errors.New("signed link expired")
	// ErrLinkTooLong is a genuine signature on an expiry further away
	// than max_expires (plus LinkClockSkew): the signing API never makes
	// one, so it was minted with the key outside the gateway's limits.
	ErrLinkTooLong = errors.New("signed link expiry is beyond max_expires")
)

// LinkConfig configures gateway-signed links for one host (the config's
// hosts[].signed_links).
type LinkConfig struct {
	// Keys are the HMAC keys, each at least MinLinkKey bytes: the first
	// signs, every one verifies, so a key is rotated by putting the new
	// one first and removing the old one once its links have expired.
	// Required.
	Keys [][]byte
	// BindIP requires every link to be bound to a client address. False:
	// binding is per link (LinkRequest.IP).
	BindIP bool
	// MaxExpires caps a link's validity, when it is signed and when it
	// is verified: a link whose expiry lies further ahead than MaxExpires
	// (plus LinkClockSkew) is refused. Zero: 24h.
	MaxExpires time.Duration
	// IgnoreQuery leaves the query out of the signature (the config's
	// signed_links.query: ignore), for applications whose pages add
	// parameters of their own to a link. False (the default): the
	// signature covers the exact query, and any other query fails.
	IgnoreQuery bool
	// Now is the clock links are signed and checked with. Nil: time.Now.
	Now func() time.Time
}

// Links signs and verifies gateway-signed links: an expiry and an
// HMAC-SHA256 signature over the method, host, raw path (as the upstream
// receives it), query (unless IgnoreQuery) and expiry, and the client
// address when the link is bound to one. Verification compares in
// constant time and does not allocate. Links is safe for concurrent use.
type Links struct {
	keys        []*linkKey
	bindIP      bool
	ignoreQuery bool
	maxExpires  time.Duration
	// maxAhead is the furthest ahead, in seconds, an expiry may lie
	// when a link is verified: maxExpires plus LinkClockSkew.
	maxAhead int64
	now      func() time.Time
}

// linkKey keeps one key's HMAC states for reuse: hmac.New costs four
// allocations, a reset none.
type linkKey struct{ pool sync.Pool }

// linkMAC is one HMAC state with its scratch space.
type linkMAC struct {
	h   hash.Hash
	msg []byte
	sum []byte
	enc [sigLen]byte
}

// NewLinks builds a link signer.
func NewLinks(cfg LinkConfig) (*Links, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("signed links: at least one key is required")
	}
	l := &Links{bindIP: cfg.BindIP, ignoreQuery: cfg.IgnoreQuery, maxExpires: cfg.MaxExpires, now: cfg.Now}
	for i, k := range cfg.Keys {
		if len(k) < MinLinkKey {
			return nil, fmt.Errorf("signed links: key %d is %d bytes; at least %d are needed", i+1, len(k), MinLinkKey)
		}
		for j := range i {
			if bytes.Equal(k, cfg.Keys[j]) {
				return nil, fmt.Errorf("signed links: key %d repeats key %d", i+1, j+1)
			}
		}
		key := bytes.Clone(k)
		lk := &linkKey{}
		lk.pool.New = func() any {
			return &linkMAC{h: hmac.New(sha256.New, key), msg: make([]byte, 0, 256), sum: make([]byte, 0, sha256.Size)}
		}
		l.keys = append(l.keys, lk)
	}
	switch {
	case l.maxExpires == 0:
		l.maxExpires = defaultMaxExpires
	case l.maxExpires < time.Second:
		return nil, fmt.Errorf("signed links: max expires %s is under 1s", l.maxExpires)
	}
	l.maxAhead = int64((l.maxExpires + LinkClockSkew + time.Second - 1) / time.Second)
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// mac computes the encoded signature of a link with key k into m.enc.
// The method is signed as given: a HEAD link is not a GET link (Verify
// lets a GET link serve HEAD, never the reverse). The path and the query
// are length-prefixed, so no choice of bytes in one can be read as the
// other; an ignored query is "*", which no length is.
func (k *linkKey) mac(m *linkMAC, method, host, path, query string, ignoreQuery bool, expires int64, ip netip.Addr) {
	b := append(m.msg[:0], linkDomain...)
	b = append(b, method...)
	b = append(b, '\n')
	b = append(b, host...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, expires, 10)
	b = append(b, '\n')
	if ip.IsValid() {
		b = ip.AppendTo(b)
	}
	b = append(b, '\n')
	b = strconv.AppendInt(b, int64(len(path)), 10)
	b = append(b, ':')
	b = append(b, path...)
	b = append(b, '\n')
	if ignoreQuery {
		b = append(b, '*')
	} else {
		b = strconv.AppendInt(b, int64(len(query)), 10)
		b = append(b, ':')
		b = append(b, query...)
	}
	m.msg = b[:0]
	m.h.Reset()
	m.h.Write(b)
	m.sum = m.h.Sum(m.sum[:0])
	base64.RawURLEncoding.Encode(m.enc[:], m.sum)
}

// Sign returns the query parameters ("gh_expires=…&gh_signature=…", with
// gh_ip=1 when ip is valid) of a link for method on host, path and query,
// signed with the first key. host is the canonical host the request will
// be checked with (lower case, without port); path is the raw path the
// client will send (percent-encoded, as in the link); query is the rest
// of the link's query, without link parameters, exactly as the link
// carries it before them (ignored when the Links ignore the query). The
// link is path + "?" + query + "&" + Sign(…), or path + "?" + Sign(…)
// when query is empty.
func (l *Links) Sign(method, host, path, query string, expires time.Time, ip netip.Addr) string {
	k := l.keys[0]
	m := k.pool.Get().(*linkMAC)
	defer k.pool.Put(m)
	exp := expires.Unix()
	k.mac(m, method, host, path, query, l.ignoreQuery, exp, ip.Unmap())
	q := ParamExpires + "=" + strconv.FormatInt(exp, 10)
	if ip.IsValid() {
		q += "&" + ParamIP + "=1"
	}
	return q + "&" + ParamSignature + "=" + string(m.enc[:])
}

// LinkResult is a gateway-signed link.
type LinkResult struct {
	// URL is the signed URL.
	URL string `json:"url"`
	// ExpiresAt is when the link stops working (RFC 3339, UTC).
	ExpiresAt time.Time `json:"expires_at"`
}

// linkMethods are the methods a link may be signed for.
var linkMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// SignURL signs req for a token allowed the resources in allowed (nil:
// any). The caller has parsed req.URL into u and resolved it: host is
// its canonical host, path its canonical path (which allowed is checked
// against), and u.EscapedPath() is already in canonical form, the one
// escaping of path, so the raw path the link is signed for is the only
// spelling of it. The link is u with the link parameters appended to its
// query; the signature covers u's query as given (unless the Links
// ignore the query), so its bytes must be ones clients send unchanged. A
// request that cannot be signed as asked returns a *FieldError, one
// outside allowed a *PrefixError.
func (l *Links) SignURL(req LinkRequest, u *url.URL, host, path string, allowed Prefixes) (LinkResult, error) {
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = http.MethodGet
	}
	found := false
	for _, m := range linkMethods {
		found = found || m == method
	}
	if !found {
		return LinkResult{}, fieldErr("method", "%q is not one of %s", req.Method, strings.Join(linkMethods, ", "))
	}
	d, err := validity(req.Expires, l.maxExpires)
	if err != nil {
		return LinkResult{}, err
	}
	var ip netip.Addr
	switch {
	case req.IP != "":
		ip, err = netip.ParseAddr(req.IP)
		if err != nil || ip.Zone() != "" {
			return LinkResult{}, fieldErr("ip", "%q is not an IP address", req.IP)
		}
		ip = ip.Unmap()
	case l.bindIP:
		return LinkResult{}, fieldErr("ip", "required: this host's signed_links.bind_ip is on")
	}
	if err := checkLinkQuery(u.RawQuery); err != nil {
		return LinkResult{}, err
	}
	if !allowed.Allow(path) {
		return LinkResult{}, &PrefixError{Field: "url", Resource: strings.TrimPrefix(path, "/")}
	}
	expires := l.now().UTC().Truncate(time.Second).Add(d)
	signed := *u
	q := l.Sign(method, host, u.EscapedPath(), u.RawQuery, expires, ip)
	if signed.RawQuery != "" {
		q = signed.RawQuery + "&" + q
	}
	signed.RawQuery = q
	signed.ForceQuery = false
	return LinkResult{URL: signed.String(), ExpiresAt: expires}, nil
}

// checkLinkQuery refuses a query that cannot be signed: one carrying a
// reserved gh_ parameter, and one with bytes a client would not send as
// they are. Browsers percent-encode spaces, controls, non-ASCII, the
// quotes " and ', < and > in an http(s) query (WHATWG URL, "special-query
// percent-encode set"), so a link holding one would never verify.
func checkLinkQuery(q string) error {
	for seg := range strings.SplitSeq(q, "&") {
		name, _, _ := strings.Cut(seg, "=")
		if strings.HasPrefix(name, LinkParamPrefix) {
			return fieldErr("url", "already carries a %s parameter; %s* parameters are the gateway's own", name, LinkParamPrefix)
		}
	}
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' {
			return fieldErr("url", "query %q has a byte clients percent-encode (%q at byte %d); percent-encode it, the signature covers the query as sent", q, string(c), i)
		}
	}
	return nil
}

// Verify checks the link parameters in rawQuery for a request of method
// on the canonical host and the raw path (percent-encoded, as the
// upstream will receive it: r.URL.EscapedPath()) from client, and returns
// rawQuery with the link parameters removed. Unless the Links ignore the
// query, what remains must be the query the link was signed for, byte
// for byte. A GET link also serves HEAD; any other link only its own
// method. A bound link verifies only from the address it was signed for.
// An expiry further ahead than max_expires (plus LinkClockSkew) is
// refused. Every key is tried, each compared in constant time. Verify
// allocates only to rebuild a query whose link parameters are not
// together at its start or end.
func (l *Links) Verify(method, host, path, rawQuery string, client netip.Addr) (string, error) {
	var exp, bound, sig string
	var nExp, nBound, nSig int
	first, last := -1, -1 // byte range of the link parameters
	contiguous := true
	for pos := 0; pos <= len(rawQuery); {
		end := strings.IndexByte(rawQuery[pos:], '&')
		if end < 0 {
			end = len(rawQuery)
		} else {
			end += pos
		}
		seg := rawQuery[pos:end]
		name, value, _ := strings.Cut(seg, "=")
		ours := true
		switch name {
		case ParamExpires:
			exp, nExp = value, nExp+1
		case ParamIP:
			bound, nBound = value, nBound+1
		case ParamSignature:
			sig, nSig = value, nSig+1
		default:
			ours = false
		}
		if ours {
			if last >= 0 && last < pos-1 {
				contiguous = false
			}
			if first < 0 {
				first = pos
			}
			last = end
		}
		pos = end + 1
	}
	stripped := rawQuery
	if first >= 0 {
		stripped = strip(rawQuery, first, last, contiguous)
	}
	if nExp == 0 && nSig == 0 && nBound == 0 {
		return stripped, ErrLinkMissing
	}
	if nExp != 1 || nSig != 1 || nBound > 1 || len(sig) != sigLen || (nBound == 1 && bound != "1") ||
		len(exp) == 0 || len(exp) > 12 || !isDigits(exp) {
		return stripped, ErrLinkMalformed
	}
	if l.bindIP && nBound == 0 {
		return stripped, ErrLinkNotBound
	}
	expires, _ := strconv.ParseInt(exp, 10, 64) // 12 digits at most: cannot fail
	ip := netip.Addr{}
	if nBound == 1 {
		ip = client.Unmap()
		if !ip.IsValid() {
			return stripped, ErrLinkSignature
		}
	}
	good := 0
	for _, k := range l.keys {
		m := k.pool.Get().(*linkMAC)
		k.mac(m, method, host, path, stripped, l.ignoreQuery, expires, ip)
		good |= subtle.ConstantTimeCompare(m.enc[:], m.presented(sig))
		if method == http.MethodHead {
			// HEAD is a GET without the body: a GET link serves it.
			k.mac(m, http.MethodGet, host, path, stripped, l.ignoreQuery, expires, ip)
			good |= subtle.ConstantTimeCompare(m.enc[:], m.presented(sig))
		}
		k.pool.Put(m)
	}
	if good != 1 {
		return stripped, ErrLinkSignature
	}
	now := l.now().Unix()
	if now >= expires {
		return stripped, ErrLinkExpired
	}
	if expires-now > l.maxAhead {
		return stripped, ErrLinkTooLong
	}
	return stripped, nil
}

// presented copies the presented signature into m's scratch space, so
// the comparison needs no conversion (and no allocation).
func (m *linkMAC) presented(sig string) []byte {
	m.msg = append(m.msg[:0], sig...)
	return m.msg
}

// strip removes the link parameters, found between byte first and last
// of q, from q. When they are together (contiguous) and at q's start or
// end the result is a substring of q.
func strip(q string, first, last int, contiguous bool) string {
	if contiguous {
		// The parts before and after the link parameters, each without
		// the one "&" that separated it from them; either may be absent.
		hasBefore, hasAfter := first > 0, last < len(q)
		switch {
		case hasBefore && hasAfter:
			return q[:first-1] + "&" + q[last+1:]
		case hasBefore:
			return q[:first-1]
		case hasAfter:
			return q[last+1:]
		}
		return ""
	}
	var b strings.Builder
	b.Grow(len(q))
	kept := 0
	for seg := range strings.SplitSeq(q, "&") {
		name, _, _ := strings.Cut(seg, "=")
		if name == ParamExpires || name == ParamIP || name == ParamSignature {
			continue
		}
		if kept > 0 {
			b.WriteByte('&')
		}
		b.WriteString(seg)
		kept++
	}
	return b.String()
}
