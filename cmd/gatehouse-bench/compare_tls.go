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
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gatehouse/cmd/gatehouse-bench/procfs"
	"gatehouse/cmd/gatehouse-bench/role"
	"gatehouse/cmd/gatehouse-bench/wrk"
)

// This file holds the rows loaded over TLS (the HTTP/2 and the TLS
// handshake rows) and the paired auth rows.

// benchCert is the certificate every TLS row serves: one self-signed
// ECDSA P-256 certificate for localhost and 127.0.0.1, the same key for
// gatehouse (as a static certificate) and nginx, so that both sign with
// the same key on the same curve.
type benchCert struct {
	cert, key string // PEM files; cert is also the root the clients trust
}

// writeBenchCert makes the bench certificate in dir.
func writeBenchCert(dir string) (benchCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return benchCert{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return benchCert{}, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return benchCert{}, err
	}
	c := benchCert{cert: filepath.Join(dir, "bench-cert.pem"), key: filepath.Join(dir, "bench-key.pem")}
	if err := os.WriteFile(c.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return benchCert{}, err
	}
	// 0644: nginx reads the key as the user it starts as; the scratch
	// directory holds nothing else worth a secret.
	if err := os.WriteFile(c.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o644); err != nil {
		return benchCert{}, err
	}
	return c, nil
}

// clientTLS is the TLS config of the pre-flight checks: the bench
// certificate is the only root.
func (c benchCert) clientTLS() (*tls.Config, error) {
	b, err := os.ReadFile(c.cert)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no certificate", c.cert)
	}
	return &tls.Config{RootCAs: roots, ServerName: "localhost"}, nil
}

// nginxTLSConf is nginxConf's reverse proxy on an HTTPS listener with
// HTTP/2 and the bench certificate. Session tickets are on (nginx's
// default; no session cache, as gatehouse keeps none). TLS 1.3 is
// listed because nginx before 1.23.4 leaves it out of its default
// ssl_protocols, and gatehouse negotiates it. keepalive_requests is
// raised because nginx closes an HTTP/2 connection after 1000 requests
// by default (GOAWAY), which h2load counts as failures. "listen ... ssl
// http2" rather than "http2 on", which needs nginx 1.25.1.
func nginxTLSConf(dir string, workers int, listen, upAddr string, c benchCert) string {
	conf := nginxConf(dir, workers, listen, upAddr, "access_log off;")
	return strings.Replace(conf, "        listen "+listen+" backlog=4096;\n", fmt.Sprintf(
		`        listen %s ssl http2 backlog=4096;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;
        keepalive_requests 1000000;
`, listen, c.cert, c.key), 1)
}

