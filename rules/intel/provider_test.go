package intel

import (
	"net/netip"
	"slices"
	"testing"
)

func TestProviderSnapshots(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		min       int      // fewest prefixes a real snapshot holds
		in, out   []string // addresses in the provider's ranges, and not
		headerKey string
	}{
		{"cloudflare", 20, []string{"104.16.0.1", "173.245.48.1", "2606:4700::1"}, []string{"8.8.8.8", "2001:4860::1"}, "Cf-Connecting-Ip"},
		{"cloudfront", 200, []string{"120.52.22.97", "13.32.0.1"}, []string{"104.16.0.1", "2606:4700::1"}, "Cloudfront-Viewer-Address"},
		{"fastly", 20, []string{"151.101.1.1", "2a04:4e42::1"}, []string{"104.16.0.1"}, ""}, // its header is client-set: X-Forwarded-For only
	}
	if got := ProviderNames(); !slices.Equal(got, []string{"cloudflare", "cloudfront", "fastly"}) {
		t.Errorf("ProviderNames() = %v", got)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, ok := ProviderNamed(tc.name)
			if !ok {
				t.Fatalf("ProviderNamed(%q) = false", tc.name)
			}
			if p.Header != tc.headerKey || len(p.URLs) == 0 || p.SnapshotDate.IsZero() {
				t.Errorf("provider %s: header %q, urls %v, date %v", tc.name, p.Header, p.URLs, p.SnapshotDate)
			}
			s, err := p.Snapshot()
			if err != nil {
				t.Fatalf("Snapshot(): %v", err)
			}
			if s.Len() < tc.min {
				t.Errorf("Snapshot().Len() = %d, want at least %d", s.Len(), tc.min)
			}
			for _, a := range tc.in {
				if !s.Contains(netip.MustParseAddr(a)) {
					t.Errorf("%s snapshot: Contains(%s) = false, want true", tc.name, a)
				}
			}
			for _, a := range tc.out {
				if s.Contains(netip.MustParseAddr(a)) {
					t.Errorf("%s snapshot: Contains(%s) = true, want false", tc.name, a)
				}
			}
		})
	}
	if _, ok := ProviderNamed("akamai"); ok {
		t.Errorf("ProviderNamed(akamai) = true")
	}
}

func TestProviderClientIP(t *testing.T) {
	t.Parallel()
	cf, _ := ProviderNamed("cloudflare")
	cfr, _ := ProviderNamed("cloudfront")
	tests := []struct {
		p    Provider
		in   string
		want string // "" for refused
	}{
		{cf, "198.51.100.7", "198.51.100.7"},
		{cf, " 2001:db8::7 ", "2001:db8::7"},
		{cf, "::ffff:198.51.100.7", "198.51.100.7"},
		{cf, "198.51.100.7, 203.0.113.1", ""},
		{cf, "198.51.100.7:443", ""},
		{cf, "fe80::1%eth0", ""},
		{cf, "", ""},
		{cfr, "198.51.100.10:46532", "198.51.100.10"},
		{cfr, "2001:db8:85a3::8a2e:370:7334:46532", "2001:db8:85a3::8a2e:370:7334"},
		{cfr, "[2001:db8::1]:443", "2001:db8::1"},
		{cfr, "198.51.100.10", ""},
		{cfr, "198.51.100.10:", ""},
		{cfr, "198.51.100.10:65536", ""},
		{cfr, "198.51.100.10:4x3", ""},
		{cfr, "[198.51.100.10]:443", ""},
		{cfr, ":443", ""},
	}
	for _, tc := range tests {
		a, ok := tc.p.ClientIP(tc.in)
		if tc.want == "" {
			if ok {
				t.Errorf("%s.ClientIP(%q) = %v, true, want refused", tc.p.Name, tc.in, a)
			}
			continue
		}
		if !ok || a != netip.MustParseAddr(tc.want) {
			t.Errorf("%s.ClientIP(%q) = %v, %v, want %s", tc.p.Name, tc.in, a, ok, tc.want)
		}
	}
}
