package cert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"gatehouse/proxy/listener"
	"gatehouse/rules/filever"
)

// Reasons a client certificate is refused, the values of the reason
// label of the failure metric: a fixed, bounded set.
const (
	ReasonNoCertificate    = "no_certificate"
	ReasonExpired          = "expired"
	ReasonNotYetValid      = "not_yet_valid"
	ReasonUnknownAuthority = "unknown_authority"
	ReasonBadUsage         = "bad_usage"
	ReasonRevoked          = "revoked"
	ReasonCRLStale         = "crl_stale"
	ReasonInvalid          = "invalid"
	// ReasonNoPolicy is a request for a host whose policy is not (or no
	// longer) loaded; it is never a handshake's.
	ReasonNoPolicy = "no_policy"
)

// ClientPolicyConfig is one host's client certificate policy
// (hosts[].client_certs).
type ClientPolicyConfig struct {
	// Host names the host in logs and metrics and in Check: its first
	// hosts[].match pattern, unique in a config.
	Host string
	// Names are the host's match patterns: exact names and "*.suffix"
	// wildcards, lower case. A handshake whose SNI is one of them asks
	// for a client certificate.
	Names []string
	// CA is the PEM bundle of the accepted certificate authorities.
	CA string
	// CRL is the revocation list file (PEM or DER) signed by one of CA's
	// certificates; "" for none.
	CRL string
	// Optional asks for a certificate without requiring one (mode
	// optional); one that is sent must verify. Default false: required.
	Optional bool
}

// ClientAuthConfig configures a ClientAuth.
type ClientAuthConfig struct {
	// Hosts are the policies, one per host with client_certs.
	Hosts []ClientPolicyConfig
	// Interval is how often the CA and CRL files are checked for a
	// change. Zero: 10s.
	Interval time.Duration
	// OnFailure is told of each refused client certificate, with the
	// policy's Host and one of the Reason constants. nil: not counted.
	OnFailure func(host, reason string)
	// Log receives reloads and stale-CRL warnings; handshake failures
	// at debug. nil: discard.
	Log *slog.Logger
}

// verifiedCacheSize bounds the per-policy cache of certificates already
// verified (by handshake), which lets Check skip verification for the
// requests of a connection.
const verifiedCacheSize = 4096

// ClientAuth asks the clients of the hosts with client_certs for a
// certificate and verifies it, in the TLS handshake (GetConfigForClient:
// only those hosts' handshakes ask) and again for each request (Check),
// against the policy loaded now, so that a connection made before a
// reload or a CRL update is judged by the new one. The CA and CRL files
// are re-read when they change (Run) and on Update. Its methods are safe
// for concurrent use; a nil *ClientAuth asks no client for anything.
type ClientAuth struct {
	log       *slog.Logger
	onFailure func(host, reason string)
	interval  time.Duration
	now       func() time.Time

	state atomic.Pointer[clientState]
	mu    sync.Mutex // serialises Update and refresh
}

// clientState is one immutable set of policies.
type clientState struct {
	exact    map[string]*clientPolicy
	wildcard map[string]*clientPolicy // by suffix without "*."
	byHost   map[string]*clientPolicy
}

// clientPolicy is one host's policy with its files loaded.
type clientPolicy struct {
	cfg   ClientPolicyConfig
	cas   []*x509.Certificate
	pool  *x509.CertPool
	crls  []*x509.RevocationList
	files [2]filever.Version // CA, CRL
	// revoked holds the CRLs' entries: the issuer's raw subject, a NUL,
	// the serial number (big-endian bytes).
	revoked map[string]bool
	// marker tags the session tickets issued under this policy (see
	// tlsConfig): only they resume into it.
	marker []byte
	// verified caches the leaf certificates that passed verify under
	// this policy, by pointer: a connection's requests share one.
	verified *lru.Cache[*x509.Certificate, struct{}]
	// staleLogged keeps the stale-CRL warning to one per policy.
	staleLogged atomic.Bool

	confOnce sync.Once
	conf     *tls.Config
}

