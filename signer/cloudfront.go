package signer

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/cloudfront/sign"
)

// minCloudFrontKeyBits is the smallest RSA key accepted: CloudFront key
// groups take 2048-bit keys.
const minCloudFrontKeyBits = 2048

// maxCloudFrontURL bounds a URL or resource pattern, so the wildcard
// match has bounded cost.
const maxCloudFrontURL = 4096

// CloudFrontConfig configures CloudFront signing (the config's
// signer.cloudfront).
type CloudFrontConfig struct {
	// KeyPairID is the ID of the public key in CloudFront (the signed
	// URL's Key-Pair-Id). Required.
	KeyPairID string
	// PrivateKey is the RSA key (at least 2048 bits) whose public half is
	// in the distribution's key group. Required; see ParsePrivateKey.
	PrivateKey *rsa.PrivateKey
	// Domains lists the distribution host names URLs may be signed for
	// (lower case, no port). Required.
	Domains []string
	// MaxExpires caps a signature's validity. Zero: 24h.
	MaxExpires time.Duration
	// Now is the clock policies are written at. Nil: time.Now.
	Now func() time.Time
}

// CloudFront signs CloudFront URLs and cookies with canned or custom
// policies (RSA-SHA1, the AWS SDK's feature/cloudfront/sign). It is safe
// for concurrent use.
type CloudFront struct {
	urls       *sign.URLSigner
	cookies    *sign.CookieSigner
	domains    []string
	maxExpires time.Duration
	now        func() time.Time
}

// ParsePrivateKey parses a PEM RSA private key: PKCS#1 ("BEGIN RSA
// PRIVATE KEY", openssl genrsa -traditional) or PKCS#8 ("BEGIN PRIVATE
// KEY", openssl genpkey). Encrypted keys, other key types and keys under
// 2048 bits are refused. Errors never quote the key.
func ParsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found; want an RSA private key in PEM (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)")
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return nil, errors.New("the key is encrypted; store it decrypted (openssl pkey -in KEY -out PLAIN) and protect the file instead")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS#1 RSA private key: %w", err)
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS#8 private key: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("PKCS#8 private key is a %T; CloudFront needs RSA", k)
		}
		key = rk
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key; want BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY", block.Type)
	}
	if bits := key.N.BitLen(); bits < minCloudFrontKeyBits {
		return nil, fmt.Errorf("RSA key of %d bits; CloudFront needs at least %d", bits, minCloudFrontKeyBits)
	}
	return key, nil
}

// NewCloudFront builds a CloudFront signer.
func NewCloudFront(cfg CloudFrontConfig) (*CloudFront, error) {
	if cfg.KeyPairID == "" {
		return nil, errors.New("cloudfront signer: a key pair ID is required")
	}
	if cfg.PrivateKey == nil {
		return nil, errors.New("cloudfront signer: a private key is required")
	}
	if len(cfg.Domains) == 0 {
		return nil, errors.New("cloudfront signer: at least one domain is required")
	}
	for _, d := range cfg.Domains {
		if d == "" || d != strings.ToLower(d) || strings.ContainsAny(d, ":/*?@ ") {
			return nil, fmt.Errorf("cloudfront signer: domain %q is not a lower-case host name", d)
		}
	}
	switch {
	case cfg.MaxExpires == 0:
		cfg.MaxExpires = defaultMaxExpires
	case cfg.MaxExpires < time.Second:
		return nil, fmt.Errorf("cloudfront signer: max expires %s is under 1s", cfg.MaxExpires)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &CloudFront{
		urls:       sign.NewURLSigner(cfg.KeyPairID, cfg.PrivateKey),
		cookies:    sign.NewCookieSigner(cfg.KeyPairID, cfg.PrivateKey),
		domains:    slices.Clone(cfg.Domains),
		maxExpires: cfg.MaxExpires,
		now:        cfg.Now,
	}, nil
}

// CloudFrontResult is a signed CloudFront URL, or signed cookies.
type CloudFrontResult struct {
	// URL is the signed URL; empty for cookies.
	URL string `json:"url,omitempty"`
	// Cookies are the signed cookies (CloudFront-Policy,
	// CloudFront-Signature, CloudFront-Key-Pair-Id); empty for a URL.
	Cookies []Cookie `json:"cookies,omitempty"`
	// ExpiresAt is when the signature stops working (RFC 3339, UTC).
	ExpiresAt time.Time `json:"expires_at"`
}

// Cookie is one signed cookie, for the backend to pass on to the viewer.
type Cookie struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Path is "/". The backend sets the Domain: the CloudFront host
	// itself or a parent domain the backend's own host shares with it.
	Path string `json:"path"`
	// Expires is the policy's expiry, so browsers drop the cookie with it.
	Expires  time.Time `json:"expires"`
	Secure   bool      `json:"secure"`
	HTTPOnly bool      `json:"http_only"`
	// SetCookie is the whole Set-Cookie header value.
	SetCookie string `json:"set_cookie"`
}

