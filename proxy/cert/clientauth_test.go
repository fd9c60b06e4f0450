package cert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testPKI is a certificate authority made by the test, its PEM file
// written in dir.
type testPKI struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	caPath string
	dir    string
}

func newTestPKI(t testing.TB, name string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	p := &testPKI{cert: c, key: key, dir: dir, caPath: filepath.Join(dir, name+".pem")}
	writePEM(t, p.caPath, "CERTIFICATE", der)
	return p
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	// Written aside and renamed, as tools replace such files.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// issue makes a certificate signed by p: a client certificate unless
// names are given (then a server one for them).
func (p *testPKI) issue(t testing.TB, cn string, serial int64, notBefore, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Example"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     names,
	}
	if len(names) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func (p *testPKI) client(t testing.TB, cn string, serial int64) tls.Certificate {
	return p.issue(t, cn, serial, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// writeCRL writes a CRL of p revoking serials, valid until nextUpdate.
func (p *testPKI) writeCRL(t testing.TB, path string, nextUpdate time.Time, serials ...int64) {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: nextUpdate}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "X509 CRL", der)
}

// mtlsServer is a TLS listener with Source's config: one server
// certificate for every name, mtls.example.com asking for certificates
// of ca1 (with a CRL), other.example.com for those of ca2,
// opt.example.com optionally for ca1, open.example.com for none.
type mtlsServer struct {
	addr     string
	roots    *x509.CertPool
	ca1, ca2 *testPKI
	crl      string
	auth     *ClientAuth

	mu       sync.Mutex
	failures []string // host/reason
}

var testNames = []string{"mtls.example.com", "other.example.com", "opt.example.com", "open.example.com"}

func startMTLS(t *testing.T) *mtlsServer {
	t.Helper()
	srvCA := newTestPKI(t, "server-ca")
	s := &mtlsServer{ca1: newTestPKI(t, "clients-ca"), ca2: newTestPKI(t, "partners-ca"), roots: x509.NewCertPool()}
	s.roots.AddCert(srvCA.cert)
	s.crl = filepath.Join(s.ca1.dir, "clients.crl")
	s.ca1.writeCRL(t, s.crl, time.Now().Add(time.Hour), 66)
	var err error
	s.auth, err = NewClientAuth(ClientAuthConfig{
		Hosts: []ClientPolicyConfig{
			{Host: "mtls.example.com", Names: []string{"mtls.example.com"}, CA: s.ca1.caPath, CRL: s.crl},
			{Host: "other.example.com", Names: []string{"other.example.com"}, CA: s.ca2.caPath},
			{Host: "opt.example.com", Names: []string{"opt.example.com"}, CA: s.ca1.caPath, Optional: true},
		},
		OnFailure: func(host, reason string) {
			s.mu.Lock()
			s.failures = append(s.failures, host+"/"+reason)
			s.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sc := srvCA.issue(t, "server", 2, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), testNames...)
	src := New(Config{Static: []*tls.Certificate{&sc}, ClientAuth: s.auth})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", src.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if tc.Handshake() != nil {
					return // the client sees the alert
				}
				// Tell the client who it is to this side.
				_, _ = io.WriteString(c, "ok "+tc.ConnectionState().ServerName+"\n") // a refused client is gone
			}()
		}
	}()
	return s
}

func (s *mtlsServer) takeFailures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failures
	s.failures = nil
	return f
}

// dial handshakes as name with cfg's changes and reads the server's
// line: a refusal of the client certificate surfaces there in TLS 1.3.
func (s *mtlsServer) dial(t *testing.T, name string, edit func(*tls.Config)) (tls.ConnectionState, bool, error) {
	t.Helper()
	asked := false
	cfg := &tls.Config{ServerName: name, RootCAs: s.roots, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			return &tls.Certificate{}, nil
		}}
	if edit != nil {
		edit(cfg)
	}
	if cfg.Certificates != nil {
		certs := cfg.Certificates
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			return &certs[0], nil
		}
		cfg.Certificates = nil
	}
	c, err := tls.Dial("tcp", s.addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, asked, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line := make([]byte, 64)
	n, err := c.Read(line)
	if err != nil && (n == 0 || !errors.Is(err, io.EOF)) { // the close may come with the line
		return c.ConnectionState(), asked, err
	}
	if got := string(line[:n]); got != "ok "+name+"\n" {
		t.Fatalf("server said %q, want %q", got, "ok "+name+"\n")
	}
	return c.ConnectionState(), asked, nil
}

