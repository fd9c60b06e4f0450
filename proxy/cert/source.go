package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gatehouse/proxy/config"
	"gatehouse/proxy/listener"
	"gatehouse/proxy/ui"
)

// acmeTLSProtocol is the ALPN protocol of the TLS-ALPN-01 challenge.
const acmeTLSProtocol = listener.ACMETLSProtocol

// tlsManager holds the certificates of the HTTPS listener: static pairs
// from tls.certificates, swapped on reload, and, with tls.acme, a
// certmagic config that obtains and renews a certificate for every
// managed name in the background and answers the CA's HTTP-01 and
// TLS-ALPN-01 challenges.
type tlsManager struct {
	log *slog.Logger

	static atomic.Pointer[staticCerts]
	// managed is the set of names ACME manages, swapped on reload.
	managed atomic.Pointer[map[string]bool]

	// With tls.acme only:
	magic  *certmagic.Config
	cache  *certmagic.Cache
	issuer *certmagic.ACMEIssuer
	acme   config.ACME // as at start; changes need a restart
	// certDir is state_dir/certs, where certmagic keeps its files.
	certDir string

	// httpsPort is the bound HTTPS port, for redirects.
	httpsPort atomic.Int32

	// lastErr maps a managed name to its last issuance error, for the
	// dashboard; cleared when a certificate is obtained.
	lastErr sync.Map // string → string

	mu      sync.Mutex
	ctx     context.Context // Run's; nil before start
	started map[string]bool // names handed to certmagic
}

// staticCerts are the static certificates, in config order.
type staticCerts struct {
	certs []*tls.Certificate
}

// lookup returns the first static certificate valid for name.
func (sc *staticCerts) lookup(name string) *tls.Certificate {
	for _, c := range sc.certs {
		if c.Leaf.VerifyHostname(name) == nil {
			return c
		}
	}
	return nil
}

// newTLSManager prepares the certificates of cfg; it starts nothing. It
// returns nil without a tls block.
func newTLSManager(cfg *config.File, log *slog.Logger) (*tlsManager, error) {
	if !cfg.TLSOn() {
		return nil, nil
	}
	m := &tlsManager{log: log, started: map[string]bool{}}
	m.setStatic(cfg)
	if cfg.TLS.ACME == nil {
		return m, nil
	}
	m.acme = *cfg.TLS.ACME
	m.certDir = filepath.Join(cfg.StateDir, "certs")
	zl := zap.New(&slogCore{h: log.Handler()})
	storage, err := newCertStorage(cfg, log) // fleet.go: Redis in fleet mode
	if err != nil {
		return nil, err
	}
	var magic *certmagic.Config
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zl,
	})
	magic = certmagic.New(m.cache, certmagic.Config{
		Storage: storage,
		Logger:  zl,
		OnEvent: m.onEvent,
	})
	m.magic = magic
	return m, nil
}

// setStatic installs cfg's static certificates and managed names.
func (m *tlsManager) setStatic(cfg *config.File) {
	sc := &staticCerts{}
	for _, c := range cfg.TLS.Certificates {
		sc.certs = append(sc.certs, c.Loaded)
	}
	m.static.Store(sc)
	managed := map[string]bool{}
	for _, n := range cfg.ManagedNames() {
		managed[n] = true
	}
	m.managed.Store(&managed)
}

// start creates the ACME issuer for the bound listener addresses and
// begins managing the configured names in the background. A name that
// fails is retried by certmagic with backoff and never blocks the others.
func (m *tlsManager) start(ctx context.Context, httpAddr, httpsAddr net.Addr) error {
	host, httpPort, err := hostPortOf(httpAddr)
	if err != nil {
		return err
	}
	_, httpsPort, err := hostPortOf(httpsAddr)
	if err != nil {
		return err
	}
	m.httpsPort.Store(int32(httpsPort))
	if m.magic == nil {
		return nil
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, certmagic.ACMEIssuer{
		CA:           m.acme.CA,
		Email:        m.acme.Email,
		Agreed:       true,
		TrustedRoots: m.acme.Roots,
		// Challenges are answered by gatehouse's own listeners: certmagic
		// finds these ports in use and leaves them to us.
		ListenHost:     host,
		AltHTTPPort:    httpPort,
		AltTLSALPNPort: httpsPort,
		Logger:         m.magic.Logger,
	})
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	m.manageNew()
	return nil
}