// Sign signs req for a token allowed the resources in allowed (nil: any).
// Without not_before, ip_range, resource and cookies the URL carries a
// canned policy (Expires=); otherwise a custom policy (Policy=). A
// request that cannot be signed as asked returns a *FieldError — among
// them a URL on a domain not configured — and one outside allowed a
// *PrefixError.
func (c *CloudFront) Sign(req CloudFrontRequest, allowed Prefixes) (CloudFrontResult, error) {
	u, err := c.parseURL("url", req.URL, req.Cookies)
	if err != nil {
		return CloudFrontResult{}, err
	}
	resource := u
	if req.Resource != "" {
		if resource, err = c.parseURL("resource", req.Resource, true); err != nil {
			return CloudFrontResult{}, err
		}
		if !globMatch(resource.String(), u.String()) {
			return CloudFrontResult{}, fieldErr("resource", "%q does not match url %q", req.Resource, req.URL)
		}
	}
	d, err := validity(req.Expires, c.maxExpires)
	if err != nil {
		return CloudFrontResult{}, err
	}
	for _, p := range []struct {
		field string
		u     cfURL
	}{{"url", u}, {"resource", resource}} {
		if !allowed.Allow(p.u.path) {
			return CloudFrontResult{}, &PrefixError{Field: p.field, Resource: p.u.path}
		}
	}

	now := c.now().UTC().Truncate(time.Second)
	expires := now.Add(d)
	cond := sign.Condition{DateLessThan: sign.NewAWSEpochTime(expires)}
	if req.NotBefore != nil {
		nb := req.NotBefore.UTC().Truncate(time.Second)
		if !nb.Before(expires) {
			return CloudFrontResult{}, fieldErr("not_before", "%s is not before the expiry %s", nb.Format(time.RFC3339), expires.Format(time.RFC3339))
		}
		cond.DateGreaterThan = sign.NewAWSEpochTime(nb)
	}
	if req.IPRange != "" {
		p, err := parseIPRange(req.IPRange)
		if err != nil {
			return CloudFrontResult{}, err
		}
		cond.IPAddress = &sign.IPAddress{SourceIP: p.String()}
	}
	policy := &sign.Policy{Statements: []sign.Statement{{Resource: resource.String(), Condition: cond}}}
	custom := req.NotBefore != nil || req.IPRange != "" || req.Resource != ""

	res := CloudFrontResult{ExpiresAt: expires}
	if req.Cookies {
		cookies, err := c.cookies.SignWithPolicy(policy, func(o *sign.CookieOptions) {
			o.Path = "/"
			o.Secure = u.scheme == "https"
			o.Expires = expires
		})
		if err != nil {
			return CloudFrontResult{}, fmt.Errorf("sign cloudfront cookies: %w", err)
		}
		for _, ck := range cookies {
			res.Cookies = append(res.Cookies, Cookie{Name: ck.Name, Value: ck.Value, Path: ck.Path,
				Expires: ck.Expires.UTC(), Secure: ck.Secure, HTTPOnly: ck.HttpOnly, SetCookie: ck.String()})
		}
		return res, nil
	}
	if custom {
		res.URL, err = c.urls.SignWithPolicy(u.String(), policy)
	} else {
		res.URL, err = c.urls.Sign(u.String(), expires)
	}
	if err != nil {
		return CloudFrontResult{}, fmt.Errorf("sign cloudfront url: %w", err)
	}
	return res, nil
}

// cfURL is a URL or resource pattern taken apart as CloudFront reads it.
type cfURL struct {
	scheme, host string
	rest         string // path and query as written, from the first "/"
	path         string // for the prefix check: decoded path (URL) or rest (pattern), no leading "/"
}