func TestClientCertHandshake(t *testing.T) {
	t.Parallel()
	s := startMTLS(t)
	now := time.Now()
	valid := s.ca1.client(t, "alice", 10)
	expired := s.ca1.issue(t, "old", 11, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	future := s.ca1.issue(t, "early", 12, now.Add(time.Hour), now.Add(48*time.Hour))
	foreign := s.ca2.client(t, "mallory", 13)
	revoked := s.ca1.client(t, "bob", 66)
	serverCert := s.ca1.issue(t, "srv", 14, now.Add(-time.Hour), now.Add(time.Hour), "client.example.com")
	for _, tc := range []struct {
		name     string
		host     string
		cert     *tls.Certificate
		version  uint16
		wantErr  bool
		asked    bool
		failures string
	}{
		{name: "valid", host: "mtls.example.com", cert: &valid, asked: true},
		{name: "valid TLS 1.2", host: "mtls.example.com", cert: &valid, version: tls.VersionTLS12, asked: true},
		{name: "none sent", host: "mtls.example.com", wantErr: true, asked: true, failures: "mtls.example.com/no_certificate"},
		{name: "expired", host: "mtls.example.com", cert: &expired, wantErr: true, asked: true, failures: "mtls.example.com/expired"},
		{name: "not yet valid", host: "mtls.example.com", cert: &future, wantErr: true, asked: true, failures: "mtls.example.com/not_yet_valid"},
		{name: "other CA", host: "mtls.example.com", cert: &foreign, wantErr: true, asked: true, failures: "mtls.example.com/unknown_authority"},
		{name: "other CA TLS 1.2", host: "mtls.example.com", cert: &foreign, version: tls.VersionTLS12, wantErr: true, asked: true, failures: "mtls.example.com/unknown_authority"},
		{name: "revoked", host: "mtls.example.com", cert: &revoked, wantErr: true, asked: true, failures: "mtls.example.com/revoked"},
		{name: "server usage only", host: "mtls.example.com", cert: &serverCert, wantErr: true, asked: true, failures: "mtls.example.com/bad_usage"},
		{name: "host of the other CA", host: "other.example.com", cert: &valid, wantErr: true, asked: true, failures: "other.example.com/unknown_authority"},
		{name: "host of the other CA, its cert", host: "other.example.com", cert: &foreign, asked: true},
		{name: "optional without", host: "opt.example.com", asked: true},
		{name: "optional with", host: "opt.example.com", cert: &valid, asked: true},
		{name: "optional with a bad one", host: "opt.example.com", cert: &foreign, wantErr: true, asked: true, failures: "opt.example.com/unknown_authority"},
		{name: "host without client_certs", host: "open.example.com", cert: &valid, asked: false},
		{name: "upper case SNI", host: "MTLS.example.com", wantErr: true, asked: true, failures: "mtls.example.com/no_certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, asked, err := s.dial(t, tc.host, func(c *tls.Config) {
				if tc.cert != nil {
					c.Certificates = []tls.Certificate{*tc.cert}
				}
				if tc.version != 0 {
					c.MaxVersion = tc.version
				}
			})
			if (err != nil) != tc.wantErr {
				t.Fatalf("handshake with %s: error %v, want error %v", tc.host, err, tc.wantErr)
			}
			if asked != tc.asked {
				t.Errorf("asked for a certificate = %v, want %v", asked, tc.asked)
			}
			if err == nil && tc.version != 0 && cs.Version != tc.version {
				t.Errorf("version = %x, want %x", cs.Version, tc.version)
			}
			if got := strings.Join(s.takeFailures(), ","); got != tc.failures {
				t.Errorf("failures = %q, want %q", got, tc.failures)
			}
		})
	}
}

