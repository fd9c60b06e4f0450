package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"gatehouse/rules"
	"gatehouse/rules/intel/geo"
	"gatehouse/rules/intel/geo/geotest"
)

// Addresses of the test databases: DE in AS 64500, NL in AS 64501, US in
// AS 64502; 10.0.0.0/8 has neither country nor ASN.
const (
	ipDE = "198.51.100.10"
	ipNL = "198.51.100.200"
	ipUS = "203.0.113.5"
	ipLo = "10.1.2.3"
)

func testGeoDB(tb testing.TB) *geo.DB {
	tb.Helper()
	dir := tb.TempDir()
	country, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	geotest.Write(tb, country, "GeoLite2-Country", time.Now(), map[string]mmdbtype.Map{
		"198.51.100.0/25": geotest.Country("DE"), "198.51.100.128/25": geotest.Country("NL"), "203.0.113.0/24": geotest.Country("US"),
	})
	geotest.Write(tb, asn, "GeoLite2-ASN", time.Now(), map[string]mmdbtype.Map{
		"198.51.100.0/25": geotest.ASN(64500), "198.51.100.128/25": geotest.ASN(64501), "203.0.113.0/24": geotest.ASN(64502),
	})
	db, err := geo.Open(geo.Config{Country: country, ASN: asn})
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

// geoChain is WithScope → a ClientIP stand-in → Geo → a handler that
// records the geo headers it received.
func geoChain(tb testing.TB, cfg GeoConfig, db *geo.DB, jails *rules.Jails) (http.Handler, *http.Header) {
	tb.Helper()
	mw, err := Geo(cfg, db, jails, nil)
	if err != nil {
		tb.Fatal(err)
	}
	got := new(http.Header)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*got = r.Header.Clone()
	})
	h := mw(inner)
	return WithScope(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ScopeFrom(r).ClientIP = netip.MustParseAddr(strings.Split(r.RemoteAddr, ":")[0])
		h.ServeHTTP(w, r)
	})), got
}