func (u cfURL) String() string { return u.scheme + "://" + u.host + u.rest }

// cloudFrontParams are the query parameters CloudFront reads as the
// signature's; a URL must not carry them already.
var cloudFrontParams = []string{"Expires", "Policy", "Signature", "Key-Pair-Id"}

// parseURL checks a URL (pattern true: a resource pattern with "*" and
// "?" wildcards) against the configured domains and the path rules: a
// path must be in canonical form — no "." or ".." segment, no empty
// segment, no encoded "/", "\", "." or NUL — so that the prefix checked is
// the prefix CloudFront and its origin serve.
func (c *CloudFront) parseURL(field, s string, pattern bool) (cfURL, error) {
	var u cfURL
	if len(s) > maxCloudFrontURL {
		return u, fieldErr(field, "longer than %d bytes", maxCloudFrontURL)
	}
	if s == "" {
		return u, fieldErr(field, "a URL is required")
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "https" && scheme != "http") {
		return u, fieldErr(field, "%q is not an https:// or http:// URL", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '#' || c == '\\' {
			return u, fieldErr(field, "%q has a space, control, non-ASCII, \"#\" or \"\\\" character; percent-encode the path", s)
		}
	}
	host := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, rest = rest[:i], rest[i:]
	} else {
		rest = ""
	}
	host = strings.ToLower(host)
	if !slices.Contains(c.domains, host) {
		return u, fieldErr(field, "host %q is not one of signer.cloudfront.domains (%s)", host, strings.Join(c.domains, ", "))
	}
	if rest == "" {
		return u, fieldErr(field, "%q has no path", s)
	}
	u = cfURL{scheme: scheme, host: host, rest: rest}
	if !pattern {
		if strings.ContainsRune(rest, '*') {
			return u, fieldErr(field, "%q has a \"*\"; wildcards belong in resource, or sign cookies", s)
		}
		escaped, _, _ := strings.Cut(rest, "?")
		if err := canonicalPath(field, escaped); err != nil {
			return u, err
		}
		pu, err := url.Parse(u.String())
		if err != nil {
			return u, fieldErr(field, "%q is not a URL: %v", s, errors.Unwrap(err))
		}
		q := pu.Query()
		for _, p := range cloudFrontParams {
			if q.Has(p) {
				return u, fieldErr(field, "%q already has a %s parameter", s, p)
			}
		}
		u.path = strings.TrimPrefix(pu.Path, "/")
		return u, nil
	}
	// In a pattern "?" is a wildcard as well as the start of the query,
	// so the whole of it is held to the path rules.
	if err := canonicalPath(field, rest); err != nil {
		return u, err
	}
	u.path = strings.TrimPrefix(rest, "/")
	return u, nil
}

// canonicalPath refuses a percent-encoded path that is not in canonical
// form (see parseURL).
func canonicalPath(field, p string) error {
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return fieldErr(field, "path %q has a bad percent-escape", p)
		}
		switch strings.ToUpper(p[i+1 : i+3]) {
		case "2F", "5C", "2E", "00":
			return fieldErr(field, "path %q has an encoded \"/\", \"\\\", \".\" or NUL", p)
		}
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs[1:] {
		last := i == len(segs)-2
		if seg == "." || seg == ".." || (seg == "" && !last) {
			return fieldErr(field, "path %q is not in canonical form (a \".\", \"..\" or empty segment)", p)
		}
	}
	return nil
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// parseIPRange parses a CIDR prefix, or an address as a prefix of one.
func parseIPRange(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, fieldErr("ip_range", "%q is not a CIDR prefix such as 203.0.113.0/24", s)
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fieldErr("ip_range", "%q is an IPv4-mapped prefix; write it as IPv4", s)
		}
		if p != p.Masked() {
			return netip.Prefix{}, fieldErr("ip_range", "%s has host bits set; did you mean %s?", s, p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fieldErr("ip_range", "%q is not an address or CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// globMatch reports whether s matches pattern, where "*" matches any run
// of bytes (also none) and "?" exactly one, as in CloudFront policies.
// It runs in O(len(pattern)·len(s)) at worst.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			// First: a "*" in the pattern is a wildcard even where the
			// text has a "*" too.
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
