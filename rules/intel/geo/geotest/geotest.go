// Package geotest writes real MaxMind DB files for tests, with MaxMind's
// own writer, in the record layouts of GeoLite2-Country and GeoLite2-ASN
// (which DB-IP's Lite files share). Only tests import it.
package geotest

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Country is a GeoLite2-Country record for the code cc.
func Country(cc string) mmdbtype.Map {
	return mmdbtype.Map{
		"continent":          mmdbtype.Map{"code": mmdbtype.String("EU"), "geoname_id": mmdbtype.Uint32(6255148)},
		"country":            mmdbtype.Map{"iso_code": mmdbtype.String(cc), "geoname_id": mmdbtype.Uint32(2921044), "names": mmdbtype.Map{"en": mmdbtype.String("Country " + cc)}},
		"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(cc), "geoname_id": mmdbtype.Uint32(2921044)},
	}
}

// Registered is a country record with only registered_country, as
// GeoLite2 writes for some anycast and satellite networks.
func Registered(cc string) mmdbtype.Map {
	return mmdbtype.Map{"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(cc)}}
}

// ASN is a GeoLite2-ASN record for the AS number n.
func ASN(n uint32) mmdbtype.Map {
	return mmdbtype.Map{
		"autonomous_system_number":       mmdbtype.Uint32(n),
		"autonomous_system_organization": mmdbtype.String("AS" + strconv.Itoa(int(n)) + " Example Networks"),
	}
}

// Write writes a MaxMind DB of type dbType ("GeoLite2-Country",
// "GeoLite2-ASN") built at build, holding data (CIDR → record), to path
// through a temporary file and a rename, as geoipupdate replaces its
// files.
func Write(t testing.TB, path, dbType string, build time.Time, data map[string]mmdbtype.Map) {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24, IPVersion: 6,
		IncludeReservedNetworks: true, BuildEpoch: build.Unix(),
		Description: map[string]string{"en": dbType + " test database"}, Languages: []string{"en"}})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range data {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(n, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mmdb-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(tmp); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}
