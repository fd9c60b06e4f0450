package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"gatehouse/rules/intel/geo/geotest"
)

// Client addresses of the e2e GeoIP databases, sent as X-Forwarded-For
// from the trusted loopback, so one gateway sees many countries.
const (
	geoDE = "198.51.100.10"  // DE, AS 64500
	geoNL = "198.51.100.200" // NL, AS 64501
	geoUS = "203.0.113.5"    // US, AS 64502
	geoNo = "10.9.8.7"       // in neither database
)

func writeGeoDBs(t *testing.T, dir string, deCountry string) (country, asn string) {
	t.Helper()
	country, asn = filepath.Join(dir, "GeoLite2-Country.mmdb"), filepath.Join(dir, "GeoLite2-ASN.mmdb")
	geotest.Write(t, country, "GeoLite2-Country", time.Now(), map[string]mmdbtype.Map{
		"198.51.100.0/25": geotest.Country(deCountry), "198.51.100.128/25": geotest.Country("NL"),
		"203.0.113.0/24": geotest.Country("US"),
	})
	geotest.Write(t, asn, "GeoLite2-ASN", time.Now(), map[string]mmdbtype.Map{
		"198.51.100.0/25": geotest.ASN(64500), "198.51.100.128/25": geotest.ASN(64501), "203.0.113.0/24": geotest.ASN(64502),
	})
	return country, asn
}

func geoConfig(country, asn, upstream string) string {
	return gatewayConfig(fmt.Sprintf(`trusted_proxies: [127.0.0.1/32]
intel:
  geoip: {country: %s, asn: %s, headers: true}
jails:
  geo: {maxretry: 1000, findtime: 1m, bantime: 1h}
hosts:
  - match: [eu.example.com]
    upstreams: [%[3]s]
    jail: geo
    geo: {allow: [de, NL]}
    routes:
      - paths: [/health]
        geo: off
      - paths: [/nl/]
        geo: {allow: [NL]}
  - match: [open.example.com]
    upstreams: [%[3]s]
    geo: {deny: [US], asn_deny: [AS64501]}
  - match: [plain.example.com]
    upstreams: [%[3]s]
`, country, asn, upstream))
}