// NewClientAuth loads the policies of cfg. An unreadable CA or CRL file
// is an error naming the host.
func NewClientAuth(cfg ClientAuthConfig) (*ClientAuth, error) {
	ca := &ClientAuth{log: cfg.Log, onFailure: cfg.OnFailure, interval: cfg.Interval, now: time.Now}
	if ca.log == nil {
		ca.log = slog.New(slog.DiscardHandler)
	}
	if ca.interval <= 0 {
		ca.interval = 10 * time.Second
	}
	if ca.onFailure == nil {
		ca.onFailure = func(string, string) {}
	}
	if err := ca.Update(cfg.Hosts); err != nil {
		return nil, err
	}
	return ca, nil
}

// Update installs the policies of a reloaded config, reading every CA
// and CRL file again. On error nothing changes.
func (ca *ClientAuth) Update(hosts []ClientPolicyConfig) error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ps := make([]*clientPolicy, 0, len(hosts))
	for _, h := range hosts {
		p, err := loadPolicy(h)
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	ca.state.Store(newClientState(ps))
	return nil
}

func newClientState(ps []*clientPolicy) *clientState {
	st := &clientState{exact: map[string]*clientPolicy{}, wildcard: map[string]*clientPolicy{}, byHost: map[string]*clientPolicy{}}
	for _, p := range ps {
		st.byHost[p.cfg.Host] = p
		for _, n := range p.cfg.Names {
			if suffix, ok := strings.CutPrefix(n, "*."); ok {
				st.wildcard[suffix] = p
			} else {
				st.exact[n] = p
			}
		}
	}
	return st
}

// loadPolicy reads h's files.
func loadPolicy(h ClientPolicyConfig) (*clientPolicy, error) {
	p := &clientPolicy{cfg: h, pool: x509.NewCertPool()}
	var err error
	if p.files[0], err = filever.Stat(h.CA); err != nil {
		return nil, fmt.Errorf("%s: client CA %s: %w", h.Host, h.CA, err)
	}
	if p.cas, err = ReadClientCAs(h.CA); err != nil {
		return nil, fmt.Errorf("%s: client CA %s: %w", h.Host, h.CA, err)
	}
	mark := sha256.New()
	mark.Write([]byte("gatehouse client_certs\x00" + h.Host + "\x00"))
	for _, c := range p.cas {
		p.pool.AddCert(c)
		mark.Write(c.Raw)
	}
	p.marker = mark.Sum(nil)
	if h.CRL != "" {
		if p.files[1], err = filever.Stat(h.CRL); err != nil {
			return nil, fmt.Errorf("%s: client CRL %s: %w", h.Host, h.CRL, err)
		}
		if p.crls, err = ReadCRL(h.CRL, p.cas); err != nil {
			return nil, fmt.Errorf("%s: client CRL %s: %w", h.Host, h.CRL, err)
		}
		p.revoked = map[string]bool{}
		for _, crl := range p.crls {
			for _, e := range crl.RevokedCertificateEntries {
				p.revoked[revokedKey(crl.RawIssuer, e.SerialNumber.Bytes())] = true
			}
		}
	}
	p.verified, _ = lru.New[*x509.Certificate, struct{}](verifiedCacheSize) // fails only for a size <= 0
	return p, nil
}

// lookup returns the policy of a server name (canonical), or nil.
func (st *clientState) lookup(name string) *clientPolicy {
	if p := st.exact[name]; p != nil {
		return p
	}
	if len(st.wildcard) == 0 {
		return nil
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			if p := st.wildcard[name[i+1:]]; p != nil {
				return p
			}
		}
	}
	return nil
}

// Run re-reads a policy's CA and CRL files when they change, every
// Interval, until ctx is done. A file that no longer loads keeps the
// last good copy in service, with an error logged; a stale CRL fails
// closed (see verify), so an operator must fix it.
func (ca *ClientAuth) Run(ctx context.Context) {
	if ca == nil {
		return
	}
	t := time.NewTicker(ca.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ca.refresh()
		}
	}
}

// refresh reloads the policies whose files changed since they were read.
func (ca *ClientAuth) refresh() {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	st := ca.state.Load()
	var ps []*clientPolicy
	changed := false
	for _, p := range st.byHost {
		if !p.changed() {
			ps = append(ps, p)
			continue
		}
		np, err := loadPolicy(p.cfg)
		if err != nil {
			ca.log.Error("client certificate files not reloaded; the last good copy stays in use", "host", p.cfg.Host, "error", err)
			// Once per broken file: stamp it so that the error is not
			// repeated every interval.
			ps = append(ps, p.restamped())
			changed = true
			continue
		}
		ca.log.Info("client certificate files reloaded", "host", p.cfg.Host, "ca", p.cfg.CA, "crl", p.cfg.CRL, "revoked", len(np.revoked))
		ps = append(ps, np)
		changed = true
	}
	if changed {
		ca.state.Store(newClientState(ps))
	}
}

