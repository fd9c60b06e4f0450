package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rsaKey is one 2048-bit key for the signer tests; generating it is slow.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// secretFiles writes each name → content into a fresh directory and
// returns a replacer turning "file:NAME" into "file:/full/path/NAME".
func secretFiles(t *testing.T, files map[string]string) *strings.Replacer {
	t.Helper()
	dir := t.TempDir()
	var pairs []string
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, "file:"+name, "file:"+p)
	}
	return strings.NewReplacer(pairs...)
}

func signerFiles(t *testing.T) *strings.Replacer {
	t.Helper()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(rsaKey())
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	return secretFiles(t, map[string]string{
		"pkcs1.pem":  enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey())),
		"pkcs8.pem":  enc("PRIVATE KEY", pkcs8),
		"small.pem":  enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)),
		"ec.pem":     enc("PRIVATE KEY", ecDER),
		"garbage":    "not a key\n",
		"link-a":     "link-key-a-0123456789abcdef0123456789\n",
		"link-b":     "link-key-b-0123456789abcdef0123456789\n",
		"link-short": "too-short\n",
		"aws-id":     "AKIDEXAMPLE\n",
		"aws-secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
	})
}

func TestParseSigner(t *testing.T) {
	t.Parallel()
	files := signerFiles(t)
	in := files.Replace(`hosts:
  - match: [media.example.com]
    upstreams: [http://127.0.0.1:5000]
    signed_links:
      paths: ["/paid/"]
      keys: [file:link-a, file:link-b]
      bind_ip: true
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:5001]
    signed_links: {paths: ["/videos/"], key: file:link-a, max_expires: 2h, query: ignore}
signer:
  s3:
    region: eu-west-1
    endpoint: http://127.0.0.1:7070
    path_style: true
    access_key_id: file:aws-id
    secret_access_key: file:aws-secret
  cloudfront:
    key_pair_id: K2JCJMDEHXQW5F
    private_key: file:pkcs8.pem
    max_expires: 6h
    domains: [D111111abcdef8.cloudfront.net., cdn.example.com]
`)
	f, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	sl := f.Hosts[0].SignedLinks
	if sl == nil || len(sl.Keys) != 2 || sl.Keys[0].Value() != "link-key-a-0123456789abcdef0123456789" || !sl.BindIP || sl.MaxExpires.D() != 24*time.Hour || sl.Query != "sign" {
		t.Errorf("hosts[0].signed_links = %+v, want two keys, bind_ip, max_expires defaulted to 24h, query defaulted to sign", sl)
	}
	if sl := f.Hosts[1].SignedLinks; sl.Key.Value() != "link-key-a-0123456789abcdef0123456789" || sl.MaxExpires.D() != 2*time.Hour || sl.BindIP || sl.Query != "ignore" {
		t.Errorf("hosts[1].signed_links = %+v", sl)
	}
	s3 := f.Signer.S3
	if s3 == nil || s3.Region != "eu-west-1" || !s3.PathStyle || s3.AccessKeyID.Value() != "AKIDEXAMPLE" || s3.MaxExpires.D() != 24*time.Hour {
		t.Errorf("signer.s3 = %+v", s3)
	}
	cf := f.Signer.CloudFront
	if cf == nil || cf.MaxExpires.D() != 6*time.Hour || len(cf.Domains) != 2 || cf.Domains[0].String() != "d111111abcdef8.cloudfront.net" {
		t.Errorf("signer.cloudfront = %+v, want max 6h and the first domain normalised", cf)
	}
	if strings.Contains(f.Summary(), "link-key") {
		t.Errorf("Summary leaks a key: %s", f.Summary())
	}
	// PKCS#1 is read as well as PKCS#8.
	if _, err := Parse("t.yaml", []byte(strings.Replace(in, "pkcs8.pem", "pkcs1.pem", 1))); err != nil {
		t.Errorf("a PKCS#1 key: %v", err)
	}
}

