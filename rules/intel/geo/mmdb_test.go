package geo

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

// countryRecord and asnRecord are the GeoLite2-Country and GeoLite2-ASN
// record layouts (DB-IP Lite writes the same).
func countryData(cc string) mmdbtype.Map {
	return mmdbtype.Map{
		"continent":          mmdbtype.Map{"code": mmdbtype.String("EU"), "geoname_id": mmdbtype.Uint32(6255148)},
		"country":            mmdbtype.Map{"iso_code": mmdbtype.String(cc), "geoname_id": mmdbtype.Uint32(2921044), "names": mmdbtype.Map{"en": mmdbtype.String("Country " + cc)}},
		"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(cc), "geoname_id": mmdbtype.Uint32(2921044)},
	}
}

func registeredOnly(cc string) mmdbtype.Map {
	return mmdbtype.Map{"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(cc)}}
}

func asnData(n uint32) mmdbtype.Map {
	return mmdbtype.Map{
		"autonomous_system_number":       mmdbtype.Uint32(n),
		"autonomous_system_organization": mmdbtype.String("AS" + strconv.Itoa(int(n)) + " Example Networks"),
	}
}

// writeDB writes a MaxMind DB of type dbType holding data (CIDR →
// record) to path through a temporary file and a rename, as geoipupdate
// replaces its files.
func writeDB(t testing.TB, path, dbType string, build time.Time, data map[string]mmdbtype.Map) {
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
