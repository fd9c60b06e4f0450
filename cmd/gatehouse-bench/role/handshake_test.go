package role

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// tlsServer is an HTTPS server with a fresh ECDSA P-256 certificate for
// localhost; it returns the server and the certificate's PEM file.
func tlsServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, ca
}

// TestHandshake runs the generator against a Go TLS server: without
// -resume no handshake resumes, with it every one does, and -groups
// picks the key exchange the server ends up doing.
func TestHandshake(t *testing.T) {
	t.Parallel()
	srv, ca := tlsServer(t)
	addr := srv.Listener.Addr().String()
	for _, tc := range []struct {
		name      string
		args      []string
		resumeAll bool
		group     string
	}{
		{name: "full", args: nil, group: "X25519"},
		{name: "resumed", args: []string{"-resume"}, resumeAll: true, group: "X25519"},
		{name: "Go default groups", args: []string{"-groups", "default"}, group: "X25519MLKEM768"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"-addr", addr, "-ca", ca, "-c", "2", "-d", "200ms"}, tc.args...)
			if err := Handshake(args, &out, &errb); err != nil {
				t.Fatalf("Handshake(%q): %v\n%s", args, err, errb.String())
			}
			var rep HandshakeReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("Handshake(%q) printed %q: %v", args, out.String(), err)
			}
			if rep.Handshakes == 0 || rep.Errors != 0 {
				t.Fatalf("Handshake(%q) = %+v, want handshakes and no errors", args, rep)
			}
			if want := map[bool]uint64{true: rep.Handshakes, false: 0}[tc.resumeAll]; rep.Resumed != want {
				t.Errorf("Handshake(%q): %d of %d resumed, want %d", args, rep.Resumed, rep.Handshakes, want)
			}
			if rep.Group != tc.group || rep.Version != "TLS 1.3" {
				t.Errorf("Handshake(%q): group %q, %s; want %q, TLS 1.3", args, rep.Group, rep.Version, tc.group)
			}
		})
	}
}

func TestHandshakeUsage(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	for _, args := range [][]string{
		nil,
		{"-addr", "127.0.0.1:1", "-ca", "/nonexistent/ca.pem"},
		{"-addr", "127.0.0.1:1", "-ca", os.DevNull},
	} {
		if err := Handshake(args, &out, &errb); err == nil {
			t.Errorf("Handshake(%q) = nil, want an error", args)
		}
	}
	_, ca := tlsServer(t)
	if err := Handshake([]string{"-addr", "127.0.0.1:1", "-ca", ca, "-groups", "p256"}, &out, &errb); err == nil {
		t.Errorf("Handshake(-groups p256) = nil, want an error naming the allowed values")
	}
}
