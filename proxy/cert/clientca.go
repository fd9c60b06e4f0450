package cert

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrNoCertificates is returned by ReadClientCAs for a file without a
// single PEM certificate.
var ErrNoCertificates = errors.New("no PEM certificate in the file")

// ReadClientCAs reads a PEM bundle of the certificate authorities whose
// client certificates a host accepts (hosts[].client_certs.ca). Blocks
// other than CERTIFICATE are skipped; a bundle without a certificate is
// an error (ErrNoCertificates), as is a certificate that does not parse
// or is not a CA (a leaf would be trusted as a root otherwise).
func ReadClientCAs(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("certificate %d (%s) is not a CA certificate", len(out)+1, c.Subject)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, ErrNoCertificates
	}
	return out, nil
}

// ReadCRL reads a certificate revocation list (hosts[].client_certs.crl),
// PEM ("X509 CRL") or DER, and checks that one of cas signed it: a CRL
// from another CA would revoke nothing of this one's, silently.
func ReadCRL(path string, cas []*x509.Certificate) (*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	der := data
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "X509 CRL" {
			return nil, fmt.Errorf("PEM block %q is not an X509 CRL", b.Type)
		}
		der = b.Bytes
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("not a CRL: %w", err)
	}
	for _, ca := range cas {
		if bytes.Equal(ca.RawSubject, crl.RawIssuer) && crl.CheckSignatureFrom(ca) == nil {
			return crl, nil
		}
	}
	return nil, fmt.Errorf("CRL of %s is not signed by a certificate of the CA bundle", crl.Issuer)
}

// CRLStale reports whether crl is past its NextUpdate at now: its issuer
// may have revoked certificates since that it does not list. A CRL
// without NextUpdate never goes stale.
func CRLStale(crl *x509.RevocationList, now time.Time) bool {
	return crl != nil && !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate)
}
