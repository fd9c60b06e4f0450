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
// them before the request reaches the upstream.
const (
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
// versions the message format.
const linkDomain = "gatehouse-link-v1\n"

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
	// MaxExpires caps a link's validity. Zero: 24h.
	MaxExpires time.Duration
	// Now is the clock links are signed and checked with. Nil: time.Now.
	Now func() time.Time
}

// Links signs and verifies gateway-signed links: an expiry and an
// HMAC-SHA256 signature over method, host, canonical path and expiry,
// and the client address when the link is bound to one. Verification
// compares in constant time and does not allocate. Links is safe for
// concurrent use.
type Links struct {
	keys       []*linkKey
	bindIP     bool
	maxExpires time.Duration
	now        func() time.Time
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
	l := &Links{bindIP: cfg.BindIP, maxExpires: cfg.MaxExpires, now: cfg.Now}
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
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// mac computes the encoded signature of a link with key k into m.enc.
// HEAD is signed as GET: it is a GET without the body.
func (k *linkKey) mac(m *linkMAC, method, host, path string, expires int64, ip netip.Addr) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
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
	// The path goes last: it is the one field that may hold a newline,
	// and everything before it has a fixed shape.
	b = append(b, path...)
	m.msg = b[:0]
	m.h.Reset()
	m.h.Write(b)
	m.sum = m.h.Sum(m.sum[:0])
	base64.RawURLEncoding.Encode(m.enc[:], m.sum)
}

// Sign returns the query parameters ("gh_expires=…&gh_signature=…", with
// gh_ip=1 when ip is valid) of a link for method on host and path, the
// canonical ones the request will be checked with (host lower case
// without port; path as rules.Canonical gives it), signed with the first
// key.
func (l *Links) Sign(method, host, path string, expires time.Time, ip netip.Addr) string {
	k := l.keys[0]
	m := k.pool.Get().(*linkMAC)
	defer k.pool.Put(m)
	exp := expires.Unix()
	k.mac(m, method, host, path, exp, ip.Unmap())
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
// its canonical host and path its canonical path, the forms the gateway
// checks requests in. The link is u with the link parameters appended to
// its query. A request that cannot be signed as asked returns a
// *FieldError, one outside allowed a *PrefixError.
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
	for _, p := range []string{ParamExpires, ParamIP, ParamSignature} {
		if strings.Contains(u.RawQuery, p+"=") {
			return LinkResult{}, fieldErr("url", "already carries a %s parameter", p)
		}
	}
	if !allowed.Allow(path) {
		return LinkResult{}, &PrefixError{Field: "url", Resource: strings.TrimPrefix(path, "/")}
	}
	expires := l.now().UTC().Truncate(time.Second).Add(d)
	signed := *u
	q := l.Sign(method, host, path, expires, ip)
	if signed.RawQuery != "" {
		q = signed.RawQuery + "&" + q
	}
	signed.RawQuery = q
	signed.ForceQuery = false
	return LinkResult{URL: signed.String(), ExpiresAt: expires}, nil
}

// Verify checks the link parameters in rawQuery for a request of method
// on the canonical host and path from client, and returns rawQuery with
// the link parameters removed. A bound link verifies only from the
// address it was signed for. Every key is tried, each compared in
// constant time. Verify allocates only to rebuild a query whose link
// parameters are not together at its start or end.
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
		k.mac(m, method, host, path, expires, ip)
		good |= subtle.ConstantTimeCompare(m.enc[:], m.presented(sig))
		k.pool.Put(m)
	}
	if good != 1 {
		return stripped, ErrLinkSignature
	}
	if l.now().Unix() >= expires {
		return stripped, ErrLinkExpired
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
