package ui

import (
	"html"
	"net/http"
	"net/netip"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/rules"
)

// scaleBans is how many bans TestBansPageMillion holds: 1,000,000, or
// 100,000 in a race-enabled build, where building a million bans alone
// takes over a minute. `make test` runs it without -race too.
func scaleBans() int {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				return 100_000
			}
		}
	}
	return 1_000_000
}

// banAddr is the address of ban i of manyBans.
func banAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// manyBans is a ban list of n IPv4 bans, ban i created i microseconds
// after the first, so the newest is ban n-1.
func manyBans(t *testing.T, n int) *rules.BanList {
	t.Helper()
	l := rules.NewBanList(rules.BanListConfig{MaxBans: n})
	start := time.Now().Add(-time.Hour)
	until := time.Now().Add(24 * time.Hour)
	for i := range n {
		b := rules.Ban{Prefix: netip.PrefixFrom(banAddr(i), 32), Jail: "probes", Reason: "probe",
			Until: until, Created: start.Add(time.Duration(i) * time.Microsecond)}
		if _, err := l.Ban(b); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

var (
	banRowIP = regexp.MustCompile(`<tr data-ip="([^"]+)">`)
	pageLink = regexp.MustCompile(`<a href="([^"]+)"(?: rel="[a-z]+")?>([^<]+)</a>`)
)

// bansPage is what a test reads from a rendered bans page.
type bansPage struct {
	ips   []string
	links map[string]string // by link text: « first, ‹ newer, older ›, last »
	body  string
}

func readBansPage(t *testing.T, body string) bansPage {
	t.Helper()
	p := bansPage{links: map[string]string{}, body: body}
	for _, m := range banRowIP.FindAllStringSubmatch(body, -1) {
		p.ips = append(p.ips, m[1])
	}
	nav := body[strings.Index(body, `<nav class="pages">`):]
	for _, m := range pageLink.FindAllStringSubmatch(nav, -1) {
		p.links[html.UnescapeString(m[2])] = html.UnescapeString(m[1])
	}
	return p
}

// TestBansPageMillion pages through 1,000,000 bans on the bans page,
// searches them, and checks a page costs bounded memory: kilobytes of
// allocation, not a copy of the list. Not parallel, so the allocation
// counter sees this test alone.
func TestBansPageMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 1,000,000 bans")
	}
	n := scaleBans()
	f := newFixture(t, "127.0.0.1:9901", manyBans(t, n))
	c := f.client()
	c.signIn(t, "ops-token")

	get := func(target string) (bansPage, uint64) {
		t.Helper()
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		w := c.do(t, http.MethodGet, target, nil)
		runtime.ReadMemStats(&m1)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", target, w.Code)
		}
		return readBansPage(t, w.Body.String()), m1.TotalAlloc - m0.TotalAlloc
	}
	// A page renders 50 rows: some 100 KB of HTML and template work. A
	// copy of the list would be over 100 MB at 1e6 bans, 10 MB at 1e5.
	const bound = 4 << 20

	p, alloc := get("/ui/bans")
	if alloc > bound {
		t.Errorf("GET /ui/bans allocated %d bytes at %d bans, bound %d", alloc, n, bound)
	}
	if len(p.ips) != bansPerPage || p.ips[0] != banAddr(n-1).String() || p.ips[49] != banAddr(n-50).String() {
		t.Fatalf("first page = %d rows %v…, want the 50 newest from %s", len(p.ips), p.ips[:min(3, len(p.ips))], banAddr(n-1))
	}
	if !strings.Contains(p.body, `<span data-stat="total">`+strconv.Itoa(n)+`</span>`) {
		t.Errorf("first page does not show the total %d", n)
	}
	if p.links["older ›"] == "" || p.links["‹ newer"] != "" || p.links["last »"] == "" {
		t.Errorf("first page links = %v, want older and last only", p.links)
	}

	// Three pages on: each follows the one before without a gap.
	for page := 1; page <= 3; page++ {
		var alloc uint64
		p, alloc = get(p.links["older ›"])
		if alloc > bound {
			t.Errorf("page %d allocated %d bytes, bound %d", page+1, alloc, bound)
		}
		if len(p.ips) != bansPerPage || p.ips[0] != banAddr(n-1-50*page).String() {
			t.Fatalf("page %d starts at %v, want %s", page+1, p.ips[:min(1, len(p.ips))], banAddr(n-1-50*page))
		}
	}
	back, _ := get(p.links["‹ newer"])
	if back.ips[0] != banAddr(n-1-100).String() || back.ips[49] != banAddr(n-150).String() {
		t.Errorf("newer from page 4 = %s…%s, want page 3", back.ips[0], back.ips[49])
	}

	last, alloc := get(p.links["last »"])
	if alloc > bound {
		t.Errorf("last page allocated %d bytes, bound %d", alloc, bound)
	}
	if len(last.ips) != bansPerPage || last.ips[49] != banAddr(0).String() || last.links["older ›"] != "" || last.links["‹ newer"] == "" {
		t.Errorf("last page ends %v, links %v; want the oldest ban and no older link", last.ips[len(last.ips)-1:], last.links)
	}

	// Search by address, by prefix, and by text: on the server.
	one, _ := get("/ui/bans?q=" + banAddr(n/2).String())
	if len(one.ips) != 1 || one.ips[0] != banAddr(n/2).String() || !strings.Contains(one.body, `<span data-stat="total">1</span>`) {
		t.Errorf("search for %s = %v", banAddr(n/2), one.ips)
	}
	net16, alloc := get("/ui/bans?q=10.1.0.0/16")
	if alloc > bound {
		t.Errorf("prefix search allocated %d bytes, bound %d", alloc, bound)
	}
	in16 := min(n, 2<<16) - 1<<16 // bans 65536 to 131071 are 10.1.0.0/16
	if len(net16.ips) != bansPerPage || !strings.HasPrefix(net16.ips[0], "10.1.") || !strings.Contains(net16.body, `<span data-stat="total">`+strconv.Itoa(in16)+`</span>`) {
		t.Errorf("search 10.1.0.0/16 = %v…, want %d in all", net16.ips[:min(2, len(net16.ips))], in16)
	}
	text, alloc := get("/ui/bans?q=10.1.25")
	if alloc > bound {
		t.Errorf("text search allocated %d bytes, bound %d", alloc, bound)
	}
	for _, ip := range text.ips {
		if !strings.Contains(ip, "10.1.25") {
			t.Errorf("text search 10.1.25 shows %s", ip)
		}
	}
	if next := text.links["older ›"]; !strings.Contains(next, "q=10.1.25") {
		t.Errorf("a search's next link %q loses the query", next)
	}

	// The overview counts bans by jail in one pass.
	w := c.do(t, http.MethodGet, "/ui/", nil)
	if !strings.Contains(w.Body.String(), `<td>probes</td><td class="num">`+strconv.Itoa(n)+`</td>`) {
		t.Errorf("overview does not count %d probes bans", n)
	}
}

