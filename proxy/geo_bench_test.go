package proxy

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"gatehouse/rules/intel/geo/geotest"
)

// BenchmarkChainGeo is the full chain of BenchmarkChain with and without
// a geo rule (a country allow list and an ASN deny list, the client
// passing both), and with the upstream headers on too: the difference
// between rows is the geo stage's cost per request.
func BenchmarkChainGeo(b *testing.B) {
	dir := b.TempDir()
	country, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	countries, asns := map[string]mmdbtype.Map{}, map[string]mmdbtype.Map{}
	for i, cc := range []string{"DE", "NL", "US", "FR", "PL", "SE", "AT", "CH"} {
		// 203.0.113.0/24 is split into /27s, one country and AS each.
		cidr := "203.0.113." + strconv.Itoa(i*32) + "/27"
		countries[cidr], asns[cidr] = geotest.Country(cc), geotest.ASN(uint32(64500+i))
	}
	geotest.Write(b, country, "GeoLite2-Country", time.Now(), countries)
	geotest.Write(b, asn, "GeoLite2-ASN", time.Now(), asns)
	intel := "intel:\n  geoip: {country: " + country + ", asn: " + asn + "}\n"
	headers := "intel:\n  geoip: {country: " + country + ", asn: " + asn + ", headers: true}\n"
	rule := "    geo: {allow: [NL, DE], asn_deny: [64502]}\n"

	req := httptest.NewRequest("GET", "http://bench.example.com/index.html", nil)
	req.RemoteAddr = "203.0.113.7:50000" // DE, AS 64500
	req.Header.Set("User-Agent", "bench")
	for _, tc := range []struct{ name, extra string }{
		{"full-chain", ""},
		{"full-chain-geo-rule", rule + intel},
		{"full-chain-geo-rule-headers", rule + headers},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := gatehouseFull(b, tc.extra)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				s.ServeHTTP(w, req)
			}
		})
	}
}
