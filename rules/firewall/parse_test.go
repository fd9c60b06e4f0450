//go:build linux

package firewall

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/nftables"
)

func TestPrefixRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		prefix     string
		start, end []byte
	}{
		{"192.0.2.7/32", []byte{192, 0, 2, 7}, []byte{192, 0, 2, 8}},
		{"192.0.2.0/24", []byte{192, 0, 2, 0}, []byte{192, 0, 3, 0}},
		{"192.0.2.255/32", []byte{192, 0, 2, 255}, []byte{192, 0, 3, 0}},
		{"10.0.0.0/7", []byte{10, 0, 0, 0}, []byte{12, 0, 0, 0}},
		{"255.255.255.0/24", []byte{255, 255, 255, 0}, nil},
		{"0.0.0.0/0", []byte{0, 0, 0, 0}, nil},
		{"2001:db8:1:2::/64", netip.MustParseAddr("2001:db8:1:2::").AsSlice(), netip.MustParseAddr("2001:db8:1:3::").AsSlice()},
		{"2001:db8::1/128", netip.MustParseAddr("2001:db8::1").AsSlice(), netip.MustParseAddr("2001:db8::2").AsSlice()},
		{"2001:db8::/61", netip.MustParseAddr("2001:db8::").AsSlice(), netip.MustParseAddr("2001:db8:0:8::").AsSlice()},
	} {
		p := netip.MustParsePrefix(tc.prefix)
		start, end := prefixRange(p)
		if !bytes.Equal(start, tc.start) || !bytes.Equal(end, tc.end) {
			t.Errorf("prefixRange(%s) = %x, %x; want %x, %x", p, start, end, tc.start, tc.end)
		}
		back, ok := rangePrefix(start, end)
		if !ok || back != p {
			t.Errorf("rangePrefix(prefixRange(%s)) = %s, %v; want it back", p, back, ok)
		}
	}
	// Property: every prefix round-trips; a prefix of two or more
	// addresses and one address more is no prefix (its size is no power
	// of two).
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		a := netip.AddrFrom16(b)
		if rng.IntN(2) == 0 {
			a = netip.AddrFrom4([4]byte(b[:4]))
		}
		p := netip.PrefixFrom(a, rng.IntN(a.BitLen()+1)).Masked()
		start, end := prefixRange(p)
		if back, ok := rangePrefix(start, end); !ok || back != p {
			t.Fatalf("rangePrefix(prefixRange(%s)) = %s, %v; want it back", p, back, ok)
		}
		if end == nil || p.Bits() == a.BitLen() {
			continue
		}
		longer := slices.Clone(end)
		for i := len(longer) - 1; i >= 0; i-- {
			if longer[i]++; longer[i] != 0 {
				break
			}
		}
		if q, ok := rangePrefix(start, longer); ok {
			t.Fatalf("rangePrefix(%s plus one address) = %s, want no prefix", p, q)
		}
	}
	for _, r := range [][2][]byte{
		{{10, 0, 0, 1}, {10, 0, 0, 6}}, // 5 addresses
		{{10, 0, 0, 1}, {10, 0, 0, 3}}, // 2 addresses, not aligned
		{{10, 0, 0, 1}, nil},
	} {
		if p, ok := rangePrefix(r[0], r[1]); ok {
			t.Errorf("rangePrefix(%x, %x) = %s, want no prefix", r[0], r[1], p)
		}
	}
}

func TestParseElements(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b := &nftBackend{log: discard(nil)}
	el := func(ip string, end bool, left time.Duration) nftables.SetElement {
		e := nftables.SetElement{Key: netip.MustParseAddr(ip).AsSlice(), IntervalEnd: end}
		if left > 0 {
			e.Timeout, e.Expires = time.Hour, left
		}
		return e
	}
	// As the kernel dumps them: highest first, with the zero interval
	// end nft(8) adds, an open end at the top, a range that is no
	// prefix, and the end element an expired start left behind.
	elems := []nftables.SetElement{
		el("255.255.255.0", false, time.Minute),
		el("192.0.3.0", true, 0),
		el("192.0.2.0", false, time.Hour),
		el("10.0.0.9", true, 0), // left by an expired 10.0.0.8/32
		el("10.0.0.6", true, 0),
		el("10.0.0.1", false, time.Hour), // 10.0.0.1-10.0.0.5
		el("0.0.0.2", true, 0),
		el("0.0.0.1", false, 0), // no timeout
		el("0.0.0.0", true, 0),
	}
	got := b.parseElements(nil, elems, true, now)
	want := []Entry{
		{netip.MustParsePrefix("0.0.0.1/32"), time.Time{}},
		{netip.MustParsePrefix("192.0.2.0/24"), now.Add(time.Hour)},
		{netip.MustParsePrefix("255.255.255.0/24"), now.Add(time.Minute)},
	}
	sortEntries(got)
	if !slices.Equal(got, want) {
		t.Errorf("parseElements() = %v, want %v", got, want)
	}
}

func TestPortSpecs(t *testing.T) {
	t.Parallel()
	if got := portSpecs(nil); !slices.Equal(got, []string{""}) {
		t.Errorf("portSpecs(nil) = %q, want one empty match", got)
	}
	if got := portSpecs([]uint16{80, 443}); !slices.Equal(got, []string{"-p tcp -m multiport --dports 80,443 "}) {
		t.Errorf("portSpecs(80, 443) = %q", got)
	}
	var many []uint16
	for p := range uint16(16) {
		many = append(many, 1000+p)
	}
	if got := portSpecs(many); len(got) != 2 {
		t.Errorf("portSpecs(16 ports) = %q, want 2 rules (multiport takes 15)", got)
	}
}
