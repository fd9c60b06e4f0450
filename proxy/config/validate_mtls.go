package config

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gatehouse/proxy/cert"
)

// clientCerts checks every hosts[].client_certs: the mode, the CA
// bundle (readable, at least one CA certificate) and the CRL (readable,
// signed by a certificate of the bundle); and that tls is on, since the
// certificate is asked for in the TLS handshake.
func (v *validator) clientCerts(f *File) {
	for i := range f.Hosts {
		cc := f.Hosts[i].ClientCerts
		if cc == nil {
			continue
		}
		p := "hosts[" + strconv.Itoa(i) + "].client_certs"
		if !f.TLSOn() {
			v.add(p, "needs tls: client certificates are asked for in the TLS handshake, and a host with client_certs is never served over plain HTTP")
		}
		for j, m := range f.Hosts[i].Match {
			if _, err := netip.ParseAddr(strings.Trim(m.Name(), "[]")); err == nil {
				v.add("hosts["+strconv.Itoa(i)+"].match["+strconv.Itoa(j)+"]", "%s is an address: a client never sends an address as TLS server name (SNI), so a host with client_certs could never be served by it; use a DNS name", m.Name())
			}
		}
		switch cc.Mode {
		case ClientCertsRequire, ClientCertsOptional:
		default:
			v.add(p+".mode", "%q is not one of require, optional", cc.Mode)
		}
		if cc.CA == "" {
			v.add(p+".ca", "required: the PEM bundle of the certificate authorities whose client certificates are accepted")
			continue
		}
		cas, err := cert.ReadClientCAs(cc.CA)
		if err != nil {
			if errors.Is(err, cert.ErrNoCertificates) {
				v.add(p+".ca", "%s: no PEM certificate in the file; give the CA certificates (-----BEGIN CERTIFICATE-----)", cc.CA)
			} else {
				v.add(p+".ca", "%s: %v", cc.CA, pathErr(err))
			}
			continue
		}
		if cc.CRL == "" {
			continue
		}
		crls, err := cert.ReadCRL(cc.CRL, cas)
		if err != nil {
			v.add(p+".crl", "%s: %v", cc.CRL, pathErr(err))
			continue
		}
		if stale := cert.CRLStale(crls, time.Now()); stale != nil {
			v.warn(p+".crl", "%s: the CRL of %s is past its next update (%s): every client certificate is refused until it is replaced", cc.CRL, stale.Issuer, stale.NextUpdate.UTC().Format(time.RFC3339))
		}
		for _, ca := range cert.Unrevocable(cas, crls) {
			v.warn(p+".crl", "%s holds no CRL of %s: the certificates it issues are never checked for revocation; add its CRL to the file", cc.CRL, ca.Subject)
		}
	}
}

// clientCertFiles adds the CA and CRL files to the files gatehouse
// reads (inputFiles).
func clientCertFiles(f *File, in map[string]string) {
	for i, h := range f.Hosts {
		if cc := h.ClientCerts; cc != nil {
			p := "hosts[" + strconv.Itoa(i) + "].client_certs"
			in[p+".ca"] = cc.CA
			if cc.CRL != "" {
				in[p+".crl"] = cc.CRL
			}
		}
	}
}
