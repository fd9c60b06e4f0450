package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// addrRange is an inclusive range of addresses of one family.
type addrRange struct{ lo, hi netip.Addr }

func (r addrRange) contains(a netip.Addr) bool {
	return a.BitLen() == r.lo.BitLen() && r.lo.Compare(a) <= 0 && a.Compare(r.hi) <= 0
}

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

// covered counts the addresses of addrs that some range contains.
func covered(addrs []netip.Addr, rs []addrRange) int {
	n := 0
	for _, in := range coveredSet(addrs, rs) {
		if in {
			n++
		}
	}
	return n
}

// coveredSet reports, for each address of addrs, whether some range
// contains it.
func coveredSet(addrs []netip.Addr, rs []addrRange) []bool {
	in := make([]bool, len(addrs))
	for i, a := range addrs {
		for _, r := range rs {
			if r.contains(a) {
				in[i] = true
				break
			}
		}
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
