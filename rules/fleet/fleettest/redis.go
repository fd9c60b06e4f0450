// Package fleettest starts real redis-server processes for the tests of
// the fleet (rules/fleet, the certmagic storage in proxy, the
// end-to-end tests in cmd/gatehouse). A missing redis-server skips the
// test, and fails it when CI=true.
package fleettest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"gatehouse/rules/testenv"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server the test started on 127.0.0.1, without
// persistence, stopped by the test's cleanup.
type Redis struct {
	// Addr is host:port.
	Addr string
	// CAFile is the PEM file of the CA of a StartTLS server's
	// certificate; "" without TLS.
	CAFile string

	t    testing.TB
	bin  string
	dir  string
	port int
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	tls  *tls.Config // a client config trusting the test CA; nil without TLS
}

// Start starts a redis-server with the extra arguments given (e.g.
// "--requirepass", "secret"); it returns once the server answers.
func Start(t testing.TB, extra ...string) *Redis {
	t.Helper()
	return start(t, false, extra)
}

// StartTLS starts a redis-server that speaks only TLS, with a
// certificate for 127.0.0.1 from a CA made for the test (CAFile).
func StartTLS(t testing.TB, extra ...string) *Redis {
	t.Helper()
	return start(t, true, extra)
}

func start(t testing.TB, withTLS bool, extra []string) *Redis {
	t.Helper()
	bin := testenv.Tool(t, "redis-server")
	r := &Redis{t: t, bin: bin, dir: t.TempDir(), args: extra}
	if withTLS {
		r.tls = newTestCA(t, r.dir)
		r.CAFile = filepath.Join(r.dir, "ca.pem")
	}
	var last error
	for range 5 {
		r.port = freePort(t)
		if last = r.start(); last == nil {
			t.Cleanup(r.Kill)
			return r
		}
	}
	t.Fatalf("start redis-server: %v", last)
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs redis-server on r.port with an empty data directory and
// waits until it answers PING (10 s at most).
func (r *Redis) start() error {
	data := filepath.Join(r.dir, "data")
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	args := []string{
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", data,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", filepath.Join(r.dir, "redis.log"),
	}
	if r.tls != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(r.port),
			"--tls-cert-file", filepath.Join(r.dir, "server.pem"), "--tls-key-file", filepath.Join(r.dir, "server.key"),
			"--tls-ca-cert-file", r.CAFile, "--tls-auth-clients", "no")
	}
	args = append(args, r.args...)
	cmd := exec.Command(r.bin, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		// Exit status of a server we kill is of no interest.
		_ = cmd.Wait()
		close(done)
	}()
	r.cmd, r.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("redis-server exited at start: %s", log)
		default:
		}
		c, err := net.DialTimeout("tcp", r.Addr, time.Second)
		if err == nil {
			c.Close()
			if r.ready() {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Kill()
	return errors.New("redis-server did not answer within 10s")
}

// ready reports whether the server answers PING, or asks for a password
// (which means it is up too).
func (r *Redis) ready() bool {
	var c net.Conn
	var err error
	if r.tls != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", r.Addr, r.tls)
	} else {
		c, err = net.DialTimeout("tcp", r.Addr, time.Second)
	}
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	return err == nil && n > 0 && (buf[0] == '+' || buf[0] == '-')
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it.
// It is idempotent.
func (r *Redis) Kill() {
	if r.cmd == nil {
		return
	}
	// The process may have exited already.
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// Restart starts the server again on the same address with no data: a
// Redis that lost everything.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Kill()
	var err error
	for range 50 { // the port may linger for a moment
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("restart redis-server on %s: %v", r.Addr, err)
}

// Client returns a client of the server, closed by the test's cleanup.
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, TLSConfig: r.tls})
	t.Cleanup(func() { c.Close() })
	return c
}

// Do runs one command on a fresh connection and returns its result.
func (r *Redis) Do(t testing.TB, args ...any) any {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, TLSConfig: r.tls})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := c.Do(ctx, args...).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("redis %v: %v", args, err)
	}
	return v
}

// newTestCA writes ca.pem, server.pem and server.key (for 127.0.0.1) to
// dir and returns a client TLS config that trusts the CA.
func newTestCA(t testing.TB, dir string) *tls.Config {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem": {Type: "CERTIFICATE", Bytes: der},
		"server.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
