package intel

import (
	"errors"
	"net/netip"
	"os"
	"testing"
)

func TestVet(t *testing.T) {
	t.Parallel()
	set := func(ps ...string) *Set {
		var out []netip.Prefix
		for _, p := range ps {
			out = append(out, netip.MustParsePrefix(p))
		}
		return NewSet(out)
	}
	f, err := os.Open("testdata/firehol_level1.netset")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	firehol, err := Parse(f, FormatPlain, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name            string
		s               *Set
		feedOK, trustOK bool
	}{
		{"FireHOL level 1 sample", NewSet(firehol.Prefixes), true, true},
		{"FireHOL level 1 today", NewSet(append(firehol.Prefixes, netip.MustParsePrefix("224.0.0.0/3"), netip.MustParsePrefix("0.0.0.0/8"))), true, false},
		{"two halves", set("0.0.0.0/1", "128.0.0.0/1"), false, false},
		{"mapped zero", set("::ffff:0.0.0.0/96", "2001:db8:ffff::/48"), false, false},
		{"v6 /0", set("::/0"), false, false},
		{"v6 /12", set("2000::/12"), true, false},
		{"cloudflare", set("104.16.0.0/13", "173.245.48.0/20", "2a06:98c0::/29"), true, true},
		{"a /8", set("10.0.0.0/8"), true, true},
		{"a /7", set("10.0.0.0/7"), true, false},
	} {
		if err := VetFeed(tc.s); (err == nil) != tc.feedOK || err != nil && !errors.Is(err, ErrTooBroad) {
			t.Errorf("%s: VetFeed = %v, want ok %v", tc.name, err, tc.feedOK)
		}
		if err := VetTrusted(tc.s); (err == nil) != tc.trustOK || err != nil && !errors.Is(err, ErrTooBroad) {
			t.Errorf("%s: VetTrusted = %v, want ok %v", tc.name, err, tc.trustOK)
		}
	}
}