func geoGet(h http.Handler, ip string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = ip + ":1234"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestGeoRules(t *testing.T) {
	t.Parallel()
	db := testGeoDB(t)
	for _, tc := range []struct {
		name    string
		cfg     GeoConfig
		allowed []string
		denied  []string
	}{
		{"allow", GeoConfig{Allow: []string{"de", "NL"}}, []string{ipDE, ipNL}, []string{ipUS, ipLo}},
		{"allow with unknown", GeoConfig{Allow: []string{"DE", "unknown"}}, []string{ipDE, ipLo}, []string{ipNL, ipUS}},
		{"deny", GeoConfig{Deny: []string{"US"}}, []string{ipDE, ipNL, ipLo}, []string{ipUS}},
		{"deny unknown", GeoConfig{Deny: []string{"Unknown"}}, []string{ipDE, ipUS}, []string{ipLo}},
		{"asn deny", GeoConfig{ASNDeny: []uint32{64501}}, []string{ipDE, ipUS, ipLo}, []string{ipNL}},
		{"asn allow", GeoConfig{ASNAllow: []uint32{64500}}, []string{ipDE}, []string{ipNL, ipUS, ipLo}},
		{"country and asn", GeoConfig{Allow: []string{"DE", "NL"}, ASNDeny: []uint32{64500}}, []string{ipNL}, []string{ipDE, ipUS}},
		{"global allow passes", GeoConfig{Allow: []string{"DE"}, Pass: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
			[]string{ipDE, ipUS}, []string{ipNL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := geoChain(t, tc.cfg, db, nil)
			for _, ip := range tc.allowed {
				if w := geoGet(h, ip); w.Code != 200 {
					t.Errorf("%s: %s = %d, want 200", tc.name, ip, w.Code)
				}
			}
			for _, ip := range tc.denied {
				if w := geoGet(h, ip); w.Code != 403 {
					t.Errorf("%s: %s = %d, want 403", tc.name, ip, w.Code)
				}
			}
		})
	}
}

func TestGeoJailAndBlocked(t *testing.T) {
	t.Parallel()
	db := testGeoDB(t)
	bans := rules.NewBanList(rules.BanListConfig{})
	jails, err := rules.NewJails(rules.JailsConfig{Jails: map[string]rules.JailConfig{"geo": {MaxRetry: 2, FindTime: time.Minute, BanTime: time.Hour}}}, bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	var blocked []string
	cfg := GeoConfig{Deny: []string{"US"}, ASNDeny: []uint32{64501}, Jail: "geo", Blocked: func(cc string, asn uint32, byASN bool) {
		if byASN {
			blocked = append(blocked, "asn")
		} else {
			blocked = append(blocked, cc)
		}
	}}
	h, _ := geoChain(t, cfg, db, jails)
	geoGet(h, ipUS)
	geoGet(h, ipNL)
	geoGet(h, ipUS)
	if strings.Join(blocked, " ") != "US asn US" {
		t.Errorf("Blocked calls = %v, want [US asn US]", blocked)
	}
	if n := jails.Offences("geo"); n != 3 {
		t.Errorf("geo offences = %d, want 3", n)
	}
	if _, ok := bans.Lookup(netip.MustParseAddr(ipUS)); !ok {
		t.Errorf("%s not banned after 2 geo refusals with maxretry 2", ipUS)
	}
}

func TestGeoHeaders(t *testing.T) {
	t.Parallel()
	db := testGeoDB(t)
	h, got := geoChain(t, GeoConfig{Headers: true}, db, nil)
	for _, tc := range []struct{ ip, country, asn string }{
		{ipDE, "DE", "64500"}, {ipUS, "US", "64502"}, {ipLo, "XX", ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.ip + ":1"
		// What a client sends is replaced (Hygiene strips it earlier in
		// the real chain).
		r.Header.Set("X-Client-ASN", "13335")
		h.ServeHTTP(httptest.NewRecorder(), r)
		if c, a := got.Get("X-Client-Country"), got.Get("X-Client-ASN"); c != tc.country || a != tc.asn || len((*got)["X-Client-Country"]) != 1 {
			t.Errorf("%s: X-Client-Country, X-Client-ASN = %q, %q; want %q, %q", tc.ip, c, a, tc.country, tc.asn)
		}
	}
}

func TestGeoConfigErrors(t *testing.T) {
	t.Parallel()
	db := testGeoDB(t)
	for _, tc := range []struct {
		name    string
		cfg     GeoConfig
		db      *geo.DB
		wantErr string
	}{
		{"both", GeoConfig{Allow: []string{"DE"}, Deny: []string{"US"}}, db, "allow and deny exclude each other"},
		{"bad code", GeoConfig{Deny: []string{"UK"}}, db, `"UK" is not an ISO 3166-1 alpha-2 country code`},
		{"asn both", GeoConfig{ASNAllow: []uint32{1}, ASNDeny: []uint32{2}}, db, "asn_allow and asn_deny exclude each other"},
		{"no db", GeoConfig{Deny: []string{"US"}}, nil, "no GeoIP database"},
	} {
		if _, err := Geo(tc.cfg, tc.db, nil, nil); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Geo(%s) = %v, want error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

// TestHygieneStripsGeoHeaders: a client's X-Client-Country never
// reaches an upstream, whatever its spelling.
func TestHygieneStripsGeoHeaders(t *testing.T) {
	t.Parallel()
	mw, err := Hygiene(HygieneConfig{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got http.Header
	h := WithScope(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() })))
	r := httptest.NewRequest("GET", "http://app.example.com/", nil)
	r.Header["X-Client-Country"] = []string{"DE"}
	r.Header["X_client_country"] = []string{"DE"}
	r.Header["X-Client-Asn"] = []string{"64500"}
	h.ServeHTTP(httptest.NewRecorder(), r)
	for k := range got {
		if strings.Contains(strings.ToLower(k), "client") {
			t.Errorf("header %s = %q reached the handler, want it removed", k, got[k])
		}
	}
}

// BenchmarkGeo is the stage's cost per request: both lookups and a
// country allow list with an ASN deny list, without headers.
func BenchmarkGeo(b *testing.B) {
	db := testGeoDB(b)
	mw, err := Geo(GeoConfig{Allow: []string{"DE", "NL"}, ASNDeny: []uint32{64502}}, db, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	s := &scopeCtx{Context: r.Context()}
	r = r.WithContext(s)
	ip := netip.MustParseAddr(ipDE)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		s.scope = Scope{ClientIP: ip}
		h.ServeHTTP(w, r)
	}
}

// TestAccessLogGeo: with a database, json lines carry the client's
// country and ASN ("" and 0 when unknown); without, neither key.
func TestAccessLogGeo(t *testing.T) {
	t.Parallel()
	db := testGeoDB(t)
	for _, tc := range []struct {
		name string
		db   *geo.DB
		ip   string
		want string
	}{
		{"known", db, ipNL, `,"country":"NL","asn":64501,`},
		{"unknown", db, ipLo, `,"country":"","asn":0,`},
		{"no database", nil, ipNL, ""},
	} {
		out := &lineBuffer{}
		mw, err := AccessLog(AccessLogConfig{Format: FormatJSON, Out: out, Geo: tc.db})
		if err != nil {
			t.Fatal(err)
		}
		ip, err := ClientIP(ClientIPConfig{})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.ip + ":1"
		WithScope(mw(ip(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))).ServeHTTP(httptest.NewRecorder(), r)
		line := out.String()
		if tc.want == "" {
			if strings.Contains(line, `"country"`) {
				t.Errorf("%s: line %q has a country, want none", tc.name, line)
			}
		} else if !strings.Contains(line, tc.want) {
			t.Errorf("%s: line %q, want it to contain %q", tc.name, line, tc.want)
		}
	}
}
