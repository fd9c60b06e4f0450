package intel

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// benchList builds n prefixes spread over the whole address space, as a
// blocklist of single addresses and small networks is: 3 in 4 IPv4
// (/24 to /32), 1 in 4 IPv6 (/32 to /64).
func benchList(r *rand.Rand, n int) []netip.Prefix {
	ps := make([]netip.Prefix, n)
	for i := range ps {
		if i%4 == 3 {
			var b [16]byte
			b[0] = 0x20
			for j := 1; j < 16; j++ {
				b[j] = byte(r.UintN(256))
			}
			ps[i] = netip.PrefixFrom(netip.AddrFrom16(b), 32+r.IntN(33)).Masked()
			continue
		}
		b := [4]byte{byte(1 + r.IntN(223)), byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256))}
		ps[i] = netip.PrefixFrom(netip.AddrFrom4(b), 24+r.IntN(9)).Masked()
	}
	return ps
}

// probes returns addresses inside (hit) and outside (miss) s, per family.
func probes(r *rand.Rand, s *Set, ps []netip.Prefix) (hit4, miss4, hit6, miss6 []netip.Addr) {
	for _, p := range ps {
		if p.Addr().Is4() {
			hit4 = append(hit4, p.Addr())
		} else {
			hit6 = append(hit6, p.Addr())
		}
	}
	for len(miss4) < 1024 || len(miss6) < 1024 {
		var b4 [4]byte
		b4[0] = byte(1 + r.IntN(223))
		for j := 1; j < 4; j++ {
			b4[j] = byte(r.UintN(256))
		}
		if a := netip.AddrFrom4(b4); !s.Contains(a) {
			miss4 = append(miss4, a)
		}
		var b [16]byte
		b[0] = 0x20
		for j := 1; j < 16; j++ {
			b[j] = byte(r.UintN(256))
		}
		if a := netip.AddrFrom16(b); !s.Contains(a) {
			miss6 = append(miss6, a)
		}
	}
	return cycle(hit4), miss4[:1024], cycle(hit6), miss6[:1024]
}

// cycle repeats as to 1024 entries, so that the loop indexes with a mask.
func cycle(as []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 1024)
	for i := range out {
		out[i] = as[i%len(as)]
	}
	return out
}

func BenchmarkSetContains(b *testing.B) {
	for _, n := range []int{1e4, 1e5, 1e6} {
		r := rand.New(rand.NewPCG(5, 6))
		ps := benchList(r, n)
		s := NewSet(ps)
		hit4, miss4, hit6, miss6 := probes(r, s, ps)
		for _, c := range []struct {
			name  string
			addrs []netip.Addr
		}{{"v4hit", hit4}, {"v4miss", miss4}, {"v6hit", hit6}, {"v6miss", miss6}} {
			b.Run(fmt.Sprintf("prefixes=%.0e/%s", float64(n), c.name), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					s.Contains(c.addrs[i&1023])
					i++
				}
			})
		}
	}
}

func BenchmarkIndexLookup(b *testing.B) {
	const n = 1e5
	r := rand.New(rand.NewPCG(7, 8))
	lists := [][]netip.Prefix{benchList(r, n), benchList(r, n), benchList(r, n)}
	sets := []*Set{NewSet(lists[0]), NewSet(lists[1]), NewSet(lists[2])}
	x := NewIndex(sets)
	hit4, miss4, hit6, miss6 := probes(r, sets[2], lists[2])
	for _, c := range []struct {
		name  string
		addrs []netip.Addr
	}{{"v4hit", hit4}, {"v4miss", miss4}, {"v6hit", hit6}, {"v6miss", miss6}} {
		b.Run("sets=3/prefixes=1e+05/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				x.Lookup(c.addrs[i&1023])
				i++
			}
		})
	}
}

func BenchmarkNewSet(b *testing.B) {
	ps := benchList(rand.New(rand.NewPCG(9, 10)), 1e5)
	b.Run("prefixes=1e+05", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			NewSet(ps)
		}
	})
}

func BenchmarkNewIndex(b *testing.B) {
	r := rand.New(rand.NewPCG(13, 14))
	sets := []*Set{NewSet(benchList(r, 1e5)), NewSet(benchList(r, 1e5)), NewSet(benchList(r, 1e5))}
	b.Run("sets=3/prefixes=1e+05", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			NewIndex(sets)
		}
	})
}

// BenchmarkParsePlain is the parse half of a feed refresh: 100k lines in
// FireHOL's format.
func BenchmarkParsePlain(b *testing.B) {
	var buf strings.Builder
	buf.WriteString("# firehol-like list\n")
	for _, p := range benchList(rand.New(rand.NewPCG(15, 16)), 1e5) {
		if p.IsSingleIP() {
			buf.WriteString(p.Addr().String() + "\n")
		} else {
			buf.WriteString(p.String() + "\n")
		}
	}
	list := buf.String()
	b.Run("lines=1e+05", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(list)))
		for b.Loop() {
			if _, err := Parse(strings.NewReader(list), FormatPlain, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
