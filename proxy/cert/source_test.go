package cert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http/httptest"
	"testing"
	"time"
)

// selfSigned returns a certificate for names, Leaf set, expiring at notAfter.
func selfSigned(t *testing.T, notAfter time.Time, names ...string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    notAfter.Add(-time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestSourceStatic: without ACME the first static certificate valid for
// the SNI name is served, a handshake without SNI gets the first one, an
// unknown name none; Covers, Certificates and Expiries agree; Update
// swaps the set.
func TestSourceStatic(t *testing.T) {
	t.Parallel()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	wild := selfSigned(t, exp, "*.example.com")
	www := selfSigned(t, exp.Add(time.Hour), "www.example.com", "example.com")
	s := New(Config{Static: []*tls.Certificate{wild, www}, Managed: []string{"ignored.example.net"}})
	for _, tc := range []struct {
		sni  string
		want *tls.Certificate
	}{
		{"", wild},
		{"www.example.com", wild}, // first in config order wins
		{"WWW.Example.com.", wild},
		{"example.com", www},
	} {
		got, err := s.getCertificate(&tls.ClientHelloInfo{ServerName: tc.sni})
		if err != nil || got != tc.want {
			t.Errorf("getCertificate(%q) = %v, %v, want %s", tc.sni, got, err, tc.want.Leaf.Subject.CommonName)
		}
	}
	if _, err := s.getCertificate(&tls.ClientHelloInfo{ServerName: "example.org"}); !errors.Is(err, errNoCertificate) {
		t.Errorf("getCertificate(example.org) error = %v, want %v", err, errNoCertificate)
	}
	if !s.Covers("a.example.com") || s.Covers("example.org") || s.Covers("ignored.example.net") {
		t.Error("Covers: want a.example.com only, managed names ignored without ACME")
	}
	if infos := s.Certificates(); len(infos) != 2 || infos[0].Name != "*.example.com" || infos[1].Name != "www.example.com" || infos[1].Managed {
		t.Errorf("Certificates() = %+v, want the two static ones by first name", infos)
	}
	e := s.Expiries()
	if !e["*.example.com"].Equal(exp) || !e["www.example.com"].Equal(exp.Add(time.Hour)) || !e["example.com"].Equal(exp.Add(time.Hour)) || len(e) != 3 {
		t.Errorf("Expiries() = %v", e)
	}

	s.Update(Config{Static: []*tls.Certificate{www}})
	if got, _ := s.getCertificate(&tls.ClientHelloInfo{ServerName: "www.example.com"}); got != www {
		t.Errorf("after Update, getCertificate(www.example.com) = %v, want the remaining certificate", got)
	}
	if s.Covers("a.example.com") {
		t.Error("after Update, Covers(a.example.com) = true, want false")
	}
	if cfg := s.TLSConfig(); cfg.MinVersion != tls.VersionTLS12 || len(cfg.NextProtos) != 2 {
		t.Errorf("TLSConfig() = min %x, protos %v; want TLS 1.2, h2 and http/1.1 without ACME", cfg.MinVersion, cfg.NextProtos)
	}
}

// TestSourceRedirect: plain HTTP is redirected to the bound HTTPS port,
// which is left out when it is 443; IPv6 literals get brackets.
func TestSourceRedirect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		port int
		name string
		want string
	}{
		{8443, "example.com", "https://example.com:8443/a?b=c"},
		{443, "example.com", "https://example.com/a?b=c"},
		{443, "2001:db8::1", "https://[2001:db8::1]/a?b=c"},
	} {
		s := New(Config{})
		http := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}
		if err := s.Start(t.Context(), http, &net.TCPAddr{IP: net.IPv4zero, Port: tc.port}); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		s.Redirect(w, httptest.NewRequest("GET", "/a?b=c", nil), tc.name)
		if w.Code != 308 || w.Header().Get("Location") != tc.want {
			t.Errorf("Redirect(%s) on port %d = %d %q, want 308 %q", tc.name, tc.port, w.Code, w.Header().Get("Location"), tc.want)
		}
	}
}

// TestNilSource: the methods documented so do nothing on a nil Source
// (HTTPS off).
func TestNilSource(t *testing.T) {
	t.Parallel()
	var s *Source
	s.Update(Config{})
	if err := s.HandOver(0, 0); err != nil {
		t.Errorf("HandOver = %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop = %v", err)
	}
	if s.HandleChallenge(httptest.NewRecorder(), httptest.NewRequest("GET", "/.well-known/acme-challenge/x", nil)) {
		t.Error("HandleChallenge = true, want false")
	}
}
