package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/testenv"
)

// clientCA is a certificate authority for client certificates, with a
// CRL, made by the test.
type clientCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pem    string // the CA certificate file
	crl    string // the CRL file
	serial int64
}

func newClientCA(t *testing.T, name string) *clientCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	ca := &clientCA{cert: c, key: key, serial: 100}
	ca.pem = writeFile(t, name+".pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	ca.crl = filepath.Join(t.TempDir(), name+".crl")
	ca.revoke(t)
	return ca
}

// revoke writes the CRL, listing serials.
func (ca *clientCA) revoke(t *testing.T, serials ...*big.Int) {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()),
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(24 * time.Hour)}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	tmp := ca.crl + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, ca.crl); err != nil {
		t.Fatal(err)
	}
}

// client issues a client certificate valid from notBefore to notAfter
// and writes it and its key to files, for openssl.
func (ca *clientCA) client(t *testing.T, cn string, notBefore, notAfter time.Time) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"Example"}},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	certPath := writeFile(t, cn+".crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyPath := writeFile(t, cn+".key", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, certPath, keyPath
}

// mtlsGet sends one request with Host host over a fresh TLS connection
// with SNI sni ("" for none), HTTP/2 or HTTP/1.1, presenting cert if
// given, and returns the response and its body, or the error (a refused
// handshake).
func mtlsGet(addr, sni, host string, h2 bool, roots *x509.CertPool, cert *tls.Certificate, header http.Header) (*http.Response, []byte, error) {
	cfg := &tls.Config{ServerName: sni, RootCAs: roots, NextProtos: []string{"http/1.1"}}
	if sni == "" {
		cfg.InsecureSkipVerify = true
	}
	if h2 {
		cfg.NextProtos = []string{"h2"}
	}
	if cert != nil {
		// Sent whatever CAs the server names: Go's client would
		// otherwise keep back one of another CA.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest("GET", "https://"+host+"/who", nil)
	for k, v := range header {
		req.Header[k] = v
	}
	var resp *http.Response
	if h2 {
		if conn.ConnectionState().NegotiatedProtocol != "h2" {
			return nil, nil, fmt.Errorf("ALPN %q, want h2", conn.ConnectionState().NegotiatedProtocol)
		}
		// The transport's one connection is this one, whatever the
		// request's host.
		tr := &http.Transport{ForceAttemptHTTP2: true,
			DialTLSContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
		defer tr.CloseIdleConnections()
		if resp, err = tr.RoundTrip(req); err != nil {
			return nil, nil, err
		}
		if resp.ProtoMajor != 2 {
			return nil, nil, fmt.Errorf("answered over %s, want HTTP/2", resp.Proto)
		}
	} else {
		if err := req.Write(conn); err != nil {
			return nil, nil, err
		}
		if resp, err = http.ReadResponse(bufio.NewReader(conn), req); err != nil {
			return nil, nil, err
		}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, err
}

func TestClientCertificates(t *testing.T) {
	srvCA := newTestCA(t)
	srvCert, srvKey := srvCA.issue(t, "mtls.test", "opt.test", "open.test")
	clients := newClientCA(t, "clients-ca")
	others := newClientCA(t, "others-ca")
	now := time.Now()
	alice, aliceCrt, aliceKey := clients.client(t, "alice", now.Add(-time.Hour), now.Add(time.Hour))
	bob, _, _ := clients.client(t, "bob", now.Add(-time.Hour), now.Add(time.Hour))
	old, _, _ := clients.client(t, "old", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	mallory, _, _ := others.client(t, "mallory", now.Add(-time.Hour), now.Add(time.Hour))
	clients.revoke(t, bob.Leaf.SerialNumber)
	up := newEchoUpstream(t, "app")
	cfg := fmt.Sprintf(`listen:
  http: 127.0.0.1:0
  https: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
log: {access: json}
tls:
  certificates:
    - {cert: %s, key: %s}
hosts:
  - match: [mtls.test]
    upstreams: [%[3]s]
    client_certs: {ca: %[4]s, crl: %[5]s}
  - match: [opt.test]
    upstreams: [%[3]s]
    client_certs: {ca: %[4]s, mode: optional}
  - match: [open.test]
    upstreams: [%[3]s]
`, srvCert, srvKey, up.URL(), clients.pem, clients.crl)
	g := startGateway(t, cfg)
	roots := srvCA.pool
	spoof := http.Header{"X-Client-Cert-Subject": {"CN=admin"}, "X-Client-Cert-Verify": {"SUCCESS"}, "X_Client_Cert_Fingerprint": {"00"}}

	for _, h2 := range []bool{false, true} {
		proto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2]
		t.Run(proto, func(t *testing.T) {
			// A valid certificate: the upstream learns who, from
			// gatehouse only.
			resp, body, err := mtlsGet(g.httpsAddr, "mtls.test", "mtls.test", h2, roots, &alice, spoof)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET mtls.test with alice's certificate: %v %v", err, resp)
			}
			e := decodeEcho(t, body)
			sum := sha256.Sum256(alice.Certificate[0])
			for k, want := range map[string]string{
				"X-Client-Cert-Verify":      "SUCCESS",
				"X-Client-Cert-Subject":     "CN=alice,O=Example",
				"X-Client-Cert-Issuer":      "CN=clients-ca",
				"X-Client-Cert-Serial":      strings.ToUpper(alice.Leaf.SerialNumber.Text(16)),
				"X-Client-Cert-Fingerprint": hex.EncodeToString(sum[:]),
			} {
				if got := e.Header[k]; len(got) != 1 || got[0] != want {
					t.Errorf("upstream got %s = %q, want [%q]", k, got, want)
				}
			}
			if got := e.Header["X_client_cert_fingerprint"]; got != nil {
				t.Errorf("upstream got the client's X_Client_Cert_Fingerprint %q", got)
			}

			// Host of the mTLS host on a connection for another name, or
			// without SNI: 421, whatever strict_sni says (it is off).
			for _, sni := range []string{"open.test", ""} {
				resp, _, err := mtlsGet(g.httpsAddr, sni, "mtls.test", h2, roots, nil, nil)
				if err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
					t.Errorf("GET mtls.test on a connection with SNI %q = %v %v, want 421", sni, err, resp)
				}
			}
			// ... even with a certificate the optional host verified.
			resp, _, err = mtlsGet(g.httpsAddr, "opt.test", "mtls.test", h2, roots, &alice, nil)
			if err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
				t.Errorf("GET mtls.test on opt.test's connection with alice's certificate = %v %v, want 421", err, resp)
			}

			// Optional: no certificate says NONE.
			resp, body, err = mtlsGet(g.httpsAddr, "opt.test", "opt.test", h2, roots, nil, spoof)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET opt.test without a certificate: %v %v", err, resp)
			}
			e = decodeEcho(t, body)
			if got := e.Header["X-Client-Cert-Verify"]; len(got) != 1 || got[0] != "NONE" {
				t.Errorf("opt.test without a certificate: X-Client-Cert-Verify = %q, want [NONE]", got)
			}
			if got := e.Header["X-Client-Cert-Subject"]; got != nil {
				t.Errorf("opt.test without a certificate: X-Client-Cert-Subject = %q, want none", got)
			}

			// A host without client_certs: the client's claims are removed.
			resp, body, err = mtlsGet(g.httpsAddr, "open.test", "open.test", h2, roots, nil, spoof)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET open.test: %v %v", err, resp)
			}
			e = decodeEcho(t, body)
			for k := range spoof {
				if got := e.Header[http.CanonicalHeaderKey(k)]; got != nil {
					t.Errorf("open.test: upstream got the client's %s = %q", k, got)
				}
			}
		})
	}

	// Refused handshakes, counted by reason.
	for _, c := range []struct {
		name   string
		cert   *tls.Certificate
		reason string
	}{
		{"no certificate", nil, "no_certificate"},
		{"expired", &old, "expired"},
		{"other CA", &mallory, "unknown_authority"},
		{"revoked", &bob, "revoked"},
	} {
		resp, _, err := mtlsGet(g.httpsAddr, "mtls.test", "mtls.test", false, roots, c.cert, nil)
		if err == nil {
			t.Errorf("%s: GET mtls.test = %d, want a refused handshake", c.name, resp.StatusCode)
		}
		g.waitMetric(t, 1, "gatehouse_tls_client_cert_failures_total", "host", "mtls.test", "reason", c.reason)
	}

	// Plain HTTP: redirected to https (there is a certificate), never served.
	if resp, _ := g.get(t, "mtls.test", "/who"); resp.StatusCode != http.StatusPermanentRedirect {
		t.Errorf("http://mtls.test/who = %d, want 308", resp.StatusCode)
	}

	// The access log names the verified subject.
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(g.stdout.String(), `"client_cert":"CN=alice,O=Example"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no client_cert in the access log:\n%s", g.stdout.String())
		}
		g.pause(t)
	}

	// The CRL is re-read when it changes (checked every 10s): alice
	// revoked, a new connection is refused.
	clients.revoke(t, bob.Leaf.SerialNumber, alice.Leaf.SerialNumber)
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, _, err := mtlsGet(g.httpsAddr, "mtls.test", "mtls.test", false, roots, &alice, nil)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice still admitted after the CRL revoked her")
		}
		g.pause(t)
	}
	// And on reload, at once.
	clients.revoke(t, bob.Leaf.SerialNumber)
	if got := g.reload(t, cfg); got != "ok" {
		t.Fatalf("reload = %q", got)
	}

	// openssl agrees: a handshake with alice's certificate is served,
	// one without is not.
	openssl := testenv.Tool(t, "openssl")
	if out := sClient(t, openssl, g.httpsAddr, "-cert", aliceCrt, "-key", aliceKey, "-CAfile", srvCA.pemPath); !strings.Contains(out, "HTTP/1.1 200") || !strings.Contains(out, "CN=alice,O=Example") {
		t.Errorf("openssl s_client with alice's certificate after the reload:\n%s", out)
	}
	if out := sClient(t, openssl, g.httpsAddr, "-CAfile", srvCA.pemPath); strings.Contains(out, "HTTP/1.1 200") {
		t.Errorf("openssl s_client without a certificate was served:\n%s", out)
	}
}

// sClient sends one HTTP/1.1 request for mtls.test through openssl
// s_client and returns what it printed.
func sClient(t *testing.T, openssl, addr string, args ...string) string {
	t.Helper()
	args = append([]string{"s_client", "-connect", addr, "-servername", "mtls.test", "-alpn", "http/1.1", "-quiet", "-verify_return_error"}, args...)
	cmd := exec.Command(openssl, args...)
	cmd.Stdin = strings.NewReader("GET /who HTTP/1.1\r\nHost: mtls.test\r\nConnection: close\r\n\r\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill() // a hung s_client; its output says why
		<-done
	}
	return out.String()
}

// TestClientCertsAddedByReload pins that a connection made before a host
// asked for client certificates does not keep serving it: its next
// request gets 421, and a new connection is asked for a certificate.
func TestClientCertsAddedByReload(t *testing.T) {
	srvCA := newTestCA(t)
	srvCert, srvKey := srvCA.issue(t, "late.test")
	clients := newClientCA(t, "clients-ca")
	alice, _, _ := clients.client(t, "alice", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	up := newEchoUpstream(t, "app")
	cfg := func(extra string) string {
		return fmt.Sprintf(`listen:
  http: 127.0.0.1:0
  https: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
tls:
  certificates:
    - {cert: %s, key: %s}
hosts:
  - match: [late.test]
    upstreams: [%s]
%s`, srvCert, srvKey, up.URL(), extra)
	}
	g := startGateway(t, cfg(""))
	conn, err := tls.Dial("tcp", g.httpsAddr, &tls.Config{ServerName: "late.test", RootCAs: srvCA.pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	get := func() int {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://late.test/", nil)
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // keep the connection usable
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != 200 {
		t.Fatalf("before the reload: %d, want 200", code)
	}
	if got := g.reload(t, cfg("    client_certs: {ca: "+clients.pem+"}\n")); got != "ok" {
		t.Fatalf("reload = %q", got)
	}
	if code := get(); code != http.StatusMisdirectedRequest {
		t.Errorf("after the reload, on the old connection: %d, want 421", code)
	}
	if _, _, err := mtlsGet(g.httpsAddr, "late.test", "late.test", false, srvCA.pool, nil, nil); err == nil {
		t.Error("after the reload, a new connection without a certificate was served")
	}
	if resp, _, err := mtlsGet(g.httpsAddr, "late.test", "late.test", true, srvCA.pool, &alice, nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("after the reload, with alice's certificate: %v %v, want 200", err, resp)
	}
}
