package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"gatehouse/rules/testenv"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// testCA is a throw-away certificate authority for the tests' own TLS
// servers (Pebble's API, static certificates).
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemPath string // the CA certificate, PEM
	pool    *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gatehouse test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	ca.pemPath = writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	return ca
}

// issue writes a leaf certificate for names (DNS names or IPs) and its key
// to files and returns their paths.
func (ca *testCA) issue(t *testing.T, names ...string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	base := strings.NewReplacer("*", "star", ".", "_").Replace(names[0])
	certPath = writeFile(t, base+".crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyPath = writeFile(t, base+".key", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return certPath, keyPath
}

// tlsClient returns a client that dials addr for every request and
// verifies the server's chain against roots for the request's host name.
func tlsClient(addr string, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// handshake connects to addr with SNI name and returns the connection
// state, or the handshake error.
func handshake(addr, name string, roots *x509.CertPool, cfg func(*tls.Config)) (tls.ConnectionState, error) {
	c := &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}}
	if cfg != nil {
		cfg(c)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.ConnectionState(), nil
}

func TestTLSStaticCertificates(t *testing.T) {
	ca := newTestCA(t)
	aCert, aKey := ca.issue(t, "a.test")
	wCert, wKey := ca.issue(t, "*.w.test")
	up := newEchoUpstream(t, "app")
	g := startGateway(t, fmt.Sprintf(`listen:
  http: 127.0.0.1:0
  https: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
tls:
  certificates:
    - {cert: %s, key: %s}
    - {cert: %s, key: %s}
hosts:
  - match: [a.test, "*.w.test", plain.test]
    upstreams: [%s]
`, aCert, aKey, wCert, wKey, up.URL()))
	if g.httpsAddr == "" {
		t.Fatal("no https listener logged")
	}

	// The certificate is chosen by SNI.
	for name, want := range map[string]string{"a.test": "a.test", "x.w.test": "*.w.test", "A.TEST": "a.test"} {
		st, err := handshake(g.httpsAddr, name, ca.pool, nil)
		if err != nil {
			t.Fatalf("handshake %s: %v", name, err)
		}
		if got := st.PeerCertificates[0].DNSNames[0]; got != want {
			t.Errorf("SNI %s: served %s, want %s", name, got, want)
		}
		if st.NegotiatedProtocol != "h2" {
			t.Errorf("SNI %s: ALPN %q, want h2", name, st.NegotiatedProtocol)
		}
	}
	// A name without a certificate fails the handshake; no SNI gets the
	// first certificate; TLS 1.1 is refused.
	if _, err := handshake(g.httpsAddr, "plain.test", ca.pool, nil); err == nil {
		t.Error("handshake for plain.test (no certificate) succeeded")
	}
	if st, err := handshake(g.httpsAddr, "", nil, func(c *tls.Config) { c.InsecureSkipVerify = true }); err != nil {
		t.Errorf("handshake without SNI: %v", err)
	} else if got := st.PeerCertificates[0].DNSNames[0]; got != "a.test" {
		t.Errorf("no SNI: served %s, want the first certificate a.test", got)
	}
	if _, err := handshake(g.httpsAddr, "a.test", ca.pool, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS11 }); err == nil {
		t.Error("TLS 1.1 handshake succeeded; the minimum is 1.2")
	}

	// HTTPS requests reach the upstream, over HTTP/2.
	client := tlsClient(g.httpsAddr, ca.pool)
	resp, err := client.Get("https://x.w.test/hello?q=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("GET https://x.w.test/hello = %d %s", resp.StatusCode, resp.Proto)
	}
	if e := decodeEcho(t, body); e.Host != "x.w.test" || e.URI != "/hello?q=1" {
		t.Errorf("upstream saw host %q uri %q", e.Host, e.URI)
	}

	// Plain HTTP for a name with a certificate is redirected with 308 to
	// the same URL on the HTTPS port; a name without one is served.
	_, port, _ := net.SplitHostPort(g.httpsAddr)
	for _, c := range []struct{ host, path, want string }{
		{"a.test", "/x/y?z=1&w=%2F", "https://a.test:" + port + "/x/y?z=1&w=%2F"},
		{"Deep.W.Test.", "/", "https://deep.w.test:" + port + "/"},
	} {
		resp, _ := g.get(t, c.host, c.path)
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != c.want {
			t.Errorf("http://%s%s = %d Location %q; want 308 %s", c.host, c.path, resp.StatusCode, resp.Header.Get("Location"), c.want)
		}
	}
	if resp, _ := g.get(t, "plain.test", "/"); resp.StatusCode != 200 {
		t.Errorf("http://plain.test/ (no certificate) = %d, want 200", resp.StatusCode)
	}
	// Unknown hosts still get 421, not a redirect.
	if resp, _ := g.get(t, "unknown.test", "/"); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("http://unknown.test/ = %d, want 421", resp.StatusCode)
	}

	// A reload swaps the static certificates in place.
	bCert, bKey := ca.issue(t, "plain.test")
	g.reload(t, fmt.Sprintf(`listen:
  http: 127.0.0.1:0
  https: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
tls:
  certificates:
    - {cert: %s, key: %s}
    - {cert: %s, key: %s}
hosts:
  - match: [a.test, "*.w.test", plain.test]
    upstreams: [%s]
`, aCert, aKey, bCert, bKey, up.URL()))
	if _, err := handshake(g.httpsAddr, "plain.test", ca.pool, nil); err != nil {
		t.Errorf("after reload, handshake plain.test: %v", err)
	}
	if _, err := handshake(g.httpsAddr, "x.w.test", ca.pool, nil); err == nil {
		t.Error("after reload, x.w.test still has a certificate")
	}
}

