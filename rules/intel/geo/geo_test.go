package geo

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"gatehouse/rules/intel/geo/geotest"
)

var build1 = time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)

func testDBs(t *testing.T) (dir, country, asn string) {
	t.Helper()
	dir = t.TempDir()
	country, asn = filepath.Join(dir, "GeoLite2-Country.mmdb"), filepath.Join(dir, "GeoLite2-ASN.mmdb")
	geotest.Write(t, country, "GeoLite2-Country", build1, map[string]mmdbtype.Map{
		"198.51.100.0/25":   geotest.Country("DE"),
		"198.51.100.128/25": geotest.Country("nl"), // lower case in the file: read upper
		"203.0.113.0/24":    geotest.Registered("US"),
		"2001:db8::/48":     geotest.Country("FR"),
		"2001:db8:1::/48":   mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("EU1")}},
		"2001:db8:2::/48":   geotest.Country("ZZ"), // DB-IP's unknown
	})
	geotest.Write(t, asn, "GeoLite2-ASN", build1, map[string]mmdbtype.Map{
		"198.51.100.0/24": geotest.ASN(64500),
		"203.0.113.0/25":  geotest.ASN(64501),
		"2001:db8::/32":   geotest.ASN(4200000000),
	})
	return dir, country, asn
}

func TestLookup(t *testing.T) {
	t.Parallel()
	_, country, asn := testDBs(t)
	d, err := Open(Config{Country: country, ASN: asn})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip      string
		country string
		asn     uint32
	}{
		{"198.51.100.7", "DE", 64500},
		{"198.51.100.200", "NL", 64500},
		{"::ffff:198.51.100.7", "DE", 64500}, // IPv4-mapped: the IPv4 answer
		{"203.0.113.9", "US", 64501},         // registered country only
		{"203.0.113.200", "US", 0},
		{"2001:db8::1", "FR", 4200000000},
		{"2001:db8:1::1", "", 4200000000}, // not a two-letter code: unknown
		{"2001:db8:2::1", "", 4200000000}, // not an ISO 3166-1 code: unknown
		{"10.0.0.1", "", 0},
		{"127.0.0.1", "", 0},
		{"::1", "", 0},
	} {
		ip := netip.MustParseAddr(tc.ip)
		if got := d.Country(ip); got != tc.country {
			t.Errorf("Country(%s) = %q, want %q", tc.ip, got, tc.country)
		}
		if got := d.ASN(ip); got != tc.asn {
			t.Errorf("ASN(%s) = %d, want %d", tc.ip, got, tc.asn)
		}
	}
	if got := d.Country(netip.Addr{}); got != "" {
		t.Errorf("Country(invalid) = %q, want \"\"", got)
	}
	st := d.Stats()
	if !st.Country.Build.Equal(build1) || st.Country.Records == 0 || st.ASN.Records != 3 {
		t.Errorf("Stats() = %+v, want build %s and records", st, build1)
	}
}

func TestOpenOnlyOne(t *testing.T) {
	t.Parallel()
	_, country, _ := testDBs(t)
	d, err := Open(Config{Country: country})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.ASN(netip.MustParseAddr("198.51.100.7")); got != 0 {
		t.Errorf("ASN without an asn database = %d, want 0", got)
	}
	if d.HasASN() || !d.HasCountry() {
		t.Errorf("HasASN, HasCountry = %v, %v; want false, true", d.HasASN(), d.HasCountry())
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir, country, asn := testDBs(t)
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.mmdb")
	data, err := os.ReadFile(country)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"none", Config{}, "no database configured"},
		{"missing", Config{Country: filepath.Join(dir, "nope.mmdb")}, "nope.mmdb: no such file or directory"},
		{"garbage", Config{ASN: garbage}, "geoip asn database " + garbage},
		{"truncated", Config{Country: truncated}, "geoip country database " + truncated},
		// An ASN file given as the country database: no record has a country.
		{"wrong kind", Config{Country: asn}, ErrNoRecords.Error()},
		{"wrong kind asn", Config{ASN: country}, ErrNoRecords.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Open(%+v) = %v, want error containing %q", tc.cfg, err, tc.wantErr)
			}
		})
	}
	if err := Check("asn", country); !errors.Is(err, ErrNoRecords) {
		t.Errorf("Check(asn, country file) = %v, want ErrNoRecords", err)
	}
	if err := Check("country", country); err != nil {
		t.Errorf("Check(country) = %v, want nil", err)
	}
}

// TestRefreshRename: geoipupdate writes a new file and renames it over
// the old; Refresh swaps it in, and does nothing while it is unchanged.
func TestRefreshRename(t *testing.T) {
	t.Parallel()
	_, country, asn := testDBs(t)
	d, err := Open(Config{Country: country, ASN: asn})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("198.51.100.7")
	if changed, err := d.Refresh(); changed || err != nil {
		t.Fatalf("Refresh() of unchanged files = %v, %v; want false, nil", changed, err)
	}
	build2 := build1.Add(7 * 24 * time.Hour)
	geotest.Write(t, country, "GeoLite2-Country", build2, map[string]mmdbtype.Map{"198.51.100.0/24": geotest.Country("PL")})
	if changed, err := d.Refresh(); !changed || err != nil {
		t.Fatalf("Refresh() after rename = %v, %v; want true, nil", changed, err)
	}
	if got := d.Country(ip); got != "PL" {
		t.Errorf("Country(%s) after reload = %q, want PL", ip, got)
	}
	if got := d.ASN(ip); got != 64500 {
		t.Errorf("ASN(%s) after a country reload = %d, want 64500 (untouched)", ip, got)
	}
	if st := d.Stats(); !st.Country.Build.Equal(build2) {
		t.Errorf("Stats().Country.Build = %s, want %s", st.Country.Build, build2)
	}
}

