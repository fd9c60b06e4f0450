package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// ACME directories selectable by name in tls.acme.ca.
const (
	LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging    = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

var acmeCANames = map[string]string{
	"letsencrypt":         LetsEncryptProduction,
	"production":          LetsEncryptProduction,
	"letsencrypt-staging": LetsEncryptStaging,
	"staging":             LetsEncryptStaging,
}

// TLS turns on the HTTPS listener (key tls). nil: plain HTTP only, as
// behind a TLS-terminating load balancer.
type TLS struct {
	// ACME obtains and renews certificates for every exact host name in
	// hosts[].match (key tls.acme). nil: static certificates only.
	ACME *ACME `yaml:"acme"`
	// Certificates are static cert/key pairs served by SNI beside the
	// managed ones; they win over ACME for the names they cover (key
	// tls.certificates).
	Certificates []CertPair `yaml:"certificates"`
}

// ACME configures automatic certificates (key tls.acme).
type ACME struct {
	// Email is the ACME account contact, for expiry notices. Optional.
	Email string `yaml:"email"`
	// CA is the ACME directory URL, or one of the names letsencrypt
	// (production), staging. Default: Let's Encrypt production.
	CA string `yaml:"ca"`
	// CARoot is a PEM file of extra roots trusted for the CA's own HTTPS
	// endpoint, for a private or test CA (key tls.acme.ca_root).
	CARoot string `yaml:"ca_root"`

	// Roots is CARoot loaded; nil without CARoot. Set by validation.
	Roots *x509.CertPool `yaml:"-"`
}

// CertPair is one static certificate (key tls.certificates[]).
type CertPair struct {
	// Cert is the PEM certificate chain file, leaf first.
	Cert string `yaml:"cert"`
	// Key is the PEM private key file.
	Key string `yaml:"key"`

	// Loaded is the pair parsed, Leaf set. Set by validation, which
	// therefore reports an unreadable or mismatched pair with its line.
	Loaded *tls.Certificate `yaml:"-"`
}

// Covers reports whether the static certificate is valid for name.
func (c CertPair) Covers(name string) bool {
	return c.Loaded != nil && c.Loaded.Leaf != nil && c.Loaded.Leaf.VerifyHostname(name) == nil
}

// TLSOn reports whether the HTTPS listener is configured.
func (f *File) TLSOn() bool { return f.TLS != nil }

// ManagedNames returns the exact host names ACME obtains certificates
// for: every exact name in hosts[].match that no static certificate
// covers and that a public CA could issue for. Nil without tls.acme.
func (f *File) ManagedNames() []string {
	if f.TLS == nil || f.TLS.ACME == nil {
		return nil
	}
	var names []string
	seen := map[string]bool{}
	for _, h := range f.Hosts {
		for _, m := range h.Match {
			name := m.Name()
			if m.Wildcard() || seen[name] || f.staticCovers(name) || !acmeQualifies(name) {
				continue
			}
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}

func (f *File) staticCovers(name string) bool {
	for _, c := range f.TLS.Certificates {
		if c.Covers(name) {
			return true
		}
	}
	return false
}

// acmeQualifies reports whether an ACME CA could issue for name over
// HTTP-01 or TLS-ALPN-01: a DNS name with a dot, neither an IP address nor
// localhost. Internal names (app.internal) qualify: private CAs issue
// for them.
func acmeQualifies(name string) bool {
	if name == "localhost" || strings.HasSuffix(name, ".localhost") || !strings.Contains(name, ".") {
		return false
	}
	_, err := netip.ParseAddr(name)
	return err != nil && checkDNSName(name) == nil
}

func applyTLSDefaults(f *File) {
	if f.TLS == nil {
		return
	}
	if f.Listen.HTTPS == "" {
		f.Listen.HTTPS = ":443"
	}
	if a := f.TLS.ACME; a != nil {
		if a.CA == "" {
			a.CA = LetsEncryptProduction
		} else if u, ok := acmeCANames[strings.ToLower(a.CA)]; ok {
			a.CA = u
		}
	}
}

// tls checks the tls block and loads its files. It runs after hosts and
// state_dir are checked.
func (v *validator) tls(f *File) {
	if f.TLS == nil {
		if f.Listen.HTTPS != "" {
			v.add("listen.https", "an HTTPS listener needs a tls block (acme, certificates or both)")
		}
		return
	}
	t := f.TLS
	if t.ACME == nil && len(t.Certificates) == 0 {
		v.add("tls", "give acme, certificates, or both")
	}
	if v.hostPort("listen.https", f.Listen.HTTPS) {
		if overlap(f.Listen.HTTP, f.Listen.HTTPS) {
			v.add("listen.https", "%q overlaps listen.http %q", f.Listen.HTTPS, f.Listen.HTTP)
		}
		if f.Admin.Listen != "off" && overlap(f.Admin.Listen, f.Listen.HTTPS) {
			v.add("admin.listen", "%q overlaps listen.https %q; give the admin API its own port", f.Admin.Listen, f.Listen.HTTPS)
		}
	}
	for i := range t.Certificates {
		v.certPair("tls.certificates["+strconv.Itoa(i)+"]", &t.Certificates[i])
	}
	a := t.ACME
	if a == nil {
		return
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t<>")) {
		v.add("tls.acme.email", "%q is not an e-mail address", a.Email)
	}
	if u, err := url.Parse(a.CA); err != nil || u.Scheme != "https" || u.Host == "" {
		v.add("tls.acme.ca", "%q is not an https directory URL nor one of letsencrypt, staging", a.CA)
	}
	if a.CARoot != "" {
		a.Roots = v.roots("tls.acme.ca_root", a.CARoot)
	}
	if f.StateDir == "" {
		v.add("tls.acme", "needs state_dir: the ACME account and certificates are kept in state_dir/certs, so a restart does not ask the CA again")
	}
	for i, h := range f.Hosts {
		for j, m := range h.Match {
			if m.Wildcard() && !f.staticCovers("gatehouse-check."+m.Name()) {
				v.add("hosts["+strconv.Itoa(i)+"].match["+strconv.Itoa(j)+"]",
					"%s cannot get an ACME certificate (wildcards need the DNS-01 challenge); add a static certificate for it under tls.certificates, or list the names", m)
			}
		}
	}
}

func (v *validator) certPair(field string, c *CertPair) {
	if c.Cert == "" {
		v.add(field+".cert", "required: the PEM certificate file")
	}
	if c.Key == "" {
		v.add(field+".key", "required: the PEM private key file")
	}
	if c.Cert == "" || c.Key == "" {
		return
	}
	pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		v.add(field, "%s / %s: %v", c.Cert, c.Key, pathErr(err))
		return
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			v.add(field+".cert", "%s: %v", c.Cert, err)
			return
		}
	}
	c.Loaded = &pair
}

func (v *validator) roots(field, path string) *x509.CertPool {
	data, err := os.ReadFile(path)
	if err != nil {
		v.add(field, "%s: %v", path, pathErr(err))
		return nil
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			v.add(field, "%s: certificate %d: %v", path, n+1, err)
			return nil
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		v.add(field, "%s holds no PEM certificate", path)
		return nil
	}
	return pool
}