// changed reports whether a file of p differs from when it was read.
func (p *clientPolicy) changed() bool {
	paths := [2]string{p.cfg.CA, p.cfg.CRL}
	for i, path := range paths {
		if path == "" {
			continue
		}
		st, err := filever.Stat(path)
		if err != nil || !st.Same(p.files[i]) {
			return true
		}
	}
	return false
}

// restamped is p with its files' current stamps, so that a file that
// failed to load is retried only when it changes again.
func (p *clientPolicy) restamped() *clientPolicy {
	np := &clientPolicy{cfg: p.cfg, cas: p.cas, pool: p.pool, crls: p.crls, revoked: p.revoked,
		marker: p.marker, verified: p.verified, files: p.files}
	for i, path := range [2]string{p.cfg.CA, p.cfg.CRL} {
		if path != "" {
			np.files[i], _ = filever.Stat(path) // a missing file: zero, which differs once it is back
		}
	}
	return np
}

// acmeHello reports a TLS-ALPN-01 validation, which must get the
// challenge certificate without being asked for one.
func acmeHello(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == listener.ACMETLSProtocol
}

// configForClient returns the TLS config of a handshake whose SNI names
// a host with client_certs, derived from base (the listener's); nil for
// every other handshake (base serves it unchanged).
func (ca *ClientAuth) configForClient(base *tls.Config, hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if ca == nil || hello.ServerName == "" || acmeHello(hello) {
		return nil, nil
	}
	st := ca.state.Load()
	if len(st.byHost) == 0 {
		return nil, nil
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	p := st.lookup(name)
	if p == nil {
		return nil, nil
	}
	return p.tlsConfig(ca, base), nil
}

// tlsConfig is p's handshake config: base's certificates and protocols,
// a certificate request naming p's CAs, and verification by
// verifyConnection, which Go also calls on a resumed session.
//
// Go verifies nothing itself (RequestClientCert): verifyConnection does
// it all, requiring a certificate unless mode is optional, so that a refusal has a reason for the
// metric and a resumed session is verified against the policy loaded
// now. Session tickets stay within the policy: WrapSession tags them
// with p's marker (host and CA bundle) and UnwrapSession refuses to
// resume a ticket without it — one issued for another host, with or
// without client certificates, or before the CA changed — which falls
// back to a full handshake. The tickets are sealed with base's
// (rotating) keys.
func (p *clientPolicy) tlsConfig(ca *ClientAuth, base *tls.Config) *tls.Config {
	p.confOnce.Do(func() {
		p.conf = &tls.Config{
			MinVersion:     base.MinVersion,
			NextProtos:     slices.DeleteFunc(slices.Clone(base.NextProtos), func(s string) bool { return s == listener.ACMETLSProtocol }),
			GetCertificate: base.GetCertificate,
			Certificates:   base.Certificates,
			// Required or not, verifyConnection decides, so that a
			// missing certificate is counted like any other refusal.
			ClientAuth: tls.RequestClientCert,
			// Sent in the certificate request: browsers offer only
			// certificates issued by these.
			ClientCAs: p.pool,
			VerifyConnection: func(cs tls.ConnectionState) error {
				return ca.verifyConnection(p, cs)
			},
			WrapSession: func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
				ss.Extra = append(ss.Extra, p.marker)
				return base.EncryptTicket(cs, ss)
			},
			UnwrapSession: func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
				ss, err := base.DecryptTicket(identity, cs)
				if err != nil || ss == nil {
					return nil, err
				}
				if !slices.ContainsFunc(ss.Extra, func(e []byte) bool { return bytes.Equal(e, p.marker) }) {
					return nil, nil // not ours: a full handshake
				}
				return ss, nil
			},
		}
	})
	return p.conf
}

// errClientCert fails a handshake; the alert tells the client no more.
var errClientCert = errors.New("client certificate refused")

