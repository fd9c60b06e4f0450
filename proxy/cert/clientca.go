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

// ReadCRL reads the certificate revocation lists of a file
// (hosts[].client_certs.crl): one DER CRL, or any number of PEM ("X509
// CRL") blocks, one per issuing CA, as nginx's ssl_crl takes them. Each
// must be signed by a certificate of cas: a CRL from another CA would
// revoke nothing of this bundle's, silently. Two CRLs of one issuer are
// refused, since which one is current cannot be told.
func ReadCRL(path string, cas []*x509.Certificate) ([]*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ders [][]byte
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			return nil, fmt.Errorf("PEM block %q is not an X509 CRL", b.Type)
		}
		ders = append(ders, b.Bytes)
	}
	if ders == nil {
		ders = [][]byte{data}
	}
	crls := make([]*x509.RevocationList, 0, len(ders))
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: not a CRL: %w", i+1, err)
		}
		signed := false
		for _, ca := range cas {
			if bytes.Equal(ca.RawSubject, crl.RawIssuer) && crl.CheckSignatureFrom(ca) == nil {
				signed = true
				break
			}
		}
		if !signed {
			return nil, fmt.Errorf("CRL of %s is not signed by a certificate of the CA bundle", crl.Issuer)
		}
		for _, prev := range crls {
			if bytes.Equal(prev.RawIssuer, crl.RawIssuer) {
				return nil, fmt.Errorf("two CRLs of %s: keep the current one", crl.Issuer)
			}
		}
		crls = append(crls, crl)
	}
	return crls, nil
}

// Unrevocable lists the CAs of cas that issue certificates no CRL of crls
// covers: their certificates are never checked for revocation.
func Unrevocable(cas []*x509.Certificate, crls []*x509.RevocationList) []*x509.Certificate {
	var out []*x509.Certificate
	for _, ca := range cas {
		covered := false
		for _, crl := range crls {
			covered = covered || bytes.Equal(crl.RawIssuer, ca.RawSubject)
		}
		if !covered {
			out = append(out, ca)
		}
	}
	return out
}

// CRLStale returns the first of crls past its NextUpdate at now, or nil:
// its issuer may have revoked certificates since that it does not list.
// A CRL without NextUpdate never goes stale.
func CRLStale(crls []*x509.RevocationList, now time.Time) *x509.RevocationList {
	for _, crl := range crls {
		if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
			return crl
		}
	}
	return nil
}
