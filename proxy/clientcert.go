package proxy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"

	"gatehouse/middleware"
	"gatehouse/proxy/cert"
	"gatehouse/proxy/config"

	"github.com/prometheus/client_golang/prometheus"
)

// The request headers that tell the upstream of a host with
// client_certs which certificate the gateway verified. Hygiene removes
// every client-sent one on every host (middleware strippedHeaders), so
// an upstream can believe them.
const (
	// headerCertVerify is SUCCESS, or NONE when mode optional and the
	// client sent no certificate (nginx's $ssl_client_verify).
	headerCertVerify = "X-Client-Cert-Verify"
	// headerCertSubject is the subject's distinguished name (RFC 4514),
	// as nginx's $ssl_client_s_dn.
	headerCertSubject = "X-Client-Cert-Subject"
	// headerCertIssuer is the issuer's distinguished name.
	headerCertIssuer = "X-Client-Cert-Issuer"
	// headerCertSerial is the serial number in upper-case hex, as
	// nginx's $ssl_client_serial.
	headerCertSerial = "X-Client-Cert-Serial"
	// headerCertFingerprint is the SHA-256 of the certificate (DER), in
	// lower-case hex: what pins one certificate, not just a name.
	headerCertFingerprint = "X-Client-Cert-Fingerprint"
)

// clientCertHeaders are every one of them, in the order they are set.
var clientCertHeaders = [...]string{headerCertVerify, headerCertSubject, headerCertIssuer, headerCertSerial, headerCertFingerprint}

// clientAuthConfig maps hosts[].client_certs to the handshake policies.
func clientAuthConfig(cfg *config.File) []cert.ClientPolicyConfig {
	var out []cert.ClientPolicyConfig
	for _, h := range cfg.Hosts {
		cc := h.ClientCerts
		if cc == nil {
			continue
		}
		pc := cert.ClientPolicyConfig{Host: h.Match[0].String(), CA: cc.CA, CRL: cc.CRL, Optional: cc.Optional()}
		for _, m := range h.Match {
			pc.Names = append(pc.Names, m.String())
		}
		out = append(out, pc)
	}
	return out
}

// newClientAuth builds the server's client certificate policies; the
// handshake failures are counted in gatehouse_tls_client_cert_failures_total.
func (s *Server) newClientAuth(cfg *config.File) (*cert.ClientAuth, error) {
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_tls_client_cert_failures_total",
		Help: "TLS handshakes refused for their client certificate, by host (hosts[].client_certs) and reason.",
	}, []string{"host", "reason"})
	if err := s.metrics.reg.Register(failures); err != nil {
		return nil, err
	}
	return cert.NewClientAuth(cert.ClientAuthConfig{
		Hosts:     clientAuthConfig(cfg),
		OnFailure: func(host, reason string) { failures.WithLabelValues(host, reason).Inc() },
		Log:       s.log.With("component", "client_certs"),
	})
}

// buildClientCert checks, for a host with client_certs, that a request
// came over TLS for this very host and with a certificate that verifies
// against the host's policy as loaded now, and tells the upstream who
// the client is (clientCertHeaders). It answers 421 Misdirected Request
// (RFC 9110 §15.5.20) to a request that arrived over plain HTTP, without
// SNI or with the SNI of another name: browsers reuse a connection for
// every name its server certificate covers (HTTP/2 coalescing), and a
// client could otherwise reach an mTLS host over a connection whose
// handshake never asked for a certificate (the class of bypass reported
// against Traefik's per-router TLS options). A 421 makes a browser retry
// on a connection of its own.
// A certificate that no longer verifies (revoked or expired since the
// handshake, or the CA or CRL replaced) gets 403.
func buildClientCert(b *chainBuilder, st *site) (wrapper, error) {
	if st.clientCerts == nil {
		return nil, nil
	}
	auth, host, log := b.s.clientAuth, st.route.name, b.s.log
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := middleware.ScopeFrom(r)
			if r.TLS == nil || !sameName(r.TLS.ServerName, s.RequestHost) {
				if log.Enabled(r.Context(), slog.LevelDebug) {
					log.Debug("request refused: not on a TLS connection for this host", "client_ip", s.ClientIP, "host", host, "status", http.StatusMisdirectedRequest)
				}
				misdirected(w, r)
				return
			}
			leaf, reason := auth.Check(host, r.TLS)
			switch reason {
			case "":
			case cert.ReasonNoCertificate:
				// Only a connection made before the host asked for
				// certificates has none: a new one will be asked.
				misdirected(w, r)
				return
			default:
				log.Debug("request refused: client certificate", "client_ip", s.ClientIP, "host", host, "reason", reason)
				middleware.PlainStatus(w, http.StatusForbidden)
				return
			}
			h := r.Header
			for _, k := range clientCertHeaders {
				delete(h, k)
			}
			if leaf == nil {
				h[headerCertVerify] = []string{"NONE"}
				next.ServeHTTP(w, r)
				return
			}
			subject := headerSafe(leaf.Subject.String())
			s.ClientCert = subject
			h[headerCertVerify] = []string{"SUCCESS"}
			h[headerCertSubject] = []string{subject}
			h[headerCertIssuer] = []string{headerSafe(leaf.Issuer.String())}
			h[headerCertSerial] = []string{serialHex(leaf)}
			sum := sha256.Sum256(leaf.Raw)
			h[headerCertFingerprint] = []string{hex.EncodeToString(sum[:])}
			next.ServeHTTP(w, r)
		})
	}, nil
}

// sameName reports whether the TLS server name sni is host (canonical,
// as in Scope.RequestHost). No SNI is never the same: a host with
// client_certs is served only to handshakes that named it.
func sameName(sni, host string) bool {
	return sni != "" && strings.EqualFold(strings.TrimSuffix(sni, "."), host)
}

// serialHex is the serial number in upper-case hex.
func serialHex(c *x509.Certificate) string {
	return strings.ToUpper(c.SerialNumber.Text(16))
}

// headerSafe escapes what may not stand in a header value (control
// characters) as \xHH: a distinguished name may hold any character, and
// its RFC 4514 form escapes only its own syntax.
func headerSafe(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return v
	}
	const digits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			b.WriteString(`\x`)
			b.WriteByte(digits[c>>4])
			b.WriteByte(digits[c&0xf])
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
