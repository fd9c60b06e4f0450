package proxy

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gatehouse/rules"
	"gatehouse/rules/intel"
)

const intelConfig = `hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:1]
admin: {listen: "off"}
log: {access: off, level: warn}
`

func writeList(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lb.txt")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestIntelListsKeptAcrossReload: a reload keeps the lists whose entry it
// leaves alone and drops the others.
func TestIntelListsKeptAcrossReload(t *testing.T) {
	t.Parallel()
	a, b := writeList(t, "203.0.113.0/24\n"), writeList(t, "198.51.100.0/24\n")
	il := newIntelLists(slog.New(slog.DiscardHandler), func() {})
	first, err := il.prepare(mustConfig(t, intelConfig+"trusted_proxies: [cloudflare, \"file:"+a+"\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	il.commit(first)
	second, err := il.prepare(mustConfig(t, intelConfig+"trusted_proxies: [10.0.0.0/8, cloudflare, \"file:"+b+"\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != 2 || second[0] != first[0] {
		t.Fatalf("cloudflare list not kept across the reload: %v, %v", first, second)
	}
	if second[1] == first[1] || !second[1].set.Load().Contains(netip.MustParseAddr("198.51.100.1")) {
		t.Errorf("the new file: list is not the one loaded")
	}
	il.commit(second)
	if len(il.lists) != 2 || il.lists[first[1].key] != nil {
		t.Errorf("the dropped list is still held: %d lists", len(il.lists))
	}
	// Another refresh is another list: it must fetch on the new schedule.
	third, err := il.prepare(mustConfig(t, intelConfig+"trusted_proxies: [cloudflare]\nintel: {refresh: 1h}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if third[0] == first[0] || !third[0].run {
		t.Errorf("cloudflare with a refresh reuses the list without one")
	}
}

// TestIntelSnapshotNewerThanCopy: with refresh off, a provider's last
// good copy older than the snapshot in the binary is not used.
func TestIntelSnapshotNewerThanCopy(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	cfg := mustConfig(t, intelConfig+"state_dir: "+state+"\ntrusted_proxies: [cloudflare]\n")
	cp := filepath.Join(state, "intel", "trusted-cloudflare.txt")
	if err := os.MkdirAll(filepath.Dir(cp), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cp, []byte("198.51.100.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _ := intel.ProviderNamed("cloudflare")
	old := p.SnapshotDate.Add(-24 * time.Hour)
	if err := os.Chtimes(cp, old, old); err != nil {
		t.Fatal(err)
	}
	lists, err := newIntelLists(slog.New(slog.DiscardHandler), func() {}).prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if lists[0].set.Load().Contains(netip.MustParseAddr("198.51.100.1")) || *lists[0].origin.Load() != "snapshot" {
		t.Errorf("an old copy was preferred to the snapshot (origin %s)", *lists[0].origin.Load())
	}
	newer := time.Now()
	if err := os.Chtimes(cp, newer, newer); err != nil {
		t.Fatal(err)
	}
	lists, err = newIntelLists(slog.New(slog.DiscardHandler), func() {}).prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !lists[0].set.Load().Contains(netip.MustParseAddr("198.51.100.1")) || *lists[0].origin.Load() != "state" {
		t.Errorf("a copy newer than the snapshot was not used (origin %s)", *lists[0].origin.Load())
	}
}

// TestNamedSetEverywhere: a named set's ranges are trusted by the
// resolver, never banned, and a change reaches the resolver without a
// reload.
func TestNamedSetEverywhere(t *testing.T) {
	t.Parallel()
	list := writeList(t, "198.51.100.0/24\n")
	s, err := New(Options{Config: mustConfig(t, intelConfig+"trusted_proxies: [\"file:"+list+"\"]\njails:\n  probes: {maxretry: 1, findtime: 1m, bantime: 1h}\n")})
	if err != nil {
		t.Fatal(err)
	}
	g := s.current.Load()
	h := http.Header{"X-Forwarded-For": {"203.0.113.9"}}
	if c, _, _ := g.clientIP.ResolveHeader("198.51.100.7:1", h); c != netip.MustParseAddr("203.0.113.9") {
		t.Errorf("client via a listed proxy = %v, want 203.0.113.9", c)
	}
	if _, err := s.bans.Ban(rules.Ban{Prefix: netip.MustParsePrefix("198.51.100.7/32"), Until: time.Now().Add(time.Hour)}); err == nil {
		t.Error("a listed proxy was banned")
	}
	g.trusted[0].set.Store(intel.NewSet([]netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}))
	s.trustedChanged()
	if c, _, _ := g.clientIP.ResolveHeader("198.51.100.7:1", h); c != netip.MustParseAddr("198.51.100.7") {
		t.Errorf("after the list changed, client via the dropped proxy = %v, want the peer", c)
	}
	if c, _, _ := g.clientIP.ResolveHeader("10.9.0.7:1", h); c != netip.MustParseAddr("203.0.113.9") {
		t.Errorf("after the list changed, client via the new proxy = %v, want 203.0.113.9", c)
	}
	// A malformed request from a proxy of the refreshed list is not
	// reported, though the jails' allow list is still the old one.
	s.framingRefused(&net.TCPAddr{IP: net.ParseIP("10.9.0.7"), Port: 1}, "test")
	s.framingRefused(&net.TCPAddr{IP: net.ParseIP("203.0.113.50"), Port: 1}, "test")
	if _, banned := s.bans.Lookup(netip.MustParseAddr("10.9.0.7")); banned {
		t.Error("a proxy of the refreshed list was banned for a malformed request")
	}
	if _, banned := s.bans.Lookup(netip.MustParseAddr("203.0.113.50")); !banned {
		t.Error("a direct client was not banned for a malformed request (maxretry 1)")
	}
	// The next build (a reload of the same file) gives the jails the
	// new ranges: the set changed in place, the generation's copy did not.
	next, err := s.build(g.cfg, g)
	if err != nil {
		t.Fatal(err)
	}
	if next.jails == g.jails {
		t.Error("a build after the ranges changed kept the jails and their old never-banned ranges")
	}
	same, err := s.build(next.cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if same.jails != next.jails {
		t.Error("a build with unchanged ranges replaced the jails (their counts would be handed over for nothing)")
	}
}
