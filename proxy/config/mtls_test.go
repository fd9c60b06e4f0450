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
	"strings"
	"testing"
	"time"
)

// clientCA writes a CA certificate and a CRL it signs, valid until
// nextUpdate, into dir and returns their paths.
func clientCA(t *testing.T, dir, name string, nextUpdate time.Time) (caPath, crlPath string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: nextUpdate}, ca, k)
	if err != nil {
		t.Fatal(err)
	}
	caPath, crlPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".crl")
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crlPath, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caPath, crlPath
}

func TestClientCertsConfig(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "admin.example.com")
	ca, crl := clientCA(t, dir, "clients", time.Now().Add(time.Hour))
	_, otherCRL := clientCA(t, dir, "other", time.Now().Add(time.Hour))
	_, staleCRL := clientCA(t, dir, "stale", time.Now().Add(-time.Minute))
	staleCA := filepath.Join(dir, "stale.pem")
	tlsBlock := "tls:\n  certificates:\n    - {cert: " + cert + ", key: " + key + "}\n"
	host := func(cc string) string {
		return tlsBlock + "hosts:\n  - match: [admin.example.com]\n    upstreams: [http://127.0.0.1:1]\n    client_certs: " + cc + "\n"
	}
	f, err := Parse("t.yaml", []byte(host("{ca: "+ca+", crl: "+crl+"}")))
	if err != nil {
		t.Fatal(err)
	}
	if cc := f.Hosts[0].ClientCerts; cc == nil || cc.Mode != ClientCertsRequire || cc.Optional() {
		t.Errorf("client_certs = %+v, want mode require by default", cc)
	}
	f, err = Parse("t.yaml", []byte(host("{ca: "+ca+", mode: optional}")))
	if err != nil || !f.Hosts[0].ClientCerts.Optional() {
		t.Errorf("mode optional: %v, %+v", err, f)
	}
	for _, c := range []struct{ name, in, want string }{
		{"without tls", "hosts:\n  - match: [admin.example.com]\n    upstreams: [http://127.0.0.1:1]\n    client_certs: {ca: " + ca + "}\n",
			`t.yaml:4: hosts[0].client_certs: needs tls`},
		{"no ca", host("{mode: require}"), `t.yaml:7: hosts[0].client_certs.ca: required`},
		{"address as name", strings.Replace(host("{ca: "+ca+"}"), "match: [admin.example.com]", "match: [admin.example.com, 127.0.0.1]", 1),
			`t.yaml:5: hosts[0].match[1]: 127.0.0.1 is an address: a client never sends an address as TLS server name`},
		{"bad mode", host("{ca: " + ca + ", mode: always}"), `t.yaml:7: hosts[0].client_certs.mode: "always" is not one of require, optional`},
		{"missing ca", host("{ca: /nonexistent/ca.pem}"), `t.yaml:7: hosts[0].client_certs.ca: /nonexistent/ca.pem: no such file or directory`},
		{"ca without certificates", host("{ca: " + crl + "}"), `hosts[0].client_certs.ca: ` + crl + `: no PEM certificate in the file`},
		{"leaf as ca", host("{ca: " + cert + "}"), `hosts[0].client_certs.ca: ` + cert + `: certificate 1 (CN=admin.example.com) is not a CA certificate`},
		{"missing crl", host("{ca: " + ca + ", crl: /nonexistent/c.crl}"), `t.yaml:7: hosts[0].client_certs.crl: /nonexistent/c.crl: no such file or directory`},
		{"crl of another ca", host("{ca: " + ca + ", crl: " + otherCRL + "}"), `hosts[0].client_certs.crl: ` + otherCRL + `: CRL of CN=other is not signed by a certificate of the CA bundle`},
		{"crl not a crl", host("{ca: " + ca + ", crl: " + ca + "}"), `hosts[0].client_certs.crl: ` + ca + `: PEM block "CERTIFICATE" is not an X509 CRL`},
		{"typo", host("{ca: " + ca + ", crls: " + crl + "}"), `crls`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
	// A stale CRL loads (it may be replaced any minute) but check warns.
	f, err = Parse("t.yaml", []byte(host("{ca: "+staleCA+", crl: "+staleCRL+"}")))
	if err != nil {
		t.Fatalf("stale CRL: %v", err)
	}
	if w := f.Warnings.Error(); !strings.Contains(w, "t.yaml:7: hosts[0].client_certs.crl: warning: "+staleCRL+": the CRL of CN=stale is past its next update") {
		t.Errorf("warnings = %q, want the stale CRL", w)
	}
}