// pebble is a running Pebble ACME test CA.
type pebble struct {
	dir   string         // directory URL
	caPEM string         // root of Pebble's own HTTPS API, for ca_root
	roots *x509.CertPool // Pebble's issuing root
	stop  func()         // ends Pebble; also run at cleanup
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPebble runs Pebble on loopback, resolving names through dns and
// validating HTTP-01 on httpPort and TLS-ALPN-01 on tlsPort of 127.0.0.1.
func startPebble(t *testing.T, dns string, httpPort, tlsPort int) *pebble {
	t.Helper()
	bin := testenv.GoTool(t, "pebble", "make tools (go install github.com/letsencrypt/pebble/v2/cmd/pebble)")
	ca := newTestCA(t)
	certPath, keyPath := ca.issue(t, "127.0.0.1", "localhost")
	apiPort, mgmtPort := freePort(t), freePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(apiPort),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(mgmtPort),
		"certificate":                    certPath,
		"privateKey":                     keyPath,
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles": map[string]any{
			"default": map[string]any{"description": "test", "validityPeriod": 7776000},
		},
	}}
	data, _ := json.Marshal(cfg)
	cfgPath := writeFile(t, "pebble.json", string(data))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-config", cfgPath, "-dnsserver", dns)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	out := newLogBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start pebble: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("pebble output:\n%s", out)
		}
	})

	p := &pebble{dir: fmt.Sprintf("https://127.0.0.1:%d/dir", apiPort), caPEM: ca.pemPath, stop: stop}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	deadline := time.Now().Add(waitTimeout)
	for {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				p.roots = x509.NewCertPool()
				if !p.roots.AppendCertsFromPEM(body) {
					t.Fatalf("pebble root is not PEM: %q", body)
				}
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble not ready after %v: %v\n%s", waitTimeout, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startDNS serves A records pointing at 127.0.0.1 for names (lower case,
// no trailing dot) on UDP and TCP port of 127.0.0.1 (Pebble asks over
// TCP); every other name is NXDOMAIN, every other type an empty answer.
// It returns host:port.
func startDNS(t *testing.T, names ...string) string {
	t.Helper()
	known := map[string]bool{}
	for _, n := range names {
		known[n+"."] = true
	}
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ; attempt++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if attempt == 10 {
			t.Fatalf("no port free for both UDP and TCP: %v", err)
		}
	}
	t.Cleanup(func() { pc.Close(); ln.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp, err := dnsAnswer(buf[:n], known); err == nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(waitTimeout))
				for {
					var size [2]byte
					if _, err := io.ReadFull(c, size[:]); err != nil {
						return
					}
					q := make([]byte, int(size[0])<<8|int(size[1]))
					if _, err := io.ReadFull(c, q); err != nil {
						return
					}
					resp, err := dnsAnswer(q, known)
					if err != nil {
						return
					}
					if _, err := c.Write(append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return pc.LocalAddr().String()
}

func dnsAnswer(query []byte, known map[string]bool) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	name := strings.ToLower(q.Name.String())
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !known[name] {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if known[name] && q.Type == dnsmessage.TypeA {
		err := b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
			dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// logLine returns the first line of log containing every part, or "".
func logLine(log string, parts ...string) string {
	for _, l := range strings.Split(log, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return l
		}
	}
	return ""
}

func TestACMECertificatesFromPebble(t *testing.T) {
	httpPort, httpsPort := freePort(t), freePort(t)
	dns := startDNS(t, "good.test", "other.test")
	pb := startPebble(t, dns, httpPort, httpsPort)
	state := t.TempDir()
	up := newEchoUpstream(t, "app")
	cfg := fmt.Sprintf(`listen:
  http: 127.0.0.1:%d
  https: 127.0.0.1:%d
admin:
  listen: 127.0.0.1:0
state_dir: %s
tls:
  acme:
    email: ops@good.test
    ca: %s
    ca_root: %s
hosts:
  - match: [good.test, unresolvable.test]
    upstreams: [%s]
`, httpPort, httpsPort, state, pb.dir, pb.caPEM, up.URL())
	g := startGateway(t, cfg)

	// good.test is issued although unresolvable.test, in the same host
	// block, fails: the CA's error is logged with the name.
	client := tlsClient(g.httpsAddr, pb.roots)
	getGood := func(t *testing.T) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			resp, err := client.Get("https://good.test/paid?x=1")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("GET https://good.test/paid = %d", resp.StatusCode)
				}
				if e := decodeEcho(t, body); e.Host != "good.test" || e.URI != "/paid?x=1" {
					t.Fatalf("upstream saw host %q uri %q", e.Host, e.URI)
				}
				if len(resp.TLS.VerifiedChains) == 0 {
					t.Fatal("no verified chain")
				}
				return
			}
			var uerr x509.UnknownAuthorityError
			if errors.As(err, &uerr) {
				t.Fatalf("certificate does not chain to Pebble's root: %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no certificate for good.test after 90s: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	getGood(t)
	g.waitLog(t, 90*time.Second, "issuance failure of unresolvable.test", func(log string) bool {
		return logLine(log, `msg="certificate not obtained; will retry"`, "name=unresolvable.test", `error="`, "Could not resolve") != ""
	})
	g.waitLog(t, waitTimeout, "obtained line", func(log string) bool {
		return logLine(log, `msg="certificate obtained"`, "name=good.test") != ""
	})
	// The obtained certificate's expiry is exported; a name without a
	// certificate has no series.
	text := g.metrics(t)
	if v, ok := metricValue(text, "gatehouse_cert_expiry_timestamp_seconds", "name", "good.test"); !ok || v < float64(time.Now().Unix()) {
		t.Errorf("cert expiry of good.test = %v, %v; want a time in the future", v, ok)
	}
	if v, ok := metricValue(text, "gatehouse_cert_expiry_timestamp_seconds", "name", "unresolvable.test"); ok {
		t.Errorf("cert expiry of unresolvable.test = %v; want no series without a certificate", v)
	}

	// Plain HTTP is redirected to https (challenges were answered above).
	resp, _ := g.get(t, "good.test", "/a?b=c")
	if want := fmt.Sprintf("https://good.test:%d/a?b=c", httpsPort); resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Errorf("http://good.test/a = %d %q, want 308 %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}

	// The certificate is kept in state_dir/certs, so a restart serves it
	// without asking the CA: Pebble is gone by then.
	var found []string
	_ = filepath.WalkDir(filepath.Join(state, "certs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, "good.test.crt") {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 1 {
		t.Fatalf("certificate files for good.test in state_dir/certs: %v", found)
	}
	pb.stop()
	g.stop()
	g2 := startGateway(t, cfg)
	client = tlsClient(g2.httpsAddr, pb.roots)
	getGood(t)
}