func TestBansPageBadLinks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "127.0.0.1:9901", nil)
	c := f.client()
	c.signIn(t, "view-token")
	for _, target := range []string{"/ui/bans?after=nonsense", "/ui/bans?before=1_300.1.1.1/32", "/ui/bans?after=x_1.2.3.4/32"} {
		if w := c.do(t, http.MethodGet, target, nil); w.Code != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", target, w.Code)
		}
	}
}

// FuzzParseCursor: parseCursor never panics, and what it accepts
// formats back to text it reads as the same position.
func FuzzParseCursor(f *testing.F) {
	// Cursors the bans page writes.
	f.Add("1800000000123456789_203.0.113.7/32")
	f.Add("0_2001:db8::/64")
	f.Add("-62135596800000000000_0.0.0.0/0")
	// Broken and hostile links.
	f.Add("")
	f.Add("_")
	f.Add("1_")
	f.Add("x_203.0.113.7/32")
	f.Add("1_203.0.113.7")
	f.Add("1_203.0.113.7/33")
	f.Add("1_fe80::1%eth0/64")
	f.Add("99999999999999999999_1.2.3.4/32")
	f.Add("1_1.2.3.4/32_more")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCursor(s)
		if err != nil {
			return
		}
		again, err := parseCursor(formatCursor(c))
		if err != nil {
			t.Fatalf("parseCursor(formatCursor(%+v)) from %q: %v", c, s, err)
		}
		if !again.Created.Equal(c.Created) || again.Prefix != c.Prefix {
			t.Fatalf("round trip of %q: %+v, then %+v", s, c, again)
		}
	})
}

// An escalated network shows as one row, its reason saying what it is,
// and a search for "escalated" finds it; the clients it replaced are
// gone from the page.
func TestBansPageEscalated(t *testing.T) {
	t.Parallel()
	l := rules.NewBanList(rules.BanListConfig{})
	until := time.Now().Add(time.Hour)
	for _, p := range []string{"192.0.2.1/32", "192.0.2.2/32", "198.51.100.7/32"} {
		if _, err := l.Ban(rules.Ban{Prefix: netip.MustParsePrefix(p), Jail: "probes", Reason: "probe", Until: until, Count: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := l.Escalate(rules.Ban{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Jail: "probes",
		Reason: rules.EscalatedReason("probes", 2), Until: until, Count: 1}); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "127.0.0.1:9901", l)
	c := f.client()
	c.signIn(t, "ops-token")
	for target, want := range map[string][]string{
		"/ui/bans":              {"192.0.2.0/24", "198.51.100.7"},
		"/ui/bans?q=escalated":  {"192.0.2.0/24"},
		"/ui/bans?q=192.0.2.77": {"192.0.2.0/24"},
	} {
		w := c.do(t, http.MethodGet, target, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", target, w.Code)
		}
		p := readBansPage(t, w.Body.String())
		slices.Sort(p.ips)
		if !slices.Equal(p.ips, want) {
			t.Errorf("GET %s rows %v, want %v", target, p.ips, want)
		}
		if !strings.Contains(p.body, "escalated from 2 bans in jail probes") {
			t.Errorf("GET %s does not show the escalated reason", target)
		}
	}
}
