package config

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"gatehouse/rules/intel/geo/geotest"
)

// writeMMDB writes a one-network database in the GeoLite2 layout of
// dbType (Country or ASN) to dir and returns its path.
func writeMMDB(t *testing.T, dir, dbType string) string {
	t.Helper()
	rec := geotest.Country("DE")
	if dbType == "ASN" {
		rec = geotest.ASN(64500)
	}
	path := filepath.Join(dir, dbType+".mmdb")
	geotest.Write(t, path, "GeoLite2-"+dbType, time.Now(), map[string]mmdbtype.Map{"198.51.100.0/24": rec})
	return path
}

func TestGeoConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	country, asn := writeMMDB(t, dir, "Country"), writeMMDB(t, dir, "ASN")
	geoip := "intel:\n  geoip: {country: " + country + ", asn: " + asn + ", headers: true}\n"
	host := `hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:3000]
`
	f, err := Parse("t.yaml", []byte(geoip+host+`    jail: geo
    geo: {allow: [de, NL, unknown], asn_deny: [64500, AS64501]}
    routes:
      - paths: [/health]
        geo: off
      - paths: [/eu/]
        geo: {deny: [us]}
jails:
  geo: {maxretry: 3, findtime: 1m, bantime: 1h}
`))
	if err != nil {
		t.Fatalf("Parse(valid geo config) = %v", err)
	}
	h := f.Hosts[0]
	if g := h.Geo; g == nil || len(g.Allow) != 3 || len(g.ASNDeny) != 2 || g.ASNDeny[1] != 64501 {
		t.Errorf("hosts[0].geo = %+v, want allow of 3 and asn_deny [64500 64501]", g)
	}
	if g := h.Routes[0].Geo; g == nil || !g.Off {
		t.Errorf("routes[0].geo = %+v, want off", g)
	}
	if !f.Intel.GeoIP.Headers {
		t.Error("intel.geoip.headers = false, want true")
	}

	missing := filepath.Join(dir, "GeoLite2-Country.mmdb")
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"unknown country", geoip + host + "    geo: {allow: [DE, UK]}\n",
			`t.yaml:6: hosts[0].geo.allow[1]: "UK" is not an ISO 3166-1 alpha-2 country code (such as DE, US) or "unknown"`},
		{"both lists", geoip + host + "    geo: {allow: [DE], deny: [FR]}\n",
			"t.yaml:6: hosts[0].geo: allow and deny exclude each other"},
		{"both asn lists", geoip + host + "    geo: {asn_allow: [1], asn_deny: [2]}\n",
			"t.yaml:6: hosts[0].geo: asn_allow and asn_deny exclude each other"},
		{"empty", geoip + host + "    geo: {}\n", "t.yaml:6: hosts[0].geo: an empty rule"},
		{"twice", geoip + host + "    geo: {deny: [fr, FR]}\n", "t.yaml:6: hosts[0].geo.deny[1]: FR is listed twice"},
		{"bad asn", geoip + host + "    geo: {asn_deny: [AS-1]}\n", `t.yaml:6: hosts[0].geo.asn_deny[0]: "AS-1" is not an AS number`},
		{"zero asn", geoip + host + "    geo: {asn_deny: [0]}\n", `hosts[0].geo.asn_deny[0]: "0" is not an AS number`},
		{"host off", geoip + host + "    geo: off\n", `t.yaml:6: hosts[0].geo: "off" is for routes`},
		{"no database", host + "    geo: {deny: [FR]}\n", "t.yaml:4: hosts[0].geo.deny: a country rule needs intel.geoip.country"},
		{"no asn database", "intel:\n  geoip: {country: " + country + "}\n" + host + "    geo:\n      asn_deny: [64500]\n",
			"t.yaml:7: hosts[0].geo.asn_deny: an ASN rule needs intel.geoip.asn"},
		{"route rule without database", host + "    routes:\n      - paths: [/x]\n        geo: {allow: [DE]}\n",
			"t.yaml:6: hosts[0].routes[0].geo.allow: a country rule needs intel.geoip.country"},
		{"missing database", "intel:\n  geoip:\n    country: " + missing + "\n" + host,
			"t.yaml:3: intel.geoip.country: open " + missing + ": no such file or directory"},
		{"wrong database", "intel:\n  geoip:\n    asn: " + country + "\n" + host,
			"t.yaml:3: intel.geoip.asn: no record has the field read"},
		{"no databases", "intel:\n  geoip: {}\n" + host, "t.yaml:2: intel.geoip: name a country or an asn database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse() = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseASN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want ASN
		err  bool
	}{
		{"64500", 64500, false}, {"AS64500", 64500, false}, {"as13335", 13335, false}, {"4294967295", 4294967295, false},
		{"0", 0, true}, {"AS", 0, true}, {"4294967296", 0, true}, {"+5", 0, true}, {"AS+5", 0, true}, {"-1", 0, true}, {"", 0, true},
	} {
		got, err := ParseASN(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseASN(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// FuzzParseASN checks ParseASN against strconv: a value is accepted
// exactly when, without an optional "AS" prefix, it is a decimal uint32
// other than 0 with no sign, and it round-trips through its decimal form.
func FuzzParseASN(f *testing.F) {
	// Plain numbers, the AS spelling in both cases, bounds, signs and junk.
	for _, s := range []string{"64500", "AS64500", "as1", "4294967295", "4294967296", "0", "AS0", "+1", "AS+1", "-1", "", "AS", "ASAS1", " 1", "1_000", "0x10", "007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseASN(s)
		t0 := s
		if len(t0) > 2 && strings.EqualFold(t0[:2], "AS") {
			t0 = t0[2:]
		}
		n, perr := strconv.ParseUint(t0, 10, 32)
		want := perr == nil && n != 0 && t0 != "" && t0[0] != '+'
		if (err == nil) != want {
			t.Fatalf("ParseASN(%q) = %d, %v; want accepted %v", s, got, err, want)
		}
		if err == nil {
			if uint64(got) != n {
				t.Fatalf("ParseASN(%q) = %d, want %d", s, got, n)
			}
			again, err := ParseASN(strconv.FormatUint(uint64(got), 10))
			if err != nil || again != got {
				t.Fatalf("ParseASN(%d) = %d, %v; want a round trip", got, again, err)
			}
		}
	})
}
