package config

// Client certificate modes (hosts[].client_certs.mode).
const (
	ClientCertsRequire  = "require"
	ClientCertsOptional = "optional"
)

// ClientCerts asks the clients of a host for a TLS client certificate
// (key hosts[].client_certs), as nginx's ssl_verify_client does for a
// server block, but only in the handshakes for this host's names: other
// hosts on the same listener are never asked. Needs tls.
//
// A request for the host must have come over TLS with the host's own
// name as its SNI (421 otherwise, whatever listen.strict_sni says), and
// the upstream learns the verified certificate from the
// X-Client-Cert-* headers gatehouse sets, never from the client.
type ClientCerts struct {
	// CA is the PEM bundle of the certificate authorities whose client
	// certificates are accepted (key hosts[].client_certs.ca). Required.
	// Re-read when the file changes and on reload.
	CA string `yaml:"ca"`
	// Mode is require (no certificate, no handshake) or optional (a
	// certificate is asked for; one that is sent must verify, and the
	// upstream is told X-Client-Cert-Verify: NONE when none was). Default
	// require.
	Mode string `yaml:"mode"`
	// CRL is a certificate revocation list (PEM or DER) signed by a
	// certificate of CA (key hosts[].client_certs.crl): certificates it
	// lists are refused. Once past its next update it refuses every
	// certificate until it is replaced (fail closed, as nginx). Re-read
	// when the file changes and on reload. Default none.
	CRL string `yaml:"crl"`
}

// Optional reports mode optional.
func (c *ClientCerts) Optional() bool { return c.Mode == ClientCertsOptional }

// applyClientCertDefaults sets each hosts[].client_certs.mode left out
// to require.
func applyClientCertDefaults(f *File) {
	for i := range f.Hosts {
		if cc := f.Hosts[i].ClientCerts; cc != nil && cc.Mode == "" {
			cc.Mode = ClientCertsRequire
		}
	}
}
