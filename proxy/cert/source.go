package cert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
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
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"gatehouse/proxy/listener"
)

// Config configures a Source.
type Config struct {
	// Static are the static certificates (tls.certificates) in config
	// order, each with Leaf set; the first one valid for a name wins.
	Static []*tls.Certificate
	// Managed are the names ACME obtains certificates for. Ignored
	// without ACME.
	Managed []string
	// ACME, when set, obtains and renews a certificate for every
	// managed name. nil: static certificates only.
	ACME *ACMEConfig
	// Dir is where certmagic keeps its files (state_dir/certs), with
	// ACME.
	Dir string
	// Redis, when set with ACME, is the fleet's Redis, where the nodes
	// share ACME accounts, certificates, keys, challenge tokens and
	// locks (fleet.certificates); Dir then mirrors it. The Source owns
	// the client from New on and closes it on Stop, also when New fails.
	// nil: files in Dir only.
	Redis *redis.Client
	// RedisPrefix is the fleet's key prefix (fleet.prefix). Zero: "gh".
	RedisPrefix string
	// Log receives certificate progress and certmagic's own log.
	// nil: discard.
	Log *slog.Logger
	// ClientAuth, when set, asks the clients of the hosts with
	// client_certs for a certificate (see TLSConfig). nil: no handshake
	// asks.
	ClientAuth *ClientAuth
}

// ACMEConfig is the ACME account and CA (tls.acme). It is read at New
// only: a change needs a restart.
type ACMEConfig struct {
	// CA is the ACME directory URL.
	CA string
	// Email is the account contact; "" for none.
	Email string
	// Roots are extra roots trusted for the CA's HTTPS endpoint; nil:
	// the system's.
	Roots *x509.CertPool
	// RootsFile is the file Roots were read from, so that Update can
	// tell a changed setting; "" for none.
	RootsFile string
}

// Info is one certificate as the dashboard shows it.
type Info struct {
	// Name is the managed name, or the first name of a static
	// certificate.
	Name string
	// Issuer names the certificate's issuer; "" before one is obtained.
	Issuer string
	// NotAfter is when the certificate expires; zero when there is none
	// yet.
	NotAfter time.Time
	// Managed reports an ACME-managed name; false for a static
	// certificate.
	Managed bool
	// LastError is the last failure to obtain or renew it; "" for none.
	LastError string
}