// measureTLSRow starts row's server with its HTTPS listener, checks it
// and loads it cfg.runs times with h2load or the handshake generator.
func (b *bench) measureTLSRow(ctx context.Context, cfg compareConfig, rr *rowResult, upAddr string, up *proc, htpasswd string) error {
	row := rr.row
	port, err := freePort()
	if err != nil {
		return err
	}
	tlsPort, err := freePort()
	if err != nil {
		return err
	}
	sut, err := b.startSUT(ctx, cfg, row, port, tlsPort, upAddr, htpasswd)
	if err != nil {
		return err
	}
	defer b.procs.stop(sut, 10*time.Second)
	addr := "127.0.0.1:" + strconv.Itoa(tlsPort)
	tc, err := cfg.cert.clientTLS()
	if err != nil {
		return err
	}
	if err := waitHTTPS(ctx, sut, "https://"+addr+"/", tc, 20*time.Second); err != nil {
		return err
	}
	rr.rssIdle = procfs.TreeRSS(sut.pid())

	var argv func(d time.Duration) []string
	var parse func(string) (runResult, error)
	suffix := "handshake"
	switch row.load {
	case loadH2:
		h2load, err := lookTool("h2load")
		if err != nil {
			return fmt.Errorf("%w (make bench-deps installs nghttp2-client)", err)
		}
		argv = func(d time.Duration) []string {
			return []string{h2load, "-c", strconv.Itoa(cfg.h2Conns), "-m", strconv.Itoa(cfg.h2Streams), "-t", "1",
				"-D", strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))), "https://" + addr + cfg.path}
		}
		parse, suffix = parseH2loadRun, "h2load"
	case loadTLSFull, loadTLSResumed:
		argv = func(d time.Duration) []string {
			a := []string{b.self, "handshake", "-addr", addr, "-ca", cfg.cert.cert, "-c", strconv.Itoa(cfg.tlsConns),
				"-d", d.String(), "-groups", row.groups}
			if row.load == loadTLSResumed {
				a = append(a, "-resume")
			}
			return a
		}
		parse = parseHandshakeRun
	default:
		return fmt.Errorf("row %q: not a TLS row", row.label)
	}
	if cfg.warmup > 0 {
		if _, err := runCmd(ctx, placement{cpus: cfg.place.load}, argv(cfg.warmup)...); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	for i := range cfg.runs {
		r, err := b.loadOnce(ctx, cfg, sut, up, fmt.Sprintf("%s.%d.%s", filepath.Base(sut.log), i+1, suffix), argv(cfg.duration), parse)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		rr.runs = append(rr.runs, r)
		if row.load == loadH2 {
			b.logf("  run %d: %.0f req/s, %.1f µs CPU/req, mean %v, errors %d, proxy CPU %.0f%%, load CPU %s%%",
				i+1, r.wrk.RPS, r.cpuUSPerReq(), r.mean, r.wrk.Errors, r.cpuPct(), fmtNum(r.loadPct(), 0))
		} else {
			b.logf("  run %d: %.0f handshakes/s (%d of %d resumed, %s), %.1f µs CPU/handshake, errors %d, proxy CPU %.0f%%, load CPU %s%%",
				i+1, r.wrk.RPS, r.resumed, r.wrk.Requests, r.group, r.cpuUSPerReq(), r.wrk.Errors, r.cpuPct(), fmtNum(r.loadPct(), 0))
		}
	}
	rr.rss = procfs.TreeRSS(sut.pid())
	return nil
}

// parseH2loadRun reads an h2load run into a runResult.
func parseH2loadRun(out string) (runResult, error) {
	h, err := parseH2load(out)
	if err != nil {
		return runResult{}, err
	}
	return runResult{wrk: wrk.Result{RPS: h.RPS, Requests: h.Succeeded, Errors: h.errors()}, mean: h.Mean}, nil
}

// parseHandshakeRun reads the handshake generator's JSON report.
func parseHandshakeRun(out string) (runResult, error) {
	var h role.HandshakeReport
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		return runResult{}, fmt.Errorf("handshake report %q: %w", strings.TrimSpace(out), err)
	}
	if h.Seconds <= 0 {
		return runResult{}, fmt.Errorf("handshake report %q: no measured time", strings.TrimSpace(out))
	}
	if h.Handshakes == 0 {
		return runResult{}, fmt.Errorf("no handshake completed (%d errors, first: %s)", h.Errors, h.FirstError)
	}
	return runResult{
		wrk:     wrk.Result{RPS: float64(h.Handshakes) / h.Seconds, Requests: h.Handshakes, Errors: h.Errors},
		resumed: h.Resumed,
		group:   h.Group,
	}, nil
}

// waitHTTPS polls url over TLS (tc) until it answers 200, p exits, or
// timeout passes.
func waitHTTPS(ctx context.Context, p *proc, url string, tc *tls.Config, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, DisableKeepAlives: true, Proxy: nil}}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && resp.ProtoMajor == 2 {
				return nil
			}
			err = fmt.Errorf("%s %s", resp.Proto, resp.Status)
		}
		last = err
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up:\n%s", p.name, p.tail())
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 over HTTP/2 on %s within %v (last: %v):\n%s", p.name, url, timeout, last, p.tail())
		case <-t.C:
		}
	}
}

// Hosts of the paired auth rows' config (testdata/compare-pair.yaml):
// the same length, so the requests differ in the host's name only.
const (
	pairOpenHost = "open.example.com"
	pairAuthHost = "auth.example.com"
)