// TestRefreshBrokenKeepsOld: a file replaced by garbage, or removed,
// leaves the last good copy serving, counts one failure per change and
// recovers when a good file comes back.
func TestRefreshBrokenKeepsOld(t *testing.T) {
	t.Parallel()
	dir, country, asn := testDBs(t)
	d, err := Open(Config{Country: country, ASN: asn})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("198.51.100.7")
	tmp := filepath.Join(dir, "new.mmdb")
	if err := os.WriteFile(tmp, []byte("\xab\xcd\xefMaxMind.com broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, country); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err := d.Refresh()
		_ = err // the first returns the failure, the next see it unchanged
	}
	if got := d.Country(ip); got != "DE" {
		t.Errorf("Country(%s) with a broken file = %q, want DE (the last good copy)", ip, got)
	}
	st := d.Stats()
	if st.Country.ReloadFailures != 1 || st.Country.LastError == "" {
		t.Errorf("Stats().Country = %+v, want 1 failure and its error", st.Country)
	}
	if err := os.Remove(asn); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Refresh(); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Refresh() with the asn file removed = %v, want no such file", err)
	}
	if got := d.ASN(ip); got != 64500 {
		t.Errorf("ASN(%s) with the file removed = %d, want 64500", ip, got)
	}
	_, _ = d.Refresh() // the same missing file: not counted again
	if st := d.Stats(); st.ASN.ReloadFailures != 1 {
		t.Errorf("Stats().ASN.ReloadFailures = %d, want 1", st.ASN.ReloadFailures)
	}
	geotest.Write(t, country, "GeoLite2-Country", build1, map[string]mmdbtype.Map{"198.51.100.0/24": geotest.Country("SE")})
	if changed, err := d.Refresh(); !changed {
		t.Fatalf("Refresh() with a good file back = %v, %v; want a change", changed, err)
	}
	if got := d.Country(ip); got != "SE" {
		t.Errorf("Country(%s) after recovery = %q, want SE", ip, got)
	}
	if st := d.Stats(); st.Country.LastError != "" {
		t.Errorf("Stats().Country.LastError after recovery = %q, want \"\"", st.Country.LastError)
	}
}

// TestLookupDuringRefresh: lookups run while files are swapped (go test
// -race checks the atomic swap).
func TestLookupDuringRefresh(t *testing.T) {
	t.Parallel()
	_, country, asn := testDBs(t)
	d, err := Open(Config{Country: country, ASN: asn})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	bad := make(chan string, 1)
	go func() {
		defer close(done)
		ip := netip.MustParseAddr("198.51.100.7")
		for range 20000 {
			if c := d.Country(ip); c != "DE" && c != "AT" {
				select {
				case bad <- c:
				default:
				}
			}
		}
	}()
	for i := range 5 {
		cc := []string{"DE", "AT"}[i%2]
		geotest.Write(t, country, "GeoLite2-Country", build1.Add(time.Duration(i)*time.Hour), map[string]mmdbtype.Map{"198.51.100.0/24": geotest.Country(cc)})
		if _, err := d.Refresh(); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	select {
	case c := <-bad:
		t.Errorf("Country during refresh = %q, want DE or AT", c)
	default:
	}
}

func TestParseCountry(t *testing.T) {
	t.Parallel()
	n := 0
	for i := 0; i < len(iso3166); i += 3 {
		n++
	}
	if n != 250 { // 249 ISO 3166-1 codes and XK
		t.Errorf("iso3166 holds %d codes, want 250", n)
	}
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"de", "DE", true}, {"De", "DE", true}, {"XK", "XK", true}, {"US", "US", true},
		{"XX", "", false}, {"UK", "", false}, {"EU", "", false}, {"D", "", false}, {"DEU", "", false},
		{"Ä1", "", false}, {"", "", false},
	} {
		got, ok := ParseCountry(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseCountry(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseCountry checks ParseCountry against the code list: accepted
// exactly when the upper-case form is listed, idempotent, and its
// CountryIndex is in range and inverts to the code.
func FuzzParseCountry(f *testing.F) {
	// Listed codes in both cases, unlisted letter pairs, other lengths, bytes
	// that fold to letters with |0x20.
	for _, s := range []string{"DE", "de", "xk", "UK", "ZZ", "D", "DEU", "", "\x04\x05", "@[", "Dé"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cc, ok := ParseCountry(s)
		listed := len(s) == 2 && strings.Contains(" "+iso3166+" ", " "+strings.ToUpper(s)+" ")
		if ok != listed {
			t.Fatalf("ParseCountry(%q) = %q, %v; want accepted %v", s, cc, ok, listed)
		}
		if !ok {
			return
		}
		if again, ok2 := ParseCountry(cc); !ok2 || again != cc {
			t.Fatalf("ParseCountry(%q) = %q, %v; want %q again", cc, again, ok2, cc)
		}
		i, ok := CountryIndex(cc)
		if !ok || i < 0 || i >= Countries || string([]byte{'A' + byte(i/26), 'A' + byte(i%26)}) != cc {
			t.Fatalf("CountryIndex(%q) = %d, %v; want the index of %q", cc, i, ok, cc)
		}
	})
}