// anyCache hands the last session to every server name, as a client
// that tries a ticket of one host on another would.
type anyCache struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (c *anyCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs, c.cs != nil
}

func (c *anyCache) Put(_ string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs != nil {
		c.cs = cs
	}
}

// TestClientCertResumption pins that a session ticket never carries a
// client past a host's checks: one from a host without client_certs, or
// from a host with another CA, does not resume into an mTLS host (a
// full handshake follows, which asks for a certificate), while a ticket
// of the host itself resumes.
func TestClientCertResumption(t *testing.T) {
	t.Parallel()
	s := startMTLS(t)
	alice := s.ca1.client(t, "alice", 10)
	partner := s.ca2.client(t, "partner", 20)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			for _, tc := range []struct {
				name      string
				first     string
				firstCert *tls.Certificate
				then      string
				thenCert  *tls.Certificate
				resume    bool
				wantErr   bool
			}{
				{name: "same host", first: "mtls.example.com", firstCert: &alice, then: "mtls.example.com", resume: true},
				{name: "open host into mtls host", first: "open.example.com", then: "mtls.example.com", wantErr: true},
				{name: "optional host without cert into mtls host", first: "opt.example.com", then: "mtls.example.com", wantErr: true},
				{name: "other CA's host into mtls host", first: "other.example.com", firstCert: &partner, then: "mtls.example.com", wantErr: true},
				{name: "other CA's host, then a valid cert", first: "other.example.com", firstCert: &partner, then: "mtls.example.com", thenCert: &alice},
				{name: "mtls host into the other CA's host", first: "mtls.example.com", firstCert: &alice, then: "other.example.com", wantErr: true},
				{name: "same CA, other host", first: "mtls.example.com", firstCert: &alice, then: "opt.example.com"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					cache := &anyCache{}
					edit := func(cert *tls.Certificate) func(*tls.Config) {
						return func(c *tls.Config) {
							c.MaxVersion, c.MinVersion = version, version
							c.ClientSessionCache = cache
							if cert != nil {
								c.Certificates = []tls.Certificate{*cert}
							}
						}
					}
					if _, _, err := s.dial(t, tc.first, edit(tc.firstCert)); err != nil {
						t.Fatalf("first handshake with %s: %v", tc.first, err)
					}
					if cache.cs == nil {
						t.Fatal("no session ticket from the first handshake")
					}
					s.takeFailures()
					cs, _, err := s.dial(t, tc.then, edit(tc.thenCert))
					if (err != nil) != tc.wantErr {
						t.Fatalf("second handshake with %s: error %v, want error %v", tc.then, err, tc.wantErr)
					}
					if err == nil && cs.DidResume != tc.resume {
						t.Errorf("resumed = %v, want %v", cs.DidResume, tc.resume)
					}
				})
			}
		})
	}
}

func TestClientCertStaleCRL(t *testing.T) {
	t.Parallel()
	ca := newTestPKI(t, "clients-ca")
	crl := filepath.Join(ca.dir, "clients.crl")
	ca.writeCRL(t, crl, time.Now().Add(10*time.Minute))
	auth, err := NewClientAuth(ClientAuthConfig{Hosts: []ClientPolicyConfig{
		{Host: "mtls.example.com", Names: []string{"mtls.example.com"}, CA: ca.caPath, CRL: crl}}})
	if err != nil {
		t.Fatal(err)
	}
	alice := ca.client(t, "alice", 10)
	cs := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{alice.Leaf}}
	if _, reason := auth.Check("mtls.example.com", cs); reason != "" {
		t.Fatalf("Check(alice) = %q, want pass", reason)
	}
	auth.now = func() time.Time { return time.Now().Add(30 * time.Minute) }
	if _, reason := auth.Check("mtls.example.com", cs); reason != ReasonCRLStale {
		t.Errorf("Check(alice) past the CRL's next update = %q, want %q", reason, ReasonCRLStale)
	}
}

