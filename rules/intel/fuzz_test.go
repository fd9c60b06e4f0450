package intel

import (
	"bytes"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

// fuzzParse runs Parse on arbitrary input in format f and checks the
// properties every accepted list has: the caps hold, every prefix is
// valid, and the list written back as plain text parses to the same
// prefixes with nothing skipped (a round trip through the last good copy's
// format).
func fuzzParse(f *testing.F, format Format, seedFiles []string, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	for _, name := range seedFiles {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2]) // a truncated download
	}
	lim := Limits{MaxBytes: 1 << 20, MaxPrefixes: 500}
	f.Fuzz(func(t *testing.T, in []byte) {
		l, err := Parse(bytes.NewReader(in), format, lim)
		if err != nil {
			if l != nil {
				t.Fatalf("Parse returned a list and error %v", err)
			}
			return
		}
		if len(l.Prefixes) > lim.MaxPrefixes {
			t.Fatalf("Parse returned %d prefixes over the cap %d", len(l.Prefixes), lim.MaxPrefixes)
		}
		var plain strings.Builder
		for _, p := range l.Prefixes {
			if !p.IsValid() || p.Addr().Zone() != "" {
				t.Fatalf("Parse returned prefix %v", p)
			}
			plain.WriteString(p.String() + "\n")
		}
		again, err := Parse(strings.NewReader(plain.String()), FormatPlain, lim)
		if err != nil || again.Skipped != 0 || !slices.Equal(again.Prefixes, l.Prefixes) {
			t.Fatalf("round trip of %v through plain text = %v, %v", l.Prefixes, again, err)
		}
	})
}

func FuzzParsePlain(f *testing.F) {
	fuzzParse(f, FormatPlain, []string{"firehol_level1.netset"},
		// Spamhaus text DROP, CRLF, trailing comments.
		"; Spamhaus DROP\r\n1.10.16.0/20 ; SBL256894\r\n",
		// IPv6, zones, mapped addresses, host bits.
		"2001:db8::/32 # doc\nfe80::1%eth0\n::ffff:203.0.113.1\n203.0.113.9/24\n",
		// Garbage: an HTML page, binary.
		"<html>\n<body>502</body>\n</html>\n", "\x00\xff\xfe\n1.2.3.4\n")
}

func FuzzParseSpamhausDropJSON(f *testing.F) {
	fuzzParse(f, FormatSpamhausDropJSON, []string{"spamhaus_drop_v4.json"},
		`{"cidr":"2a06:e480::/29","sblid":"SBL301771","rir":"ripencc"}`+"\n"+`{"type":"metadata","records":1}`,
		`{"type":"metadata","records":0}`, `{"cidr":1}`)
}

func FuzzParseCrowdSec(f *testing.F) {
	fuzzParse(f, FormatCrowdSec, []string{"crowdsec_decisions.json", "crowdsec_stream.json"},
		"null", `{"new":null,"deleted":null}`, `[{"scope":"Range","type":"ban","value":"2001:db8::/48"}]`)
}

func FuzzParseFastlyJSON(f *testing.F) {
	fuzzParse(f, FormatFastlyJSON, nil,
		readProviderFile(f, "providers/fastly-public-ip-list.json"), `{"addresses":[]}`, `{"addresses":null}`)
}

func FuzzParseCloudFrontJSON(f *testing.F) {
	fuzzParse(f, FormatCloudFrontJSON, nil,
		`{"CLOUDFRONT_GLOBAL_IP_LIST": ["120.52.22.96/27", "205.251.249.0/24"], "CLOUDFRONT_REGIONAL_EDGE_IP_LIST": ["13.113.196.64/26"]}`)
}

func FuzzParseAWSCloudFront(f *testing.F) {
	fuzzParse(f, FormatAWSCloudFront, nil, readProviderFile(f, "providers/cloudfront-ip-ranges.json"))
}

func readProviderFile(f *testing.F, name string) string {
	b, err := snapshots.ReadFile(name)
	if err != nil {
		f.Fatal(err)
	}
	return string(b)
}

// FuzzClientIP checks the header parsers against net/netip: a bare
// address header accepts what netip.ParseAddr accepts (without zone), and
// CloudFront's address:port accepts every bracketed or IPv4 form that
// netip.ParseAddrPort accepts, to the same address.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"198.51.100.7", "2001:db8::1", "198.51.100.10:46532",
		"2001:db8::1:46532", "[2001:db8::1]:443", "[::ffff:1.2.3.4]:1", "1.2.3.4:99999", " 1.2.3.4 "} {
		f.Add(s)
	}
	cf, _ := ProviderNamed("cloudflare")
	cfr, _ := ProviderNamed("cloudfront")
	f.Fuzz(func(t *testing.T, v string) {
		a, ok := cf.ClientIP(v)
		ref, err := netip.ParseAddr(strings.TrimSpace(v))
		wantOK := err == nil && ref.Zone() == ""
		if ok != wantOK || (ok && a != ref.Unmap()) {
			t.Fatalf("cloudflare ClientIP(%q) = %v, %v; netip says %v, %v", v, a, ok, ref, err)
		}
		a, ok = cfr.ClientIP(v)
		if ok && (!a.IsValid() || a.Zone() != "" || a.Is4In6()) {
			t.Fatalf("cloudfront ClientIP(%q) = %v", v, a)
		}
		ap, err := netip.ParseAddrPort(strings.TrimSpace(v))
		if err == nil && ap.Addr().Zone() == "" && !ap.Addr().Is4In6() {
			if !ok || a != ap.Addr() {
				t.Fatalf("cloudfront ClientIP(%q) = %v, %v; netip.ParseAddrPort says %v", v, a, ok, ap)
			}
		}
	})
}

// FuzzSet checks Set.Contains against a linear scan of the prefixes it
// was built from, on addresses at the prefixes' edges.
func FuzzSet(f *testing.F) {
	f.Add([]byte{203, 0, 113, 0, 24, 198, 51, 100, 7, 32}, []byte{203, 0, 113, 255})
	f.Add([]byte{0, 0, 0, 0, 0}, []byte{255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, list, probe []byte) {
		var ps []netip.Prefix
		for len(list) >= 5 {
			b := [4]byte(list[:4])
			ps = append(ps, netip.PrefixFrom(netip.AddrFrom4(b), int(list[4])%33))
			list = list[5:]
		}
		for len(list) >= 17 {
			ps = append(ps, netip.PrefixFrom(netip.AddrFrom16([16]byte(list[:16])), int(list[16])%129))
			list = list[17:]
		}
		s := NewSet(ps)
		var addrs []netip.Addr
		if len(probe) >= 4 {
			addrs = append(addrs, netip.AddrFrom4([4]byte(probe[:4])))
		}
		for _, p := range ps {
			m := p.Masked()
			addrs = append(addrs, m.Addr(), m.Addr().Prev(), lastAddr(m), lastAddr(m).Next())
		}
		for _, a := range addrs {
			if !a.IsValid() {
				continue
			}
			want := slices.ContainsFunc(ps, func(p netip.Prefix) bool { q, _ := canonical(p); return q.Contains(a.Unmap()) })
			if got := s.Contains(a); got != want {
				t.Fatalf("NewSet(%v).Contains(%v) = %v, want %v", ps, a, got, want)
			}
		}
	})
}

// lastAddr is the last address of masked prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	if p.Addr().Is4() {
		x := addr4(p.Addr())
		if p.Bits() < 32 {
			x |= 1<<uint(32-p.Bits()) - 1
		}
		return uint32Addr(x)
	}
	return addr6(p.Addr()).or(hostMask(128 - p.Bits())).addr()
}
