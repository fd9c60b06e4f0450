package store

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"gatehouse/rules"
)

func TestOutboxQueuedWithTheBanDurably(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	b := rules.Ban{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Jail: "probes", Count: 2, Reason: "probe", Created: t0, Until: t0.Add(time.Hour)}
	if err := s.PutQueued(b); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteQueued(netip.MustParsePrefix("2001:db8::/64"), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, StoreConfig{})
	if got := stored(t, s); len(got) != 1 {
		t.Fatalf("stored bans = %v, want the ban", got)
	}
	entries, total, err := s.Outbox(0)
	if err != nil || total != 2 || len(entries) != 2 {
		t.Fatalf("Outbox(0) = %v, %d, %v, want 2 entries", entries, total, err)
	}
	ban, unban := entries[0], entries[1] // IPv4 keys sort first
	if ban.Unban || sameBan(ban.Ban, b) != nil || !ban.At.Equal(t0) {
		t.Errorf("ban entry = %+v, want %+v at %s", ban, b, t0)
	}
	if !unban.Unban || unban.Ban.Prefix != netip.MustParsePrefix("2001:db8::/64") || !unban.At.Equal(t0.Add(time.Minute)) {
		t.Errorf("unban entry = %+v, want an unban of 2001:db8::/64 at %s", unban, t0.Add(time.Minute))
	}
}

func TestOutboxLastWriterWins(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	p := netip.MustParsePrefix("192.0.2.1/32")
	ban := rules.Ban{Prefix: p, Created: t0, Until: t0.Add(time.Hour)}
	if err := s.DeleteQueued(p, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// A snapshot queued late carries the older ban: the unban stays.
	if err := s.Queue([]OutboxEntry{{Ban: ban, At: ban.Created}}); err != nil {
		t.Fatal(err)
	}
	entries, _, err := s.Outbox(0)
	if err != nil || len(entries) != 1 || !entries[0].Unban {
		t.Fatalf("Outbox(0) = %+v, %v, want the unban only", entries, err)
	}
	// A newer ban replaces it.
	newer := rules.Ban{Prefix: p, Created: t0.Add(2 * time.Second), Until: t0.Add(time.Hour)}
	if err := s.Queue([]OutboxEntry{{Ban: newer, At: newer.Created}}); err != nil {
		t.Fatal(err)
	}
	entries, _, err = s.Outbox(0)
	if err != nil || len(entries) != 1 || entries[0].Unban {
		t.Fatalf("Outbox(0) = %+v, %v, want the newer ban only", entries, err)
	}
}

func TestDequeueKeepsReplacedEntries(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	p1, p2 := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32")
	for _, p := range []netip.Prefix{p1, p2} {
		if err := s.PutQueued(rules.Ban{Prefix: p, Created: t0, Until: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	pushed, _, err := s.Outbox(0)
	if err != nil {
		t.Fatal(err)
	}
	// While the push is in flight, p2 is unbanned.
	if err := s.DeleteQueued(p2, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Dequeue(pushed); err != nil {
		t.Fatal(err)
	}
	left, total, err := s.Outbox(1)
	if err != nil || total != 1 || len(left) != 1 || !left[0].Unban || left[0].Ban.Prefix != p2 {
		t.Fatalf("Outbox(1) = %+v, %d, %v, want p2's unban", left, total, err)
	}
}

func TestQueueRefusesInvalidEntries(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	tests := []struct {
		name    string
		e       OutboxEntry
		wantErr string
	}{
		{"invalid prefix", OutboxEntry{}, "invalid prefix"},
		{"jail name too long", OutboxEntry{Ban: rules.Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Jail: strings.Repeat("j", 300)}}, "longer than 255"},
	}
	for _, tc := range tests {
		if err := s.Queue([]OutboxEntry{tc.e}); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Queue = %v, want an error containing %q", tc.name, err, tc.wantErr)
		}
	}
	if _, total, _ := s.Outbox(0); total != 0 {
		t.Errorf("outbox holds %d entries after refused queues, want 0", total)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	if c, err := s.Cursor(); err != nil || c != (Cursor{}) {
		t.Fatalf("Cursor() of a new store = %+v, %v, want zero", c, err)
	}
	want := Cursor{Epoch: "EPOCH", StreamID: "1764000000000-7"}
	if err := s.SetCursor(want); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, StoreConfig{})
	if c, err := s.Cursor(); err != nil || c != want {
		t.Fatalf("Cursor() = %+v, %v, want %+v", c, err, want)
	}
	if err := s.SetCursor(Cursor{Epoch: "a\x00b"}); err == nil {
		t.Error("SetCursor with a NUL in the epoch succeeded")
	}
}

// FuzzDecodeOutbox: a record that decodes encodes back to the same bytes.
func FuzzDecodeOutbox(f *testing.F) {
	k4 := appendPrefixKey(nil, netip.MustParsePrefix("192.0.2.1/32"))
	ban, _ := encodeOutbox(OutboxEntry{Ban: rules.Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Jail: "probes", Reason: "x", Created: t0, Until: t0.Add(time.Hour)}, At: t0})
	unban, _ := encodeOutbox(OutboxEntry{Unban: true, At: t0})
	f.Add(k4, ban)                   // a ban
	f.Add(k4, unban)                 // an unban
	f.Add(k4, append(unban, 0))      // an unban with a trailing byte
	f.Add(k4, []byte{3, 0, 0, 0, 0}) // unknown op, short
	f.Fuzz(func(t *testing.T, k, v []byte) {
		e, err := decodeOutbox(k, v)
		if err != nil {
			return
		}
		e.Ban.Prefix, _ = rules.CanonicalPrefix(e.Ban.Prefix)
		got, err := encodeOutbox(e)
		if err != nil {
			t.Fatalf("encodeOutbox(decodeOutbox(%x)) = %v", v, err)
		}
		if string(got) != string(v) {
			t.Fatalf("decodeOutbox(%x) round trip = %x", v, got)
		}
	})
}