// update installs a reloaded config: static certificates at once, and
// new managed names handed to certmagic. Names no longer configured are
// no longer served by ACME certificates (they route nowhere) and are
// removed from the cache; their files stay in state_dir/certs.
func (m *tlsManager) update(cfg *config.File) {
	if m == nil || !cfg.TLSOn() {
		return
	}
	a := cfg.TLS.ACME
	if (m.magic == nil) != (a == nil) || a != nil && (a.CA != m.acme.CA || a.Email != m.acme.Email || a.CARoot != m.acme.CARoot) {
		m.log.Warn("setting changed; it takes effect after a restart", "field", "tls.acme")
	}
	m.setStatic(cfg)
	m.manageNew()
}

// manageNew hands names not yet managed to certmagic and drops the ones
// no longer configured from its cache.
func (m *tlsManager) manageNew() {
	if m.magic == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil {
		return // before start: start manages everything
	}
	want := *m.managed.Load()
	var add []string
	for n := range want {
		if !m.started[n] {
			add = append(add, n)
		}
	}
	var drop []certmagic.SubjectIssuer
	for n := range m.started {
		if !want[n] {
			drop = append(drop, certmagic.SubjectIssuer{Subject: n})
			delete(m.started, n)
		}
	}
	if len(drop) > 0 {
		m.cache.RemoveManaged(drop)
	}
	if len(add) == 0 {
		return
	}
	slices.Sort(add)
	for _, n := range add {
		m.started[n] = true
	}
	m.log.Info("managing certificates", "names", add, "ca", m.acme.CA)
	// ManageAsync loads certificates from state_dir/certs, obtains the
	// missing ones in the background and keeps all of them renewed.
	if err := m.magic.ManageAsync(m.ctx, add); err != nil {
		m.log.Error("certificate management failed to start", "names", add, "error", err)
	}
}

// onEvent logs certmagic's progress with the name and the CA's error.
func (m *tlsManager) onEvent(_ context.Context, event string, data map[string]any) error {
	id, _ := data["identifier"].(string)
	switch event {
	case "cert_obtaining":
		m.log.Info("obtaining certificate", "name", id, "renewal", data["renewal"] == true)
	case "cert_obtained":
		m.lastErr.Delete(id)
		m.log.Info("certificate obtained", "name", id, "renewal", data["renewal"] == true, "issuer", data["issuer"])
	case "cert_failed":
		err, _ := data["error"].(error)
		if err != nil {
			m.lastErr.Store(id, err.Error())
		}
		m.log.Error("certificate not obtained; will retry", "name", id, "renewal", data["renewal"] == true, "error", err)
	}
	return nil
}

