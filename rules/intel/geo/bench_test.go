package geo

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"gatehouse/rules/intel/geo/geotest"
)

// benchDBs writes databases of n networks each (/24s from 1.0.0.0, one
// of 250 countries and one of n/4 ASNs each), about the shape of
// GeoLite2: many networks, far fewer distinct records.
func benchDBs(b *testing.B, n int) *DB {
	b.Helper()
	dir := b.TempDir()
	countries, asns := map[string]mmdbtype.Map{}, map[string]mmdbtype.Map{}
	var codes []string
	for i := 0; i+2 <= len(iso3166); i += 3 {
		codes = append(codes, iso3166[i:i+2])
	}
	for i := range n {
		cidr := fmt.Sprintf("%d.%d.%d.0/24", 1+i>>16, (i>>8)&255, i&255)
		countries[cidr] = geotest.Country(codes[i%len(codes)])
		asns[cidr] = geotest.ASN(uint32(64512 + i%(n/4+1)))
	}
	country, asn := filepath.Join(dir, "c.mmdb"), filepath.Join(dir, "a.mmdb")
	geotest.Write(b, country, "GeoLite2-Country", time.Now(), countries)
	geotest.Write(b, asn, "GeoLite2-ASN", time.Now(), asns)
	d, err := Open(Config{Country: country, ASN: asn})
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkLookup is the cost per request: a country and an ASN lookup.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("networks=%d", n), func(b *testing.B) {
			d := benchDBs(b, n)
			ips := make([]netip.Addr, 1024)
			for i := range ips {
				j := i * 97 % n
				ips[i] = netip.AddrFrom4([4]byte{byte(1 + j>>16), byte(j >> 8), byte(j), byte(i)})
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ip := ips[i&1023]
				i++
				if d.Country(ip) == "" || d.ASN(ip) == 0 {
					b.Fatalf("no answer for %s", ip)
				}
			}
		})
	}
}

// BenchmarkOpen is the cost of loading (and reloading) a database.
func BenchmarkOpen(b *testing.B) {
	d := benchDBs(b, 100000)
	country, asn := d.Config()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(Config{Country: country, ASN: asn}); err != nil {
			b.Fatal(err)
		}
	}
}
