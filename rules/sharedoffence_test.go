package rules

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeSharer records the offences it is offered and takes them while
// take is set. Sharing itself is tested against Redis in rules/fleet.
type fakeSharer struct {
	mu   sync.Mutex
	take bool
	got  []Offence
}

func (s *fakeSharer) ShareOffence(o Offence) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, o)
	return s.take
}

func newSharedJails(t testing.TB, s *fakeSharer, bans *BanList) *Jails {
	t.Helper()
	j, err := NewJails(JailsConfig{
		Jails: map[string]JailConfig{
			"probes": {MaxRetry: 2, FindTime: time.Minute, BanTime: time.Hour, Increment: &Increment{Factor: 3}},
			"flood":  {MaxRetry: 2, FindTime: time.Minute, BanTime: time.Hour},
		},
		Allow:      []netip.Prefix{netip.MustParsePrefix("192.0.2.0/28")},
		IPv6Prefix: 64,
		Shared:     []string{"probes", "not-configured"},
		Sharer:     s,
	}, bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestSharedJailOffersOffences(t *testing.T) {
	t.Parallel()
	s := &fakeSharer{take: true}
	bans := NewBanList(BanListConfig{})
	j := newSharedJails(t, s, bans)
	client := netip.MustParseAddr("198.51.100.7")
	for range 3 {
		j.Report("probes", client, "probe")
	}
	if _, ok := bans.Lookup(client); ok {
		t.Error("a shared jail banned locally while the sharer took its offences")
	}
	if len(s.got) != 3 || j.Offences("probes") != 3 {
		t.Fatalf("sharer got %d offences, Offences = %d; want 3 and 3", len(s.got), j.Offences("probes"))
	}
	o := s.got[0]
	want := JailPolicy{MaxRetry: 2, FindTime: time.Minute, BanTime: time.Hour, Factor: 3, Max: maxBanTime, Forget: defaultForget}
	if o.Jail != "probes" || o.Prefix != netip.MustParsePrefix("198.51.100.7/32") || o.Reason != "probe" || o.Policy != want {
		t.Errorf("offence = %+v, want jail probes, prefix /32, policy %+v", o, want)
	}
	if d := o.Policy.Duration(3); d != 9*time.Hour {
		t.Errorf("Policy.Duration(3) = %s, want 9h", d)
	}

	// IPv6 clients are shared by their /64.
	j.Report("probes", netip.MustParseAddr("2001:db8::1"), "probe")
	if p := s.got[len(s.got)-1].Prefix; p != netip.MustParsePrefix("2001:db8::/64") {
		t.Errorf("IPv6 offence prefix = %s, want 2001:db8::/64", p)
	}

	// Not shared: flood, allowed clients, clients already banned.
	n := len(s.got)
	j.Report("flood", client, "flood")
	j.Report("probes", netip.MustParseAddr("192.0.2.1"), "probe")
	if _, err := bans.Ban(Ban{Prefix: netip.MustParsePrefix("198.51.100.8/32"), Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	j.Report("probes", netip.MustParseAddr("198.51.100.8"), "probe")
	if len(s.got) != n {
		t.Errorf("the sharer was offered %d more offences, want none (flood, allowed, banned)", len(s.got)-n)
	}
}

func TestSharedJailCountsLocallyWhenTurnedDown(t *testing.T) {
	t.Parallel()
	s := &fakeSharer{take: false}
	bans := NewBanList(BanListConfig{})
	j := newSharedJails(t, s, bans)
	client := netip.MustParseAddr("198.51.100.9")
	j.Report("probes", client, "probe")
	j.Report("probes", client, "probe")
	if b, ok := bans.Lookup(client); !ok || b.Jail != "probes" {
		t.Fatalf("two offences turned down by the sharer: ban %+v, %v, want a local probes ban", b, ok)
	}
	if got := j.Offences("probes"); got != 2 {
		t.Errorf("Offences = %d, want 2", got)
	}
}

func TestOffenceCountLocally(t *testing.T) {
	t.Parallel()
	s := &fakeSharer{take: true}
	bans := NewBanList(BanListConfig{})
	j := newSharedJails(t, s, bans)
	client := netip.MustParseAddr("198.51.100.10")
	j.Report("probes", client, "probe")
	j.Report("probes", client, "probe")
	// The fleet could not count them: they come back.
	for _, o := range s.got {
		o.CountLocally()
	}
	if b, ok := bans.Lookup(client); !ok || b.Count != 1 {
		t.Fatalf("after CountLocally: ban %+v, %v, want the local ban", b, ok)
	}
	if got := j.Offences("probes"); got != 2 {
		t.Errorf("Offences = %d, want 2 (counted once each)", got)
	}
	var zero Offence
	zero.CountLocally() // an Offence not made by Jails is ignored
}

func BenchmarkReportShared(b *testing.B) {
	s := &discardSharer{}
	j := newSharedJails(b, &fakeSharer{}, NewBanList(BanListConfig{}))
	j.sharer = s
	client := netip.MustParseAddr("198.51.100.11")
	b.ReportAllocs()
	for b.Loop() {
		j.Report("probes", client, "probe")
	}
}

// discardSharer takes every offence and keeps none.
type discardSharer struct{}

func (discardSharer) ShareOffence(Offence) bool { return true }