// handOver makes state_dir/certs (created if missing) and everything in
// it owned by uid:gid, for a process about to switch to that user: the
// ACME account, certificates and locks are written there later.
func (m *tlsManager) handOver(uid, gid int) error {
	if m == nil || m.certDir == "" {
		return nil
	}
	if err := os.MkdirAll(m.certDir, 0o700); err != nil {
		return err
	}
	return filepath.WalkDir(m.certDir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// stop ends certificate maintenance.
func (m *tlsManager) stop() {
	if m != nil && m.cache != nil {
		m.cache.Stop()
	}
}

// tlsConfig is the HTTPS listener's TLS config: TLS 1.2 minimum, HTTP/2
// and HTTP/1.1, and the ACME TLS-ALPN-01 protocol when ACME is on.
func (m *tlsManager) tlsConfig() *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if m.magic != nil {
		protos = append(protos, acmeTLSProtocol)
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     protos,
		GetCertificate: m.getCertificate,
	}
}

// errNoCertificate fails a handshake for a name gatehouse has no
// certificate for.
var errNoCertificate = errors.New("no certificate for this server name")

// getCertificate selects the certificate of a handshake: the ACME
// challenge certificate for a TLS-ALPN-01 validation, else the first
// static certificate valid for the SNI name, else the managed one. A
// handshake without SNI gets the first static certificate.
func (m *tlsManager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m.magic != nil && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLSProtocol {
		return m.magic.GetCertificate(hello)
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	sc := m.static.Load()
	if name == "" {
		if len(sc.certs) > 0 {
			return sc.certs[0], nil
		}
		return nil, errNoCertificate
	}
	if c := sc.lookup(name); c != nil {
		return c, nil
	}
	if m.magic != nil && (*m.managed.Load())[name] {
		return m.magic.GetCertificate(hello)
	}
	return nil, errNoCertificate
}

// covers reports whether HTTPS is served for the canonical host name:
// plain HTTP requests for it are redirected.
func (m *tlsManager) covers(name string) bool {
	return (*m.managed.Load())[name] || m.static.Load().lookup(name) != nil
}

// handleChallenge answers an ACME HTTP-01 challenge request and reports
// whether it did.
func (m *tlsManager) handleChallenge(w http.ResponseWriter, r *http.Request) bool {
	if m == nil || m.issuer == nil || !certmagic.LooksLikeHTTPChallenge(r) {
		return false
	}
	return m.issuer.HandleHTTPChallenge(w, r)
}

// redirect answers a plain HTTP request with 308 to the same URL on
// https, keeping the HTTPS listener's port when it is not 443.
func (m *tlsManager) redirect(w http.ResponseWriter, r *http.Request, name string) {
	host := name
	if strings.IndexByte(name, ':') >= 0 {
		host = "[" + name + "]"
	}
	if httpsPort := int(m.httpsPort.Load()); httpsPort != 443 && httpsPort != 0 {
		host += ":" + strconv.Itoa(httpsPort)
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

func hostPortOf(a net.Addr) (string, int, error) {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, fmt.Errorf("port of %s: %w", a, err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = ""
	}
	return host, p, nil
}

// slogCore is a zapcore.Core writing to a slog handler, so certmagic's
// log joins gatehouse's. certmagic's info lines are chatty and go to
// debug; gatehouse logs the progress that matters from its events.
type slogCore struct {
	h     slog.Handler
	attrs []slog.Attr
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.InfoLevel:
		return slog.LevelDebug
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{h: c.h, attrs: append(slices.Clip(c.attrs), fieldAttrs(fields)...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	r.AddAttrs(slog.String("component", "certmagic"))
	r.AddAttrs(c.attrs...)
	r.AddAttrs(fieldAttrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }

func fieldAttrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	attrs := make([]slog.Attr, 0, len(enc.Fields))
	for _, k := range slices.Sorted(maps.Keys(enc.Fields)) {
		attrs = append(attrs, slog.Any(k, enc.Fields[k]))
	}
	return attrs
}

// Certificates lists the certificates for the dashboard (ui.CertSource):
// each static certificate under its first name, then each managed name
// with the latest certificate certmagic holds for it, if any. LastError is
// not tracked yet.
func (m *tlsManager) Certificates() []ui.CertInfo {
	var out []ui.CertInfo
	for _, c := range m.static.Load().certs {
		leaf := c.Leaf
		name := leaf.Subject.CommonName
		if len(leaf.DNSNames) > 0 {
			name = leaf.DNSNames[0]
		}
		out = append(out, ui.CertInfo{Name: name, Issuer: leaf.Issuer.String(), NotAfter: leaf.NotAfter})
	}
	for _, n := range slices.Sorted(maps.Keys(*m.managed.Load())) {
		ci := ui.CertInfo{Name: n, Managed: true}
		if e, ok := m.lastErr.Load(n); ok {
			ci.LastError = e.(string)
		}
		if m.cache != nil {
			for _, c := range m.cache.AllMatchingCertificates(n) {
				if c.Leaf != nil && c.Leaf.NotAfter.After(ci.NotAfter) {
					ci.NotAfter, ci.Issuer = c.Leaf.NotAfter, c.Leaf.Issuer.String()
				}
			}
		}
		out = append(out, ci)
	}
	return out
}