// geoGet sends GET path for host as client ip, with extra headers
// ("Name: value"), and returns the status and body.
func geoGet(t *testing.T, g *gateway, host, ip, path string, headers ...string) (int, []byte) {
	t.Helper()
	req, err := g.newRequest(t.Context(), http.MethodGet, host, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", ip)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, body := g.mustDo(t, req)
	return resp.StatusCode, body
}

func TestGeoE2E(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	country, asn := writeGeoDBs(t, dir, "DE")
	up := newEchoUpstream(t, "app")
	g := startGateway(t, geoConfig(country, asn, up.URL()))

	for _, tc := range []struct {
		host, ip, path string
		want           int
	}{
		// Host allow list: DE and NL pass; US and an address without a
		// country are refused.
		{"eu.example.com", geoDE, "/", 200},
		{"eu.example.com", geoNL, "/", 200},
		{"eu.example.com", geoUS, "/", 403},
		{"eu.example.com", geoNo, "/", 403},
		// A route exempt (geo: off) and a route with its own list.
		{"eu.example.com", geoUS, "/health", 200},
		{"eu.example.com", geoDE, "/nl/x", 403},
		{"eu.example.com", geoNL, "/nl/x", 200},
		// Deny list and asn_deny.
		{"open.example.com", geoUS, "/", 403},
		{"open.example.com", geoNL, "/", 403},
		{"open.example.com", geoDE, "/", 200},
		{"open.example.com", geoNo, "/", 200},
		// No rule.
		{"plain.example.com", geoUS, "/", 200},
	} {
		if got, _ := geoGet(t, g, tc.host, tc.ip, tc.path); got != tc.want {
			t.Errorf("GET %s%s as %s = %d, want %d", tc.host, tc.path, tc.ip, got, tc.want)
		}
	}

	// Upstream headers: set by the gateway on every host, a client's
	// own values removed.
	for _, tc := range []struct{ ip, country, asn string }{
		{geoDE, "DE", "64500"}, {geoNo, "XX", ""}, {geoUS, "US", "64502"},
	} {
		code, body := geoGet(t, g, "plain.example.com", tc.ip, "/", "X-Client-Country: FR", "X-Client-ASN: 13335")
		if code != 200 {
			t.Fatalf("GET plain.example.com as %s = %d, want 200", tc.ip, code)
		}
		e := decodeEcho(t, body)
		if c, a := e.Header.Values("X-Client-Country"), e.Header.Get("X-Client-Asn"); len(c) != 1 || c[0] != tc.country || a != tc.asn {
			t.Errorf("as %s the upstream got X-Client-Country %q, X-Client-ASN %q; want %q, %q", tc.ip, c, a, tc.country, tc.asn)
		}
	}

	// The access log carries country and asn.
	waitStdout(t, g, `"client_ip":"`+geoNL+`"`, `"country":"NL","asn":64501`)

	// Metrics: blocks by country and listed ASN, and the databases.
	g.waitMetric(t, 1, "gatehouse_geo_blocked_asn_total", "host", "open.example.com", "asn", "64501")
	if n := g.metric(t, "gatehouse_geo_blocked_country_total", "host", "eu.example.com", "country", "US"); n != 1 {
		t.Errorf("blocked US on eu.example.com = %v, want 1", n)
	}
	if n := g.metric(t, "gatehouse_geo_blocked_country_total", "host", "eu.example.com", "country", "unknown"); n != 1 {
		t.Errorf("blocked unknown on eu.example.com = %v, want 1", n)
	}
	if n := g.metric(t, "gatehouse_geoip_build_timestamp_seconds", "database", "country"); n == 0 {
		t.Error("gatehouse_geoip_build_timestamp_seconds{database=country} missing")
	}

	// A broken file renamed over the database: the last good copy
	// serves on, and the failure is counted.
	broken := filepath.Join(dir, "broken.tmp")
	if err := os.WriteFile(broken, []byte("not a MaxMind DB"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(broken, country); err != nil {
		t.Fatal(err)
	}
	g.waitMetric(t, 1, "gatehouse_geoip_reload_failures_total", "database", "country")
	if got, _ := geoGet(t, g, "eu.example.com", geoDE, "/"); got != 200 {
		t.Errorf("with a broken database, DE on eu.example.com = %d, want 200 (the last good copy)", got)
	}

	// geoipupdate's way: a new file renamed over the old. The range that
	// was DE is now US: new answers without a restart.
	writeGeoDBs(t, dir, "US")
	g.waitLog(t, waitTimeout, "geoip database reloaded", func(log string) bool {
		return strings.Contains(log, "geoip database reloaded") && strings.Contains(log, "database=country")
	})
	if got, _ := geoGet(t, g, "eu.example.com", geoDE, "/"); got != 403 {
		t.Errorf("after the database moved %s to US, eu.example.com = %d, want 403", geoDE, got)
	}

	// A config reload naming other files opens them; one naming a
	// missing file fails and the databases serving stay.
	dir2 := t.TempDir()
	country2, asn2 := writeGeoDBs(t, dir2, "DE")
	if got := g.reload(t, geoConfig(country2, asn2, up.URL())); got != "ok" {
		t.Fatalf("reload with new database paths = %s, want ok", got)
	}
	if got, _ := geoGet(t, g, "eu.example.com", geoDE, "/"); got != 200 {
		t.Errorf("after a reload onto a database with %s in DE, eu.example.com = %d, want 200", geoDE, got)
	}
	if got := g.reload(t, geoConfig(filepath.Join(dir2, "gone.mmdb"), asn2, up.URL())); got != "failed" {
		t.Fatalf("reload naming a missing database = %s, want failed", got)
	}
	if got, _ := geoGet(t, g, "eu.example.com", geoUS, "/"); got != 403 {
		t.Errorf("after a failed reload, US on eu.example.com = %d, want 403 (the rule still serving)", got)
	}
}

// waitStdout waits for an access log line holding every one of subs.
func waitStdout(t *testing.T, g *gateway, subs ...string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, line := range strings.Split(g.stdout.String(), "\n") {
			ok := true
			for _, s := range subs {
				ok = ok && strings.Contains(line, s)
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line with %q in:\n%s", subs, g.stdout)
		}
		g.pause(t)
	}
}

// TestGeoMissingDatabase: check and serve refuse a config whose
// database is missing, naming it; a rule without a database is refused
// too.
func TestGeoMissingDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "GeoLite2-Country.mmdb")
	_, asn := writeGeoDBs(t, t.TempDir(), "DE")
	cfg := writeFile(t, "gatehouse.yaml", geoConfig(missing, asn, "http://127.0.0.1:9"))
	for _, args := range [][]string{{"check", "-c", cfg}, {"serve", "-c", cfg, "--watch", "0", "--allow-root"}} {
		_, stderr, code := runGatehouse(t, args...)
		if code != 2 || !strings.Contains(stderr, "intel.geoip.country: open "+missing+": no such file or directory") {
			t.Errorf("gatehouse %s = exit %d, stderr %q; want 2 naming %s", args[0], code, stderr, missing)
		}
	}
	noDB := writeFile(t, "gatehouse.yaml", gatewayConfig(`hosts:
  - match: [eu.example.com]
    upstreams: [http://127.0.0.1:9]
    geo: {deny: [US]}
`))
	if _, stderr, code := runGatehouse(t, "check", "-c", noDB); code != 2 || !strings.Contains(stderr, "hosts[0].geo.deny: a country rule needs intel.geoip.country") {
		t.Errorf("gatehouse check without intel.geoip = exit %d, stderr %q; want 2 and the rule named", code, stderr)
	}
}
