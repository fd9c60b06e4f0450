package config

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gatehouse/signer"
)

// signer checks signer.s3 and signer.cloudfront; the CloudFront private
// key is parsed here, so a bad key is reported at load with its line.
func (v *validator) signer(s Signer) {
	if c := s.S3; c != nil {
		if c.Region == "" {
			v.add("signer.s3.region", "a region is required, such as eu-west-1")
		}
		if c.Endpoint != "" {
			if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.add("signer.s3.endpoint", "%q is not an absolute http(s) URL", c.Endpoint)
			}
		}
		v.secretValue("signer.s3.access_key_id", c.AccessKeyID)
		v.secretValue("signer.s3.secret_access_key", c.SecretAccessKey)
		if c.AccessKeyID.IsZero() != c.SecretAccessKey.IsZero() {
			v.add("signer.s3", "give both access_key_id and secret_access_key, or neither (the AWS SDK's default credential chain)")
		}
		if d := c.MaxExpires.D(); d < time.Second || d > signer.MaxS3Expires {
			v.add("signer.s3.max_expires", "%v is not between 1s and 7d (the SigV4 limit)", c.MaxExpires)
		}
	}
	c := s.CloudFront
	if c == nil {
		return
	}
	if !keyPairID(c.KeyPairID) {
		v.add("signer.cloudfront.key_pair_id", "%q is not a CloudFront public key ID (upper-case letters and digits, such as K2JCJMDEHXQW5F)", c.KeyPairID)
	}
	if c.PrivateKey.IsZero() {
		v.add("signer.cloudfront.private_key", "a private key is required; use file:PATH to a PEM RSA key")
	} else if v.secretValue("signer.cloudfront.private_key", c.PrivateKey) {
		if _, err := signer.ParsePrivateKey([]byte(c.PrivateKey.Value())); err != nil {
			v.add("signer.cloudfront.private_key", "%v", err)
		}
	}
	if c.MaxExpires.D() < time.Second {
		v.add("signer.cloudfront.max_expires", "%v is under 1s", c.MaxExpires)
	}
	if len(c.Domains) == 0 {
		v.add("signer.cloudfront.domains", "at least one distribution host name is required, such as d111111abcdef8.cloudfront.net")
	}
	seen := map[HostPattern]string{}
	for i, d := range c.Domains {
		field := "signer.cloudfront.domains[" + strconv.Itoa(i) + "]"
		_, ipErr := netip.ParseAddr(d.Name())
		switch first, dup := seen[d]; {
		case d == (HostPattern{}):
			v.add(field, "empty host name")
		case d.Wildcard():
			v.add(field, "%s: wildcards are not supported; list each distribution host name", d)
		case ipErr == nil:
			v.add(field, "%s is an IP address; CloudFront serves host names", d)
		case dup:
			v.add(field, "%s is already listed (line %d)", d, v.line(first))
		default:
			seen[d] = field
		}
	}
}

// signedLinks checks a host's signed_links: the keys as signer.NewLinks
// takes them (at least signer.MinLinkKey bytes, no repeats).
func (v *validator) signedLinks(p string, sl *SignedLinks) {
	if len(sl.Paths) == 0 {
		v.add(p+".paths", "at least one protected path is required")
	}
	for i, path := range sl.Paths {
		if !strings.HasPrefix(path, "/") {
			v.add(p+".paths["+strconv.Itoa(i)+"]", "%q must start with /", path)
		}
	}
	type key struct {
		field string
		s     Secret
	}
	var keys []key
	switch {
	case sl.Key.IsZero() && len(sl.Keys) == 0:
		v.add(p, "a key is required: key: env:NAME, or keys: [env:NEW, env:OLD] to rotate")
	case !sl.Key.IsZero() && len(sl.Keys) > 0:
		v.add(p+".keys", "give key or keys, not both")
	case !sl.Key.IsZero():
		keys = append(keys, key{p + ".key", sl.Key})
	}
	for i, k := range sl.Keys {
		keys = append(keys, key{p + ".keys[" + strconv.Itoa(i) + "]", k})
	}
	for i, k := range keys {
		if !v.secretValue(k.field, k.s) {
			continue
		}
		if n := len(k.s.Value()); n < signer.MinLinkKey {
			v.add(k.field, "the key is %d bytes; at least %d are needed (openssl rand -base64 48)", n, signer.MinLinkKey)
		}
		for _, prev := range keys[:i] {
			if prev.s.HasValue() && prev.s.digest == k.s.digest {
				v.add(k.field, "same key as %s (line %d)", prev.field, v.line(prev.field))
				break
			}
		}
	}
	if sl.MaxExpires.D() < time.Second {
		v.add(p+".max_expires", "%v is under 1s", sl.MaxExpires)
	}
	if sl.Query != SignedLinksQuerySign && sl.Query != SignedLinksQueryIgnore {
		v.add(p+".query", "%q is not one of %s, %s", sl.Query, SignedLinksQuerySign, SignedLinksQueryIgnore)
	}
}

// secretValue reports a secret given as sha256:, which a signer cannot
// use: it needs the key itself, not its digest. It returns whether the
// secret is set and usable.
func (v *validator) secretValue(field string, s Secret) bool {
	if !s.IsZero() && !s.HasValue() {
		v.add(field, "the gateway signs with this secret, so it needs the secret itself: use env:NAME or file:PATH, not sha256:")
		return false
	}
	return !s.IsZero()
}

// keyPairID matches CloudFront public key IDs (K2JCJMDEHXQW5F, APKA…).
func keyPairID(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}