// TestClientCertReread pins that a connection verified before the CRL
// changed is judged by the new CRL on its next request, and that a CA
// file broken on disk keeps the last good copy in use.
func TestClientCertReread(t *testing.T) {
	t.Parallel()
	ca := newTestPKI(t, "clients-ca")
	crl := filepath.Join(ca.dir, "clients.crl")
	ca.writeCRL(t, crl, time.Now().Add(time.Hour))
	auth, err := NewClientAuth(ClientAuthConfig{Hosts: []ClientPolicyConfig{
		{Host: "mtls.example.com", Names: []string{"mtls.example.com"}, CA: ca.caPath, CRL: crl}}})
	if err != nil {
		t.Fatal(err)
	}
	bob := ca.client(t, "bob", 66)
	cs := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{bob.Leaf}}
	if leaf, reason := auth.Check("mtls.example.com", cs); reason != "" || leaf != bob.Leaf {
		t.Fatalf("Check(bob) = %v, %q, want bob, pass", leaf, reason)
	}
	ca.writeCRL(t, crl, time.Now().Add(time.Hour), 66)
	auth.refresh()
	if _, reason := auth.Check("mtls.example.com", cs); reason != ReasonRevoked {
		t.Errorf("Check(bob) after the CRL revoked him = %q, want %q", reason, ReasonRevoked)
	}
	if err := os.WriteFile(ca.caPath, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth.refresh()
	alice := ca.client(t, "alice", 10)
	if _, reason := auth.Check("mtls.example.com", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{alice.Leaf}}); reason != "" {
		t.Errorf("Check(alice) with the CA file broken = %q, want pass on the last good copy", reason)
	}
}

func TestReadClientCAsAndCRL(t *testing.T) {
	t.Parallel()
	ca := newTestPKI(t, "clients-ca")
	other := newTestPKI(t, "other-ca")
	dir := t.TempDir()
	leafPath := filepath.Join(dir, "leaf.pem")
	writePEM(t, leafPath, "CERTIFICATE", ca.client(t, "alice", 5).Certificate[0])
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("# nothing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadClientCAs(empty); !errors.Is(err, ErrNoCertificates) {
		t.Errorf("ReadClientCAs(empty) = %v, want ErrNoCertificates", err)
	}
	if _, err := ReadClientCAs(leafPath); err == nil || !strings.Contains(err.Error(), "not a CA certificate") {
		t.Errorf("ReadClientCAs(leaf) = %v, want not a CA certificate", err)
	}
	if _, err := ReadClientCAs(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadClientCAs(missing) = %v, want ErrNotExist", err)
	}
	cas, err := ReadClientCAs(ca.caPath)
	if err != nil || len(cas) != 1 {
		t.Fatalf("ReadClientCAs(ca) = %d, %v, want 1 certificate", len(cas), err)
	}
	crl := filepath.Join(dir, "other.crl")
	other.writeCRL(t, crl, time.Now().Add(time.Hour), 1)
	if _, err := ReadCRL(crl, cas); err == nil || !strings.Contains(err.Error(), "not signed by a certificate of the CA bundle") {
		t.Errorf("ReadCRL(other CA's CRL) = %v, want not signed", err)
	}
	if _, err := ReadCRL(ca.caPath, cas); err == nil || !strings.Contains(err.Error(), "not an X509 CRL") {
		t.Errorf("ReadCRL(a certificate) = %v, want not an X509 CRL", err)
	}
	// DER is accepted as well as PEM.
	ca.writeCRL(t, crl, time.Now().Add(time.Hour), 1)
	b, _ := os.ReadFile(crl)
	blk, _ := pem.Decode(b)
	der := filepath.Join(dir, "ca.crl.der")
	if err := os.WriteFile(der, blk.Bytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadCRL(der, cas); err != nil || len(got) != 1 || len(got[0].RevokedCertificateEntries) != 1 {
		t.Errorf("ReadCRL(DER) = %v, want one entry", err)
	}
}

// TestClientCertNoSNI pins that a handshake without SNI is not asked for
// a certificate (the request then gets 421 from the proxy, not a
// certificate prompt for no host in particular).
func TestClientCertNoSNI(t *testing.T) {
	t.Parallel()
	s := startMTLS(t)
	asked := false
	c, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			return &tls.Certificate{}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if asked {
		t.Error("a handshake without SNI was asked for a client certificate")
	}
}

// BenchmarkClientCertCheck is the per-request cost on a host with
// client_certs: a certificate the handshake verified (cache hit), and
// one verified by another policy (a connection older than a reload).
func BenchmarkClientCertCheck(b *testing.B) {
	t := b
	ca := newTestPKI(t, "clients-ca")
	crl := filepath.Join(ca.dir, "clients.crl")
	ca.writeCRL(t, crl, time.Now().Add(time.Hour), 66)
	auth, err := NewClientAuth(ClientAuthConfig{Hosts: []ClientPolicyConfig{
		{Host: "mtls.example.com", Names: []string{"mtls.example.com"}, CA: ca.caPath, CRL: crl}}})
	if err != nil {
		b.Fatal(err)
	}
	alice := ca.client(t, "alice", 10)
	cs := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{alice.Leaf}}
	b.Run("verified", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, reason := auth.Check("mtls.example.com", cs); reason != "" {
				b.Fatal(reason)
			}
		}
	})
	b.Run("unverified", func(b *testing.B) {
		b.ReportAllocs()
		p := auth.state.Load().byHost["mtls.example.com"]
		for b.Loop() {
			p.verified.Purge()
			if _, reason := auth.Check("mtls.example.com", cs); reason != "" {
				b.Fatal(reason)
			}
		}
	})
}

