// Package cert holds the certificates of the gateway's HTTPS listener.
//
// Source (source.go) answers every TLS handshake's GetCertificate: the
// first static certificate (tls.certificates) valid for the SNI name,
// else the certificate certmagic obtained over ACME (tls.acme) for a
// managed name, else the ACME challenge certificate of a TLS-ALPN-01
// validation. It obtains and renews the managed certificates in the
// background, answers HTTP-01 challenges for the plain HTTP listener,
// says which names get a redirect to HTTPS, and lists its certificates
// for the dashboard and the expiry metric.
//
// certmagic keeps accounts, keys and certificates in state_dir/certs,
// or, for a fleet with fleet.certificates, in Redis (redis.go), mirrored
// to those files so that a node restarted while Redis is down still
// serves its certificates. With Redis every node shares the ACME
// account, certificates and challenge tokens (any node can answer the
// CA), and one node at a time obtains or renews a certificate.
// certmagic's zap log is bridged into the caller's slog logger (zap.go).
//
// ClientAuth (clientauth.go) asks for client certificates in the
// handshakes of the hosts with client_certs only, through the listener
// config's GetConfigForClient: it verifies them itself (CA bundle and
// CRL read by clientca.go, re-read when the files change), keeps session
// tickets within the host that issued them, and judges every request's
// connection again (Check) against the policy loaded now.
//
// The package knows nothing of the config file: package proxy maps the
// tls and fleet sections to a Config and calls Update on reload. Source,
// ClientAuth and Redis are safe for concurrent use.
package cert
