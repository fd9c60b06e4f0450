//go:build !race

package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestGeoAllocs pins the geo stage's zero allocations per request, and
// X-Client-Country's shared values (X-Client-ASN formats a number: a
// string and its slice). The refusal's cost is PlainStatus's.
func TestGeoAllocs(t *testing.T) {
	db := testGeoDB(t)
	for _, tc := range []struct {
		name string
		cfg  GeoConfig
		ip   string
		want float64
	}{
		{"rule", GeoConfig{Allow: []string{"DE"}, ASNDeny: []uint32{64502}}, ipDE, 0},
		{"country header", GeoConfig{Headers: true}, ipLo, 0},
		{"both headers", GeoConfig{Headers: true}, ipDE, 2},
	} {
		mw, err := Geo(tc.cfg, db, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		r := httptest.NewRequest("GET", "/", nil)
		s := &scopeCtx{Context: r.Context()}
		r = r.WithContext(s)
		ip := netip.MustParseAddr(tc.ip)
		w := &discardWriter{h: http.Header{}}
		if n := testing.AllocsPerRun(100, func() {
			s.scope = Scope{ClientIP: ip}
			h.ServeHTTP(w, r)
		}); n != tc.want {
			t.Errorf("%s: %v allocations per request, want %v", tc.name, n, tc.want)
		}
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