func TestClientPolicyLookup(t *testing.T) {
	t.Parallel()
	a, b := &clientPolicy{cfg: ClientPolicyConfig{Host: "a"}}, &clientPolicy{cfg: ClientPolicyConfig{Host: "b"}}
	a.cfg.Names = []string{"admin.example.com", "*.admin.example.com"}
	b.cfg.Names = []string{"*.example.com"}
	st := newClientState([]*clientPolicy{a, b})
	for name, want := range map[string]*clientPolicy{
		"admin.example.com": a, "x.admin.example.com": a, "x.y.admin.example.com": a,
		"www.example.com": b, "example.com": nil, "example.org": nil, "": nil,
	} {
		if got := st.lookup(name); got != want {
			t.Errorf("lookup(%q) = %v, want %v", name, got, want)
		}
	}
}

// BenchmarkClientCertHandshake is a full TLS 1.3 handshake over a pipe:
// a host without client_certs (what GetConfigForClient adds to every
// handshake), a host with them (the certificate request and its
// verification), and that host's session resumed (verified again).
func BenchmarkClientCertHandshake(b *testing.B) {
	ca := newTestPKI(b, "clients-ca")
	srvCA := newTestPKI(b, "server-ca")
	crl := filepath.Join(ca.dir, "clients.crl")
	ca.writeCRL(b, crl, time.Now().Add(time.Hour), 66)
	auth, err := NewClientAuth(ClientAuthConfig{Hosts: []ClientPolicyConfig{
		{Host: "mtls.example.com", Names: []string{"mtls.example.com"}, CA: ca.caPath, CRL: crl}}})
	if err != nil {
		b.Fatal(err)
	}
	sc := srvCA.issue(b, "server", 2, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "mtls.example.com", "open.example.com")
	srv := New(Config{Static: []*tls.Certificate{&sc}, ClientAuth: auth}).TLSConfig()
	roots := x509.NewCertPool()
	roots.AddCert(srvCA.cert)
	alice := ca.client(b, "alice", 10)
	// Over loopback TCP: on a net.Pipe, which has no buffer, a resumed
	// TLS 1.3 handshake deadlocks (the server's session ticket and the
	// client's Finished are written at the same time).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close() // no close_notify needed
				s := tls.Server(c, srv)
				if s.Handshake() == nil {
					_, _ = s.Write([]byte{1}) // the client reports a failure
				}
			}()
		}
	}()
	// once is one handshake and one byte read; it reports a resumption.
	once := func(name string, cache tls.ClientSessionCache) (bool, error) {
		c1, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return false, err
		}
		defer c1.Close()
		c := tls.Client(c1, &tls.Config{ServerName: name, RootCAs: roots, Certificates: []tls.Certificate{alice}, ClientSessionCache: cache})
		if _, err := c.Read(make([]byte, 1)); err != nil {
			return false, err
		}
		return c.ConnectionState().DidResume, nil
	}
	run := func(b *testing.B, name string, cache tls.ClientSessionCache, wantResume bool) {
		b.ReportAllocs()
		for b.Loop() {
			resumed, err := once(name, cache)
			if err != nil {
				b.Fatal(err)
			}
			if resumed != wantResume {
				b.Fatalf("resumed = %v, want %v", resumed, wantResume)
			}
		}
	}
	b.Run("open", func(b *testing.B) { run(b, "open.example.com", nil, false) })
	b.Run("mtls", func(b *testing.B) { run(b, "mtls.example.com", nil, false) })
	b.Run("mtls-resumed", func(b *testing.B) {
		cache := tls.NewLRUClientSessionCache(1)
		if _, err := once("mtls.example.com", cache); err != nil {
			b.Fatal(err)
		}
		run(b, "mtls.example.com", cache, true)
	})
}