// measurePair measures the paired auth rows: one gatehouse with two
// hosts, one behind basic auth and one without, loaded with identical
// wrk settings and identical requests (both carry the bench user's
// Authorization header), alternately, run by run, so that run i of one
// and run i of the other form a pair measured within seconds of each
// other; the order flips every run, so that drift does not favour
// either. Both rows get an error when the pair could not be measured.
func (b *bench) measurePair(ctx context.Context, cfg compareConfig, row compareRow, upAddr string, up *proc, htpasswd, authHeader string) []*rowResult {
	open := &rowResult{row: compareRow{label: labelPairOpen, kind: kindGatehouse, template: row.template}}
	auth := &rowResult{row: compareRow{label: labelPairAuth, kind: kindGatehouse, template: row.template, auth: true}}
	err := b.runPair(ctx, cfg, row, open, auth, upAddr, up, htpasswd, authHeader)
	if err != nil {
		b.logf("  %s: %v", row.label, err)
		open.err, auth.err = err, err
	}
	return []*rowResult{open, auth}
}

func (b *bench) runPair(ctx context.Context, cfg compareConfig, row compareRow, open, auth *rowResult, upAddr string, up *proc, htpasswd, authHeader string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	sut, err := b.startSUT(ctx, cfg, row, port, 0, upAddr, htpasswd)
	if err != nil {
		return err
	}
	defer b.procs.stop(sut, 10*time.Second)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	k, v, _ := strings.Cut(authHeader, ": ")
	hdr := map[string]string{k: v}
	if err := waitHTTP(ctx, sut, base+"/", nil, 20*time.Second); err != nil {
		return err
	}
	size := int64(role.SmallBody)
	if cfg.path == "/big" {
		size = role.BigBody
	}
	for _, e := range []expectation{
		{host: pairOpenHost, path: cfg.path, headers: hdr, status: http.StatusOK, size: size},
		{host: pairOpenHost, path: cfg.path, status: http.StatusOK, size: size},
		{host: pairAuthHost, path: cfg.path, headers: hdr, status: http.StatusOK, size: size},
		{host: pairAuthHost, path: cfg.path, status: http.StatusUnauthorized},
	} {
		if err := e.check(ctx, base); err != nil {
			return err
		}
	}
	rss := procfs.TreeRSS(sut.pid())
	open.rssIdle, auth.rssIdle = rss, rss

	url := base + cfg.path
	hosts := []struct {
		rr   *rowResult
		host string
	}{{open, pairOpenHost}, {auth, pairAuthHost}}
	// The warm-up fills the auth cache: the row measures a returning
	// user, not bcrypt.
	if cfg.warmup > 0 {
		for _, h := range hosts {
			if _, err := runCmd(ctx, placement{cpus: cfg.place.load}, cfg.wrkArgs(cfg.warmup, url, "Host: "+h.host, authHeader)...); err != nil {
				return fmt.Errorf("warm-up %s: %w", h.host, err)
			}
		}
	}
	for i := range cfg.runs {
		order := hosts
		if i%2 == 1 {
			order = []struct {
				rr   *rowResult
				host string
			}{hosts[1], hosts[0]}
		}
		for _, h := range order {
			name := fmt.Sprintf("%s.%s.%d.wrk", filepath.Base(sut.log), h.host, i+1)
			r, err := b.loadOnce(ctx, cfg, sut, up, name, cfg.wrkArgs(cfg.duration, url, "Host: "+h.host, authHeader), parseWrkRun)
			if err != nil {
				return fmt.Errorf("run %d %s: %w", i+1, h.host, err)
			}
			h.rr.runs = append(h.rr.runs, r)
			b.logf("  %s", h.host)
			b.logRun(i+1, r)
		}
	}
	rss = procfs.TreeRSS(sut.pid())
	open.rss, auth.rss = rss, rss
	return nil
}

// pairRatio is the median over the pairs of run i of a and run i of b
// of f(a_i) / f(b_i); NaN without a complete pair.
func pairRatio(a, b *rowResult, f func(runResult) float64) float64 {
	var rs []float64
	for i := range min(len(a.runs), len(b.runs)) {
		rs = append(rs, f(a.runs[i])/f(b.runs[i]))
	}
	return spreadOf(rs).Med
}