func TestParseSignerErrors(t *testing.T) {
	t.Parallel()
	files := signerFiles(t)
	host := func(signedLinks string) string {
		return minimal + "    signed_links:\n" + signedLinks
	}
	cloudfront := func(lines string) string {
		return minimal + "signer:\n  cloudfront:\n" + lines
	}
	s3 := func(lines string) string {
		return minimal + "signer:\n  s3:\n" + lines
	}
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "links without paths", in: host("      key: file:link-a\n"), wantErr: "t.yaml:4: hosts[0].signed_links.paths: at least one protected path is required"},
		{name: "links relative path", in: host("      key: file:link-a\n      paths: [paid/]\n"), wantErr: `t.yaml:6: hosts[0].signed_links.paths[0]: "paid/" must start with /`},
		{name: "links without key", in: host("      paths: [/paid/]\n"), wantErr: "t.yaml:4: hosts[0].signed_links: a key is required"},
		{name: "links key and keys", in: host("      paths: [/paid/]\n      key: file:link-a\n      keys: [file:link-b]\n"), wantErr: "t.yaml:7: hosts[0].signed_links.keys: give key or keys, not both"},
		{name: "links short key", in: host("      paths: [/paid/]\n      keys:\n        - file:link-a\n        - file:link-short\n"), wantErr: "t.yaml:8: hosts[0].signed_links.keys[1]: the key is 9 bytes; at least 32 are needed"},
		{name: "links repeated key", in: host("      paths: [/paid/]\n      keys:\n        - file:link-a\n        - file:link-a\n"), wantErr: "t.yaml:8: hosts[0].signed_links.keys[1]: same key as hosts[0].signed_links.keys[0] (line 7)"},
		{name: "links digest key", in: host("      paths: [/paid/]\n      key: sha256:" + strings.Repeat("ab", 32) + "\n"), wantErr: "t.yaml:6: hosts[0].signed_links.key: the gateway signs with this secret, so it needs the secret itself"},
		{name: "links inline key", in: host("      paths: [/paid/]\n      key: hunter2hunter2hunter2hunter2hunter2\n"), wantErr: "t.yaml:6: hosts[0].signed_links.key: inline secrets are refused"},
		{name: "links query mode", in: host("      paths: [/paid/]\n      key: file:link-a\n      query: ignored\n"), wantErr: `t.yaml:7: hosts[0].signed_links.query: "ignored" is not one of sign, ignore`},
		{name: "links tiny max", in: host("      paths: [/paid/]\n      key: file:link-a\n      max_expires: 10ms\n"), wantErr: "t.yaml:7: hosts[0].signed_links.max_expires: 10ms is under 1s"},
		{name: "s3 without region", in: s3("    path_style: true\n"), wantErr: "t.yaml:5: signer.s3.region: a region is required"},
		{name: "s3 bad endpoint", in: s3("    region: r\n    endpoint: 127.0.0.1:7070\n"), wantErr: `t.yaml:7: signer.s3.endpoint: "127.0.0.1:7070" is not an absolute http(s) URL`},
		{name: "s3 half credentials", in: s3("    region: r\n    access_key_id: file:aws-id\n"), wantErr: "t.yaml:5: signer.s3: give both access_key_id and secret_access_key, or neither"},
		{name: "s3 digest secret", in: s3("    region: r\n    access_key_id: file:aws-id\n    secret_access_key: sha256:" + strings.Repeat("ab", 32) + "\n"), wantErr: "t.yaml:8: signer.s3.secret_access_key: the gateway signs with this secret"},
		{name: "s3 over SigV4", in: s3("    region: r\n    max_expires: 8d\n"), wantErr: "t.yaml:7: signer.s3.max_expires: 8d is not between 1s and 7d"},
		{name: "cloudfront bad key id", in: cloudfront("    key_pair_id: k-1\n    private_key: file:pkcs1.pem\n    domains: [cdn.example.com]\n"), wantErr: `t.yaml:6: signer.cloudfront.key_pair_id: "k-1" is not a CloudFront public key ID`},
		{name: "cloudfront no key", in: cloudfront("    key_pair_id: K1\n    domains: [cdn.example.com]\n"), wantErr: "t.yaml:5: signer.cloudfront.private_key: a private key is required"},
		{name: "cloudfront garbage key", in: cloudfront("    key_pair_id: K1\n    private_key: file:garbage\n    domains: [cdn.example.com]\n"), wantErr: "t.yaml:7: signer.cloudfront.private_key: no PEM block found"},
		{name: "cloudfront EC key", in: cloudfront("    key_pair_id: K1\n    private_key: file:ec.pem\n    domains: [cdn.example.com]\n"), wantErr: "t.yaml:7: signer.cloudfront.private_key: PKCS#8 private key is a *ecdsa.PrivateKey; CloudFront needs RSA"},
		{name: "cloudfront small key", in: cloudfront("    key_pair_id: K1\n    private_key: file:small.pem\n    domains: [cdn.example.com]\n"), wantErr: "t.yaml:7: signer.cloudfront.private_key: RSA key of 1024 bits; CloudFront needs at least 2048"},
		{name: "cloudfront missing key file", in: cloudfront("    key_pair_id: K1\n    private_key: file:/nonexistent/cf.pem\n    domains: [cdn.example.com]\n"), wantErr: "t.yaml:7: signer.cloudfront.private_key: file:/nonexistent/cf.pem: no such file or directory"},
		{name: "cloudfront no domains", in: cloudfront("    key_pair_id: K1\n    private_key: file:pkcs1.pem\n"), wantErr: "t.yaml:5: signer.cloudfront.domains: at least one distribution host name is required"},
		{name: "cloudfront wildcard domain", in: cloudfront("    key_pair_id: K1\n    private_key: file:pkcs1.pem\n    domains: [\"*.cloudfront.net\"]\n"), wantErr: "t.yaml:8: signer.cloudfront.domains[0]: *.cloudfront.net: wildcards are not supported"},
		{name: "cloudfront IP domain", in: cloudfront("    key_pair_id: K1\n    private_key: file:pkcs1.pem\n    domains: [192.0.2.1]\n"), wantErr: "t.yaml:8: signer.cloudfront.domains[0]: 192.0.2.1 is an IP address"},
		{name: "cloudfront repeated domain", in: cloudfront("    key_pair_id: K1\n    private_key: file:pkcs1.pem\n    domains:\n      - cdn.example.com\n      - CDN.example.com\n"), wantErr: "t.yaml:10: signer.cloudfront.domains[1]: cdn.example.com is already listed (line 9)"},
		{name: "unknown signer key", in: minimal + "signer:\n  gcs: {}\n", wantErr: `t.yaml:5: signer.gcs: unknown key; allowed: s3, cloudfront`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(files.Replace(tc.in)))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse = %v\nwant an error containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "link-key-") || strings.Contains(err.Error(), "-----BEGIN") || strings.Contains(err.Error(), "MII") {
				t.Errorf("the error quotes a secret: %v", err)
			}
		})
	}
}
