package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// addrRange is an inclusive range of addresses of one family.
type addrRange struct{ lo, hi netip.Addr }

func (r addrRange) contains(a netip.Addr) bool {
	return a.BitLen() == r.lo.BitLen() && r.lo.Compare(a) <= 0 && a.Compare(r.hi) <= 0
}

func (r addrRange) String() string { return r.lo.String() + "-" + r.hi.String() }

// prefixRange returns the first and last address of p.
func prefixRange(p netip.Prefix) addrRange {
	p = p.Masked()
	lo := p.Addr()
	b := lo.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	hi, _ := netip.AddrFromSlice(b)
	return addrRange{lo, hi}
}

// parseAddrOrPrefix reads "10.0.0.1" or "10.0.0.0/24".
func parseAddrOrPrefix(s string) (addrRange, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return prefixRange(p), true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return addrRange{a, a}, true
	}
	return addrRange{}, false
}

// parseIPSetMembers reads the members of every set in `ipset list`
// output:
//
//	Name: gatehouse4
//	Type: hash:net
//	...
//	Members:
//	198.51.100.7 timeout 3597
//	203.0.113.0/24 timeout 86391
//
// Members that are not an address or prefix (hash:net,port entries and
// the like) are skipped.
func parseIPSetMembers(out string) []addrRange {
	var rs []addrRange
	in := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "Members:":
			in = true
		case line == "" || strings.HasPrefix(line, "Name:"):
			in = false
		case in:
			if r, ok := parseAddrOrPrefix(strings.Fields(line)[0]); ok {
				rs = append(rs, r)
			}
		}
	}
	return rs
}

// parseNftRanges reads the elements of every set in `nft -j list
// ruleset` output. An element is an address, a {"prefix": {"addr",
// "len"}}, a {"range": [lo, hi]}, or any of those wrapped in {"elem":
// {"val": …, "timeout": …}}.
func parseNftRanges(out []byte) ([]addrRange, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("nft -j output: %w", err)
	}
	var rs []addrRange
	for _, obj := range doc.Nftables {
		raw, ok := obj["set"]
		if !ok {
			continue
		}
		var set struct {
			Elem []json.RawMessage `json:"elem"`
		}
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, fmt.Errorf("nft -j set: %w", err)
		}
		for _, e := range set.Elem {
			if r, ok := nftElem(e, 0); ok {
				rs = append(rs, r)
			}
		}
	}
	return rs, nil
}

