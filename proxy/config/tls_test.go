package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a self-signed certificate for names and its key into
// dir and returns their paths.
func selfSigned(t *testing.T, dir string, names ...string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	base := strings.ReplaceAll(names[0], "*", "star")
	cert, key = filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	wCert, wKey := selfSigned(t, dir, "*.example.com")
	aCert, _ := selfSigned(t, dir, "a.example.org")
	state := t.TempDir()
	ok := `state_dir: ` + state + `
tls:
  acme: {email: ops@example.com, ca: staging}
  certificates:
    - {cert: ` + wCert + `, key: ` + wKey + `}
hosts:
  - match: [example.com, www.example.com, "*.example.com", localhost, 192.0.2.7]
    upstreams: [http://127.0.0.1:3000]
  - match: [shop.example.net]
    upstreams: [http://127.0.0.1:3001]
`
	f, err := Parse("t.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if f.Listen.HTTPS != ":443" || f.TLS.ACME.CA != LetsEncryptStaging {
		t.Errorf("defaults: https %q ca %q", f.Listen.HTTPS, f.TLS.ACME.CA)
	}
	if f.TLS.Certificates[0].Loaded == nil || !f.TLS.Certificates[0].Covers("x.example.com") {
		t.Error("static certificate not loaded")
	}
	// www.example.com is covered by the static wildcard; localhost and
	// the IP cannot be issued by a CA; example.com is listed once.
	if got, want := f.ManagedNames(), []string{"example.com", "shop.example.net"}; !slices.Equal(got, want) {
		t.Errorf("ManagedNames = %v, want %v", got, want)
	}
	if (&File{}).ManagedNames() != nil {
		t.Error("ManagedNames without tls is not nil")
	}

	for _, c := range []struct{ name, in, want string }{
		{"https without tls", "listen: {https: \":443\"}\n" + minimal,
			`t.yaml:1: listen.https: an HTTPS listener needs a tls block`},
		{"empty tls", "tls: {}\n" + minimal, `t.yaml:1: tls: give acme, certificates, or both`},
		{"acme without state_dir", "tls:\n  acme: {}\n" + minimal, `t.yaml:2: tls.acme: needs state_dir`},
		{"bad ca", "state_dir: " + state + "\ntls:\n  acme: {ca: http://ca.example/dir}\n" + minimal,
			`t.yaml:3: tls.acme.ca: "http://ca.example/dir" is not an https directory URL`},
		{"bad email", "state_dir: " + state + "\ntls:\n  acme: {email: ops}\n" + minimal,
			`t.yaml:3: tls.acme.email: "ops" is not an e-mail address`},
		{"missing ca_root", "state_dir: " + state + "\ntls:\n  acme: {ca_root: /nonexistent/root.pem}\n" + minimal,
			`t.yaml:3: tls.acme.ca_root: /nonexistent/root.pem: no such file`},
		{"ca_root not PEM", "state_dir: " + state + "\ntls:\n  acme: {ca_root: " + wKey + "}\n" + minimal,
			`tls.acme.ca_root: ` + wKey + ` holds no PEM certificate`},
		{"wildcard under acme", "state_dir: " + state + "\ntls:\n  acme: {}\nhosts:\n  - match: [a.example.org, \"*.example.org\"]\n    upstreams: [http://127.0.0.1:1]\n",
			`t.yaml:5: hosts[0].match[1]: *.example.org cannot get an ACME certificate (wildcards need the DNS-01 challenge)`},
		{"cert without key", "tls:\n  certificates:\n    - {cert: " + aCert + "}\n" + minimal,
			`t.yaml:3: tls.certificates[0].key: required`},
		{"mismatched pair", "tls:\n  certificates:\n    - {cert: " + aCert + ", key: " + wKey + "}\n" + minimal,
			`t.yaml:3: tls.certificates[0]: ` + aCert + ` / ` + wKey + `: tls: private key does not match public key`},
		{"https overlaps http", "listen: {http: \":8080\", https: \":8080\"}\ntls:\n  certificates:\n    - {cert: " + wCert + ", key: " + wKey + "}\n" + minimal,
			`t.yaml:1: listen.https: ":8080" overlaps listen.http ":8080"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}