// verifyConnection verifies the client certificate of a handshake (also
// a resumed one) against p.
func (ca *ClientAuth) verifyConnection(p *clientPolicy, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 && p.cfg.Optional {
		return nil
	}
	reason := ca.verify(p, cs.PeerCertificates)
	if reason == "" {
		p.verified.Add(cs.PeerCertificates[0], struct{}{})
		return nil
	}
	ca.onFailure(p.cfg.Host, reason)
	ca.log.Debug("client certificate refused", "host", p.cfg.Host, "reason", reason, "resumed", cs.DidResume)
	return fmt.Errorf("%w: %s", errClientCert, reason)
}

// verify checks certs (leaf first, then the intermediates the client
// sent) against p at the current time and returns the reason for a
// refusal, "" when they pass.
func (ca *ClientAuth) verify(p *clientPolicy, certs []*x509.Certificate) string {
	if len(certs) == 0 {
		return ReasonNoCertificate
	}
	now := ca.now()
	if stale := CRLStale(p.crls, now); stale != nil {
		// nginx refuses too ("CRL has expired"): a stale list may miss
		// the revocation that matters. Fail closed, loudly once.
		if !p.staleLogged.Swap(true) {
			ca.log.Error("client CRL is past its next update; client certificates are refused until it is replaced",
				"host", p.cfg.Host, "crl", p.cfg.CRL, "issuer", stale.Issuer.String(), "next_update", stale.NextUpdate)
		}
		return ReasonCRLStale
	}
	leaf := certs[0]
	opts := x509.VerifyOptions{Roots: p.pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return verifyReason(err, leaf, now)
	}
	if p.crls != nil && revokedIn(p, chains) {
		return ReasonRevoked
	}
	return ""
}

// revokedKey is the key of p.revoked for a certificate's issuer (raw
// subject) and serial number.
func revokedKey(issuer, serial []byte) string {
	return string(issuer) + "\x00" + string(serial)
}

// revokedIn reports whether every chain has a certificate that one of
// p's CRLs revokes: a serial number only means something with its
// issuer, so a certificate is looked up by its issuer and serial.
func revokedIn(p *clientPolicy, chains [][]*x509.Certificate) bool {
	for _, chain := range chains {
		bad := false
		for _, c := range chain[:len(chain)-1] { // the root is not revoked by its own CRL
			if p.revoked[revokedKey(c.RawIssuer, c.SerialNumber.Bytes())] {
				bad = true
				break
			}
		}
		if !bad {
			return false
		}
	}
	return true
}

// verifyReason maps a verification error to a reason label.
func verifyReason(err error, leaf *x509.Certificate, now time.Time) string {
	var inv x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		if now.Before(leaf.NotBefore) {
			return ReasonNotYetValid
		}
		return ReasonExpired
	case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
		return ReasonBadUsage
	case errors.As(err, &ua):
		return ReasonUnknownAuthority
	}
	return ReasonInvalid
}

// Check judges one request's connection for the host with client_certs
// named host (ClientPolicyConfig.Host), against the policy loaded now.
// It returns the verified client certificate (nil when mode optional and
// none was sent) and "" when the request may go on, else the reason for
// a refusal. A certificate verified by the connection's handshake under
// the same policy is not verified again, but expiry and a stale CRL are
// checked every time. A nil ClientAuth refuses (ReasonNoPolicy).
func (ca *ClientAuth) Check(host string, cs *tls.ConnectionState) (*x509.Certificate, string) {
	if ca == nil {
		return nil, ReasonNoPolicy
	}
	p := ca.state.Load().byHost[host]
	if p == nil {
		return nil, ReasonNoPolicy
	}
	if cs == nil || len(cs.PeerCertificates) == 0 {
		if p.cfg.Optional && cs != nil {
			return nil, ""
		}
		return nil, ReasonNoCertificate
	}
	leaf := cs.PeerCertificates[0]
	if _, ok := p.verified.Get(leaf); ok {
		now := ca.now()
		switch {
		case now.After(leaf.NotAfter):
			return nil, ReasonExpired
		case CRLStale(p.crls, now) != nil:
			return nil, ReasonCRLStale
		}
		return leaf, ""
	}
	// Verified under another policy (before a reload or a CRL update),
	// or by none (the host had no client_certs when the connection was
	// made).
	if reason := ca.verify(p, cs.PeerCertificates); reason != "" {
		return nil, reason
	}
	p.verified.Add(leaf, struct{}{})
	return leaf, ""
}
