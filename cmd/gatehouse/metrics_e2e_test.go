package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// selfSigned writes a self-signed certificate for names valid until
// notAfter, and its key, and returns their paths.
func selfSigned(t *testing.T, notAfter time.Time, names ...string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(notAfter.Unix()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		DNSNames:     names,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath = writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyPath = writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return certPath, keyPath
}

// TestCertExpiryMetric: gatehouse_cert_expiry_timestamp_seconds carries
// the NotAfter of each name's static certificate, and follows a reload
// that replaces the certificate.
func TestCertExpiryMetric(t *testing.T) {
	t.Parallel()
	first := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	second := time.Date(2032, 7, 8, 9, 10, 11, 0, time.UTC)
	c1, k1 := selfSigned(t, first, "a.test", "*.w.test")
	c2, k2 := selfSigned(t, second, "a.test")
	up := newEchoUpstream(t, "app")
	cfg := func(cert, key string) string {
		return fmt.Sprintf(`listen: {http: "127.0.0.1:0", https: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
tls:
  certificates:
    - {cert: %s, key: %s}
hosts:
  - match: [a.test, "*.w.test"]
    upstreams: [%s]
`, cert, key, up.URL())
	}
	g := startGateway(t, cfg(c1, k1))
	for _, name := range []string{"a.test", "*.w.test"} {
		if got := g.metric(t, "gatehouse_cert_expiry_timestamp_seconds", "name", name); got != float64(first.Unix()) {
			t.Errorf("cert expiry of %s = %v, want %d (%s)", name, got, first.Unix(), first)
		}
	}
	if got := g.reload(t, cfg(c2, k2)); got != "ok" {
		t.Fatalf("reload = %s", got)
	}
	text := g.metrics(t)
	if v, _ := metricValue(text, "gatehouse_cert_expiry_timestamp_seconds", "name", "a.test"); v != float64(second.Unix()) {
		t.Errorf("after reload: cert expiry of a.test = %v, want %d", v, second.Unix())
	}
	if _, ok := metricValue(text, "gatehouse_cert_expiry_timestamp_seconds", "name", "*.w.test"); ok {
		t.Errorf("after reload: *.w.test, no longer served by a certificate, still has an expiry")
	}
}

// TestOpsMetrics: a probe counts in gatehouse_blocked_requests_total
// {reason="probe"} and gatehouse_jail_tracked_clients; an upstream that
// stops accepting connections turns gatehouse_upstream_up to 0 while the
// other stays 1.
func TestOpsMetrics(t *testing.T) {
	t.Parallel()
	live := newEchoUpstream(t, "live")
	dying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(dying.Close)
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`limits: {upstream_fail_timeout: 1h}
probes: {paths: [/.env], jail: probes}
jails:
  probes: {maxretry: 100, findtime: 1m, bantime: 1m}
hosts:
  - match: [www.test]
    upstreams: [%s, %s]
`, live.URL(), dying.URL)))

	text := g.metrics(t)
	for _, reason := range []string{"probe", "auth", "hotlink", "flood", "banned", "other"} {
		if v, ok := metricValue(text, "gatehouse_blocked_requests_total", "reason", reason); !ok || v != 0 {
			t.Errorf("blocked_requests_total{reason=%q} = %v, %v at start; want 0", reason, v, ok)
		}
	}
	for _, u := range []string{live.URL(), dying.URL} {
		if v, ok := metricValue(text, "gatehouse_upstream_up", "host", "www.test", "upstream", u); !ok || v != 1 {
			t.Errorf("upstream_up{%s} = %v, %v at start; want 1", u, v, ok)
		}
	}
	if v, ok := metricValue(text, "gatehouse_jail_tracked_clients", "jail", "probes"); !ok || v != 0 {
		t.Errorf("jail_tracked_clients{probes} = %v, %v at start; want 0", v, ok)
	}

	if resp, _ := g.get(t, "www.test", "/.env"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("probe: %d, want 403", resp.StatusCode)
	}
	g.waitMetric(t, 1, "gatehouse_blocked_requests_total", "reason", "probe")
	g.waitMetric(t, 1, "gatehouse_jail_tracked_clients", "jail", "probes")

	dying.Close()
	// Round robin: within two requests one is sent to the dead upstream,
	// refused, marked down and retried on the live one.
	for range 2 {
		if resp, _ := g.get(t, "www.test", "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET with one upstream down: %d, want 200 from the live one", resp.StatusCode)
		}
	}
	text = g.metrics(t)
	if v, _ := metricValue(text, "gatehouse_upstream_up", "host", "www.test", "upstream", dying.URL); v != 0 {
		t.Errorf("upstream_up of the dead upstream = %v, want 0", v)
	}
	if v, _ := metricValue(text, "gatehouse_upstream_up", "host", "www.test", "upstream", live.URL()); v != 1 {
		t.Errorf("upstream_up of the live upstream = %v, want 1", v)
	}
	if v, _ := metricValue(text, "gatehouse_blocked_requests_total", "reason", "probe"); v != 1 {
		t.Errorf("blocked_requests_total{probe} after clean requests = %v, want 1", v)
	}
}