// nftElem reads one set element; depth bounds the {"elem": …} nesting.
func nftElem(raw json.RawMessage, depth int) (addrRange, bool) {
	if depth > 4 {
		return addrRange{}, false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return parseAddrOrPrefix(s)
	}
	var obj struct {
		Elem *struct {
			Val json.RawMessage `json:"val"`
		} `json:"elem"`
		Prefix *struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
		Range []string `json:"range"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return addrRange{}, false
	}
	switch {
	case obj.Elem != nil:
		return nftElem(obj.Elem.Val, depth+1)
	case obj.Prefix != nil:
		return parseAddrOrPrefix(obj.Prefix.Addr + "/" + strconv.Itoa(obj.Prefix.Len))
	case len(obj.Range) == 2:
		lo, ok1 := parseAddrOrPrefix(obj.Range[0])
		hi, ok2 := parseAddrOrPrefix(obj.Range[1])
		if !ok1 || !ok2 || lo.lo.BitLen() != hi.hi.BitLen() || hi.hi.Less(lo.lo) {
			return addrRange{}, false
		}
		return addrRange{lo.lo, hi.hi}, true
	}
	return addrRange{}, false
}

// banIndex answers whether the kernel's ranges cover a target range in
// O(log n): a flood of 5,000 scanners against as many entries is read
// every poll interval on the load CPU.
type banIndex struct {
	rs    []addrRange  // sorted by lo (IPv4 before IPv6)
	maxHi []netip.Addr // maxHi[i]: the highest hi among rs[:i+1]
}

func newBanIndex(rs []addrRange) banIndex {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b addrRange) int { return a.lo.Compare(b.lo) })
	maxHi := make([]netip.Addr, len(rs))
	for i, r := range rs {
		maxHi[i] = r.hi
		if i > 0 && maxHi[i-1].Compare(r.hi) > 0 {
			maxHi[i] = maxHi[i-1]
		}
	}
	return banIndex{rs, maxHi}
}

// covers reports whether one range contains all of t. The ranges that
// start at or before t.lo are rs[:i+1]; the one among them reaching
// furthest covers t if any does, nested or overlapping ranges included.
// They share t's family, which sorts apart (Compare orders IPv4 first).
func (x banIndex) covers(t addrRange) bool {
	i, found := slices.BinarySearchFunc(x.rs, t.lo, func(r addrRange, a netip.Addr) int { return r.lo.Compare(a) })
	if !found {
		i--
	}
	for i+1 < len(x.rs) && x.rs[i+1].lo == t.lo { // equal starts: the last of them
		i++
	}
	if i < 0 {
		return false
	}
	return x.maxHi[i].BitLen() == t.hi.BitLen() && x.maxHi[i].Compare(t.hi) >= 0
}

// addrTargets returns one single-address range per address.
func addrTargets(addrs []netip.Addr) []addrRange {
	ts := make([]addrRange, len(addrs))
	for i, a := range addrs {
		ts[i] = addrRange{a, a}
	}
	return ts
}

// covered counts the targets that one range of rs contains whole.
func covered(targets, rs []addrRange) int {
	n := 0
	for _, in := range coveredSet(targets, rs) {
		if in {
			n++
		}
	}
	return n
}

// coveredSet reports, for each target, whether one range of rs contains
// it whole: a scanner's address, or an attacker's /48.
func coveredSet(targets, rs []addrRange) []bool {
	x := newBanIndex(rs)
	in := make([]bool, len(targets))
	for i, t := range targets {
		in[i] = x.covers(t)
	}
	return in
}

// statSample is one line of the upstream's -stats file.
type statSample struct {
	ms           int64 // Unix ms
	legit, other int64 // cumulative counts
}

// parseUpstreamStats reads the upstream's -stats file: "unix_ms legit
// other" per line. A line that does not read (the last one, cut by a
// write in progress) is skipped; samples stay in file order.
func parseUpstreamStats(out string) []statSample {
	var ss []statSample
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		var v [3]int64
		ok := true
		for i := range f {
			n, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil || n < 0 {
				ok = false
				break
			}
			v[i] = n
		}
		if ok {
			ss = append(ss, statSample{v[0], v[1], v[2]})
		}
	}
	return ss
}

// legitRate returns the legit requests per second the upstream served
// between Unix ms from and to, from the samples nearest before each end;
// ok is false when the window holds fewer than two samples.
func legitRate(ss []statSample, from, to int64) (float64, bool) {
	var a, b *statSample
	for i := range ss {
		if ss[i].ms <= from {
			a = &ss[i]
		}
		if ss[i].ms <= to {
			b = &ss[i]
		}
	}
	if a == nil || b == nil || b.ms <= a.ms {
		return 0, false
	}
	return float64(b.legit-a.legit) * 1000 / float64(b.ms-a.ms), true
}

// parseNetstat reads /proc/net/netstat (or /proc/net/snmp): pairs of
// lines, "Group: Name Name …" then "Group: value value …", into
// "Group.Name" → value. A pair that does not line up is skipped.
func parseNetstat(out string) map[string]uint64 {
	m := map[string]uint64{}
	var names []string
	var group string
	for line := range strings.Lines(out) {
		g, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			names = nil
			continue
		}
		f := strings.Fields(rest)
		if names == nil || g != group {
			group, names = g, f
			continue
		}
		if len(f) == len(names) {
			for i, v := range f {
				if n, err := strconv.ParseUint(v, 10, 64); err == nil {
					m[g+"."+names[i]] = n
				}
			}
		}
		names = nil
	}
	return m
}

// netstatDelta returns after − before for every counter in both.
func netstatDelta(before, after map[string]uint64) map[string]uint64 {
	d := map[string]uint64{}
	for k, a := range after {
		if b, ok := before[k]; ok && a >= b {
			d[k] = a - b
		}
	}
	return d
}