// TestClientCertSeveralCRLs: a CRL file holding the CRLs of several CAs
// of the bundle revokes by each of them, whatever their order, and two
// CRLs of one CA are refused.
func TestClientCertSeveralCRLs(t *testing.T) {
	t.Parallel()
	ca1, ca2 := newTestPKI(t, "ca-one"), newTestPKI(t, "ca-two")
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.pem")
	one, two := filepath.Join(dir, "one.crl"), filepath.Join(dir, "two.crl")
	ca1.writeCRL(t, one, time.Now().Add(time.Hour), 11)
	ca2.writeCRL(t, two, time.Now().Add(time.Hour), 21)
	cat := func(dst string, srcs ...string) {
		t.Helper()
		var all []byte
		for _, src := range srcs {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		if err := os.WriteFile(dst, all, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cat(bundle, ca1.caPath, ca2.caPath)
	for _, order := range [][]string{{one, two}, {two, one}} {
		crl := filepath.Join(dir, "both.crl")
		cat(crl, order...)
		auth, err := NewClientAuth(ClientAuthConfig{Hosts: []ClientPolicyConfig{
			{Host: "mtls.example.com", Names: []string{"mtls.example.com"}, CA: bundle, CRL: crl}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			who  tls.Certificate
			want string
		}{
			{ca1.client(t, "revoked-by-one", 11), ReasonRevoked},
			{ca2.client(t, "revoked-by-two", 21), ReasonRevoked},
			{ca1.client(t, "serial 21 of the other CA", 21), ""},
			{ca2.client(t, "fine", 22), ""},
		} {
			cs := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.who.Leaf}}
			if _, reason := auth.Check("mtls.example.com", cs); reason != tc.want {
				t.Errorf("CRLs %v: Check(%s) = %q, want %q", order, tc.who.Leaf.Subject.CommonName, reason, tc.want)
			}
		}
	}
	cas, err := ReadClientCAs(bundle)
	if err != nil {
		t.Fatal(err)
	}
	twice := filepath.Join(dir, "twice.crl")
	cat(twice, one, one)
	if _, err := ReadCRL(twice, cas); err == nil || !strings.Contains(err.Error(), "two CRLs of CN=ca-one") {
		t.Errorf("ReadCRL(two CRLs of one CA) = %v, want refused", err)
	}
	crls, err := ReadCRL(two, cas)
	if err != nil {
		t.Fatal(err)
	}
	if u := Unrevocable(cas, crls); len(u) != 1 || u[0].Subject.CommonName != "ca-one" {
		t.Errorf("Unrevocable = %v, want ca-one", u)
	}
}