// Source holds the certificates of the HTTPS listener: static pairs,
// swapped on Update, and, with ACME, a certmagic config that obtains and
// renews a certificate for every managed name in the background and
// answers the CA's HTTP-01 and TLS-ALPN-01 challenges. Its methods are
// safe for concurrent use; those documented so do nothing on a nil
// *Source (HTTPS off).
type Source struct {
	log *slog.Logger

	static atomic.Pointer[staticCerts]
	// managed is the set of names ACME manages, swapped on Update.
	managed atomic.Pointer[map[string]bool]

	// With ACME only:
	magic  *certmagic.Config
	cache  *certmagic.Cache
	issuer *certmagic.ACMEIssuer
	acme   ACMEConfig // as at New; changes need a restart
	// certDir is where certmagic keeps its files.
	certDir string

	// clientAuth selects the handshake config of the hosts with
	// client_certs; nil for none. Set at New.
	clientAuth *ClientAuth

	// httpsPort is the bound HTTPS port, for redirects.
	httpsPort atomic.Int32

	// lastErr maps a managed name to its last issuance error, for the
	// dashboard; cleared when a certificate is obtained.
	lastErr sync.Map // string → string

	mu      sync.Mutex
	ctx     context.Context // Start's; nil before start
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

// New prepares the certificates of cfg; it starts nothing (Start does).
func New(cfg Config) *Source {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Source{log: log, started: map[string]bool{}, clientAuth: cfg.ClientAuth}
	m.set(cfg)
	if cfg.ACME == nil {
		if cfg.Redis != nil {
			// Owned from here on but unused without ACME.
			_ = cfg.Redis.Close() // closing an unused client cannot lose anything
		}
		return m
	}
	m.acme = *cfg.ACME
	m.certDir = cfg.Dir
	files := &certmagic.FileStorage{Path: cfg.Dir}
	var storage certmagic.Storage = files
	if cfg.Redis != nil {
		storage = NewRedis(RedisConfig{Redis: cfg.Redis, Prefix: cfg.RedisPrefix, Mirror: files, Log: log})
	}
	zl := zap.New(&slogCore{h: log.Handler()})
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
	return m
}

// set installs cfg's static certificates and managed names.
func (m *Source) set(cfg Config) {
	m.static.Store(&staticCerts{certs: slices.Clone(cfg.Static)})
	managed := map[string]bool{}
	if cfg.ACME != nil {
		for _, n := range cfg.Managed {
			managed[n] = true
		}
	}
	m.managed.Store(&managed)
}

// Start creates the ACME issuer for the bound listener addresses and
// begins managing the configured names in the background. A name that
// fails is retried by certmagic with backoff and never blocks the others.
func (m *Source) Start(ctx context.Context, httpAddr, httpsAddr net.Addr) error {
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

// Update installs a reloaded config: static certificates at once, and
// new managed names handed to certmagic. Names no longer configured are
// no longer served by ACME certificates (they route nowhere) and are
// removed from the cache; their files stay in the directory. A change of
// the ACME settings, Dir or Redis needs a restart and is logged as such.
// A nil Source does nothing.
func (m *Source) Update(cfg Config) {
	if m == nil {
		return
	}
	a := cfg.ACME
	if (m.magic == nil) != (a == nil) || a != nil && (a.CA != m.acme.CA || a.Email != m.acme.Email || a.RootsFile != m.acme.RootsFile) {
		m.log.Warn("setting changed; it takes effect after a restart", "field", "tls.acme")
	}
	m.set(cfg)
	m.manageNew()
}

// manageNew hands names not yet managed to certmagic and drops the ones
// no longer configured from its cache.
func (m *Source) manageNew() {
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
	// ManageAsync loads certificates from the directory, obtains the
	// missing ones in the background and keeps all of them renewed.
	if err := m.magic.ManageAsync(m.ctx, add); err != nil {
		m.log.Error("certificate management failed to start", "names", add, "error", err)
	}
}

// onEvent logs certmagic's progress with the name and the CA's error.
func (m *Source) onEvent(_ context.Context, event string, data map[string]any) error {
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

// HandOver makes the ACME directory (created if missing) and everything
// in it owned by uid:gid, for a process about to switch to that user:
// the ACME account, certificates and locks are written there later. A
// nil Source, or one without ACME, does nothing.
func (m *Source) HandOver(uid, gid int) error {
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

// Stop ends certificate maintenance and closes the storage's Redis
// client, if any. A nil Source does nothing.
func (m *Source) Stop() error {
	if m == nil || m.cache == nil {
		return nil
	}
	m.cache.Stop()
	if c, ok := m.magic.Storage.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// TLSConfig is the HTTPS listener's TLS config: TLS 1.2 minimum, HTTP/2
// and HTTP/1.1, and the ACME TLS-ALPN-01 protocol when ACME is on. A
// handshake for a host with client_certs gets that host's config from
// the ClientAuth (GetConfigForClient); every other one this config.
func (m *Source) TLSConfig() *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if m.magic != nil {
		protos = append(protos, listener.ACMETLSProtocol)
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     protos,
		GetCertificate: m.getCertificate,
	}
	if ca := m.clientAuth; ca != nil {
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			return ca.configForClient(cfg, hello)
		}
	}
	return cfg
}

// errNoCertificate fails a handshake for a name gatehouse has no
// certificate for.
var errNoCertificate = errors.New("no certificate for this server name")

// getCertificate selects the certificate of a handshake: the ACME
// challenge certificate for a TLS-ALPN-01 validation, else the first
// static certificate valid for the SNI name, else the managed one. A
// handshake without SNI gets the first static certificate.
func (m *Source) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m.magic != nil && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == listener.ACMETLSProtocol {
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

// Covers reports whether HTTPS is served for the canonical host name:
// plain HTTP requests for it are redirected.
func (m *Source) Covers(name string) bool {
	return (*m.managed.Load())[name] || m.static.Load().lookup(name) != nil
}

// HandleChallenge answers an ACME HTTP-01 challenge request and reports
// whether it did. A nil Source does nothing.
func (m *Source) HandleChallenge(w http.ResponseWriter, r *http.Request) bool {
	if m == nil || m.issuer == nil || !certmagic.LooksLikeHTTPChallenge(r) {
		return false
	}
	return m.issuer.HandleHTTPChallenge(w, r)
}

// Redirect answers a plain HTTP request with 308 to the same URL on
// https, keeping the HTTPS listener's port when it is not 443.
func (m *Source) Redirect(w http.ResponseWriter, r *http.Request, name string) {
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

// Certificates lists the certificates for the dashboard: each static
// certificate under its first name, then each managed name with the
// latest certificate certmagic holds for it, if any, and its last
// issuance error.
func (m *Source) Certificates() []Info {
	var out []Info
	for _, c := range m.static.Load().certs {
		leaf := c.Leaf
		name := leaf.Subject.CommonName
		if len(leaf.DNSNames) > 0 {
			name = leaf.DNSNames[0]
		}
		out = append(out, Info{Name: name, Issuer: leaf.Issuer.String(), NotAfter: leaf.NotAfter})
	}
	for _, n := range slices.Sorted(maps.Keys(*m.managed.Load())) {
		ci := Info{Name: n, Managed: true}
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

// Expiries returns the NotAfter of the certificate each name gets, as
// getCertificate chooses it: the first static certificate covering the
// name, by each of its DNS names (its common name when it has none), then
// the latest certificate certmagic holds for each managed name not
// covered. A managed name without a certificate yet has no entry.
func (m *Source) Expiries() map[string]time.Time {
	out := map[string]time.Time{}
	for _, c := range m.static.Load().certs {
		names := c.Leaf.DNSNames
		if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
			names = []string{c.Leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(n)
			if _, seen := out[n]; !seen {
				out[n] = c.Leaf.NotAfter
			}
		}
	}
	for _, ci := range m.Certificates() {
		if !ci.Managed || ci.NotAfter.IsZero() {
			continue
		}
		if _, static := out[ci.Name]; !static && m.static.Load().lookup(ci.Name) == nil {
			out[ci.Name] = ci.NotAfter
		}
	}
	return out
}
