package notify

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestRecentLinesKeepsLastLines(t *testing.T) {
	t.Parallel()
	ns := mustRecentLines(t, 10, 3)
	ip := netip.MustParseAddr("192.0.2.1")
	for i := 1; i <= 4; i++ {
		ns.add(ip, []string{fmt.Sprintf("GET /%d HTTP/1.1", i)})
	}
	ns.add(ip, []string{"GET /5 HTTP/1.1", "GET /6 HTTP/1.1"})
	got := ns.get(netip.PrefixFrom(ip, 32))
	if want := []string{"GET /4 HTTP/1.1", "GET /5 HTTP/1.1", "GET /6 HTTP/1.1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("get after 6 lines = %q, want the last 3 %q", got, want)
	}
	// More lines in one call than are kept: the last ones win.
	ns.add(ip, []string{"a", "b", "c", "d", "e"})
	if got, want := ns.get(netip.PrefixFrom(ip, 32)), []string{"c", "d", "e"}; !reflect.DeepEqual(got, want) {
		t.Errorf("get after a call with 5 lines = %q, want %q", got, want)
	}
}

func TestRecentLinesEvictsLeastRecentlyNoted(t *testing.T) {
	t.Parallel()
	ns := mustRecentLines(t, 2, 5)
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	ns.add(a, []string{"a1"})
	ns.add(b, []string{"b1"})
	ns.add(a, []string{"a2"}) // a is now the most recent
	ns.add(c, []string{"c1"}) // evicts b
	if got := ns.get(netip.PrefixFrom(b, 32)); got != nil {
		t.Errorf("get(b) after eviction = %q, want nil", got)
	}
	if got, want := ns.get(netip.PrefixFrom(a, 32)), []string{"a1", "a2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("get(a) = %q, want %q", got, want)
	}
	if n := ns.lru.Len(); n != 2 {
		t.Errorf("holds %d addresses, want 2", n)
	}
}

func TestRecentLinesPrefixMergesAddresses(t *testing.T) {
	t.Parallel()
	ns := mustRecentLines(t, 10, 3)
	ns.add(netip.MustParseAddr("2001:db8:0:1::a"), []string{"a1", "a2"})
	ns.add(netip.MustParseAddr("2001:db8:0:2::b"), []string{"outside"})
	ns.add(netip.MustParseAddr("2001:db8:0:1::b"), []string{"b1"})
	ns.add(netip.MustParseAddr("2001:db8:0:1::a"), []string{"a3"})
	got := ns.get(netip.MustParsePrefix("2001:db8:0:1::/64"))
	if want := []string{"a2", "b1", "a3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("get(/64) = %q, want the last 3 in order %q", got, want)
	}
}

// The ban list keys IPv4-mapped addresses as IPv4; so does Note.
func TestRecentLinesUnmapsIPv4(t *testing.T) {
	t.Parallel()
	ns := mustRecentLines(t, 10, 3)
	ns.add(netip.MustParseAddr("::ffff:192.0.2.1"), []string{"x"})
	ns.add(netip.Addr{}, []string{"invalid"})
	if got := ns.get(netip.MustParsePrefix("192.0.2.1/32")); !reflect.DeepEqual(got, []string{"x"}) {
		t.Errorf("get(192.0.2.1/32) = %q, want [x]", got)
	}
	if n := ns.lru.Len(); n != 1 {
		t.Errorf("holds %d addresses, want 1 (the invalid one ignored)", n)
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		max            int
	}{
		{name: "plain", in: "GET /index.html HTTP/1.1", max: 512, want: "GET /index.html HTTP/1.1"},
		{name: "utf-8 kept", in: "GET /café", max: 512, want: "GET /café"},
		{name: "CRLF escaped", in: "GET /\r\nBcc: x", max: 512, want: `GET /\u{000d}\u{000a}Bcc: x`},
		{name: "escape sequence", in: "\x1b[2J", max: 512, want: `\u{001b}[2J`},
		{name: "bidi override", in: "a\u202eb", max: 512, want: `a\u{202e}b`},
		{name: "invalid utf-8", in: "a\xffb", max: 512, want: `a\xffb`},
		{name: "truncated", in: "abcdef", max: 4, want: "abcd" + truncMark},
		{name: "truncated at rune boundary", in: "aéé", max: 4, want: "aé" + truncMark},
		{name: "escape not split", in: "ab\x00", max: 4, want: "ab" + truncMark},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := printable(tc.in, tc.max); got != tc.want {
				t.Errorf("printable(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
		})
	}
}

func FuzzPrintable(f *testing.F) {
	// Plain request lines.
	f.Add("GET /wp-login.php HTTP/1.1")
	// Header injection and terminal escapes.
	f.Add("GET /\r\nBcc: victim@example.com\r\n\x1b[31m")
	// Invalid UTF-8 and format characters.
	f.Add("\xff\xfe\u202e\u200b")
	// Longer than the limit.
	f.Add(strings.Repeat("é", 400))
	f.Fuzz(func(t *testing.T, s string) {
		got := printable(s, maxNoteLen)
		if !utf8.ValidString(got) {
			t.Errorf("printable(%q) = %q, not valid UTF-8", s, got)
		}
		for _, r := range got {
			if unicode.In(r, unicode.Cc, unicode.Cf) {
				t.Fatalf("printable(%q) = %q, keeps %U", s, got, r)
			}
		}
		if len(got) > maxNoteLen+len(truncMark) {
			t.Errorf("printable(%q) is %d bytes, want at most %d", s, len(got), maxNoteLen+len(truncMark))
		}
		if again := printable(got, maxNoteLen+len(truncMark)); again != got {
			t.Errorf("printable is not idempotent on %q: %q", got, again)
		}
		if len(s) <= maxNoteLen && got != s && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf) }) {
			t.Errorf("printable(%q) = %q, changed a printable line", s, got)
		}
	})
}

func mustRecentLines(t *testing.T, ips, lines int) *recentLines {
	t.Helper()
	ns, err := newRecentLines(ips, lines)
	if err != nil {
		t.Fatalf("newRecentLines(%d, %d) = %v", ips, lines, err)
	}
	return ns
}
