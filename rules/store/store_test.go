package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"

	"gatehouse/rules"
)

// t0 is the fake "now" of the tests that do not involve a BanList; its
// nanoseconds check that they survive the encoding.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// openTest opens a store in a new temporary directory (cfg.Path empty)
// and closes it when the test ends.
func openTest(t testing.TB, cfg StoreConfig) *Store {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "bans.db")
	}
	s, err := Open(cfg, nil)
	if err != nil {
		t.Fatalf("Open(%q) = %v", cfg.Path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return s
}

// reopen closes s and opens its file again, as a restart does.
func reopen(t testing.TB, s *Store, cfg StoreConfig) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	cfg.Path = s.path
	return openTest(t, cfg)
}

// stored returns the bans in s's bans bucket, by prefix.
func stored(t testing.TB, s *Store) map[netip.Prefix]rules.Ban {
	t.Helper()
	out := map[netip.Prefix]rules.Ban{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketBans)).ForEach(func(k, v []byte) error {
			b, err := decodeBan(k, v)
			if err != nil {
				return err
			}
			out[b.Prefix] = b
			return nil
		})
	})
	if err != nil {
		t.Fatalf("read bans bucket: %v", err)
	}
	return out
}

// storedHistory returns s's history records, by prefix and jail.
func storedHistory(t testing.TB, s *Store) map[string]rules.Ban {
	t.Helper()
	out := map[string]rules.Ban{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketHistory)).ForEach(func(k, v []byte) error {
			h, err := decodeHistory(k, v)
			if err != nil {
				return err
			}
			out[h.Prefix.String()+" "+h.Jail] = h
			return nil
		})
	})
	if err != nil {
		t.Fatalf("read history bucket: %v", err)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// startRun runs s.Run on sub in a goroutine; stop cancels it and returns
// Run's result.
func startRun(t testing.TB, s *Store, sub *rules.Subscription) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, sub) }()
	stopped := false
	var err error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { _ = stop() }) // the test checks the result when it matters
	return stop
}

func sameBan(got, want rules.Ban) error {
	var diffs []string
	if got.Prefix != want.Prefix {
		diffs = append(diffs, fmt.Sprintf("Prefix = %s, want %s", got.Prefix, want.Prefix))
	}
	if got.Jail != want.Jail || got.Reason != want.Reason || got.Count != want.Count {
		diffs = append(diffs, fmt.Sprintf("Jail, Reason, Count = %q, %q, %d, want %q, %q, %d",
			got.Jail, got.Reason, got.Count, want.Jail, want.Reason, want.Count))
	}
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{{"Until", got.Until, want.Until}, {"Created", got.Created, want.Created}} {
		if !tc.got.Equal(tc.want) || tc.got.UnixNano() != tc.want.UnixNano() || tc.got.Location() != time.UTC {
			diffs = append(diffs, fmt.Sprintf("%s = %s, want %s in UTC",
				tc.name, tc.got.Format(time.RFC3339Nano), tc.want.UTC().Format(time.RFC3339Nano)))
		}
	}
	if len(diffs) > 0 {
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}

func TestPutLoadRoundTrip(t *testing.T) {
	t.Parallel()
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		name   string
		ban    rules.Ban
		prefix netip.Prefix // as stored and loaded
	}{{
		name:   "ipv4 jail ban",
		ban:    rules.Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Jail: "probes", Reason: "/.env", Count: 2, Until: t0.Add(time.Hour + 7), Created: t0},
		prefix: netip.MustParsePrefix("192.0.2.1/32"),
	}, {
		name:   "ipv6 /64 jail ban",
		ban:    rules.Ban{Prefix: netip.MustParsePrefix("2001:db8:1:2::/64"), Jail: "auth", Reason: "bad password", Count: 1, Until: t0.Add(30 * time.Minute), Created: t0.Add(-time.Nanosecond)},
		prefix: netip.MustParsePrefix("2001:db8:1:2::/64"),
	}, {
		name:   "ipv6 /128",
		ban:    rules.Ban{Prefix: netip.MustParsePrefix("2001:db8::1/128"), Jail: "probes", Count: 3, Until: t0.Add(4 * time.Hour), Created: t0},
		prefix: netip.MustParsePrefix("2001:db8::1/128"),
	}, {
		name:   "manual /24 stays /24",
		ban:    rules.Ban{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Reason: "operator: scanner", Until: t0.Add(24 * time.Hour), Created: t0},
		prefix: netip.MustParsePrefix("203.0.113.0/24"),
	}, {
		name:   "unmasked prefix is masked",
		ban:    rules.Ban{Prefix: netip.MustParsePrefix("198.51.100.130/25"), Until: t0.Add(time.Hour), Created: t0},
		prefix: netip.MustParsePrefix("198.51.100.128/25"),
	}, {
		name:   "ipv4-mapped folded to ipv4",
		ban:    rules.Ban{Prefix: netip.MustParsePrefix("::ffff:198.51.100.7/128"), Until: t0.Add(time.Hour), Created: t0},
		prefix: netip.MustParsePrefix("198.51.100.7/32"),
	}, {
		name:   "zero Created stays zero",
		ban:    rules.Ban{Prefix: netip.MustParsePrefix("192.0.2.201/32"), Jail: "auth", Count: 1, Until: t0.Add(time.Hour)},
		prefix: netip.MustParsePrefix("192.0.2.201/32"),
	}, {
		name:   "times in another zone come back in UTC",
		ban:    rules.Ban{Prefix: netip.MustParsePrefix("192.0.2.200/32"), Until: t0.Add(time.Hour + 1).In(cet), Created: t0.In(cet)},
		prefix: netip.MustParsePrefix("192.0.2.200/32"),
	}}
	s := openTest(t, StoreConfig{})
	for _, tc := range tests {
		if err := s.Put(tc.ban); err != nil {
			t.Fatalf("Put(%s) = %v", tc.ban.Prefix, err)
		}
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("bans.db mode = %v, want 0600", perm)
	}
	s = reopen(t, s, StoreConfig{})
	active, history, err := s.Load(t0)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	got := map[netip.Prefix]rules.Ban{}
	for _, b := range active {
		got[b.Prefix] = b
	}
	if len(active) != len(tests) {
		t.Errorf("Load() returned %d bans, want %d: %v", len(active), len(tests), active)
	}
	wantHistory := map[string]rules.Ban{}
	for _, tc := range tests {
		want := tc.ban
		want.Prefix = tc.prefix
		if tc.ban.Jail != "" {
			h := want
			h.Reason = ""
			wantHistory[h.Prefix.String()+" "+h.Jail] = h
		}
		b, ok := got[tc.prefix]
		if !ok {
			t.Errorf("%s: Load() has no ban of %s", tc.name, tc.prefix)
			continue
		}
		if err := sameBan(b, want); err != nil {
			t.Errorf("%s: Load() ban: %v", tc.name, err)
		}
	}
	if len(history) != len(wantHistory) {
		t.Errorf("Load() returned %d history records, want %d: %v", len(history), len(wantHistory), history)
	}
	for _, h := range history {
		want, ok := wantHistory[h.Prefix.String()+" "+h.Jail]
		if !ok {
			t.Errorf("Load() history has unexpected %s in %q", h.Prefix, h.Jail)
			continue
		}
		if err := sameBan(h, want); err != nil {
			t.Errorf("Load() history of %s: %v", h.Prefix, err)
		}
	}
}

func TestLoadDropsExpiredBans(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	gone := netip.MustParsePrefix("192.0.2.1/32")
	ending := netip.MustParsePrefix("192.0.2.2/32")
	active := netip.MustParsePrefix("192.0.2.3/32")
	for _, b := range []rules.Ban{
		{Prefix: gone, Jail: "probes", Count: 1, Until: t0.Add(-time.Hour), Created: t0.Add(-2 * time.Hour)},
		{Prefix: ending, Until: t0, Created: t0.Add(-time.Hour)}, // ends at now: expired, as in BanList
		{Prefix: active, Until: t0.Add(time.Nanosecond), Created: t0.Add(-time.Hour)},
	} {
		if err := s.Put(b); err != nil {
			t.Fatalf("Put(%s) = %v", b.Prefix, err)
		}
	}
	got, history, err := s.Load(t0)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if len(got) != 1 || got[0].Prefix != active {
		t.Errorf("Load() = %v, want only the ban of %s", got, active)
	}
	if left := stored(t, s); len(left) != 1 {
		t.Errorf("after Load, the bans bucket holds %v, want only %s", left, active)
	}
	// The expired jail ban's history is what makes the next ban longer.
	if len(history) != 1 || history[0].Prefix != gone || history[0].Count != 1 {
		t.Errorf("Load() history = %v, want the expired ban of %s with Count 1", history, gone)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	keep := rules.Ban{Prefix: netip.MustParsePrefix("2001:db8::/64"), Until: t0.Add(time.Hour), Created: t0}
	del := rules.Ban{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Jail: "probes", Count: 1, Until: t0.Add(time.Hour), Created: t0}
	for _, b := range []rules.Ban{keep, del} {
		if err := s.Put(b); err != nil {
			t.Fatalf("Put(%s) = %v", b.Prefix, err)
		}
	}
	// The same /24, unmasked: Delete masks as Put does.
	if err := s.Delete(netip.MustParsePrefix("203.0.113.9/24")); err != nil {
		t.Fatalf("Delete(203.0.113.9/24) = %v", err)
	}
	// A /32 inside the /24 was not banned; deleting it is no error.
	if err := s.Delete(netip.MustParsePrefix("203.0.113.9/32")); err != nil {
		t.Fatalf("Delete(203.0.113.9/32) = %v", err)
	}
	if err := s.Delete(netip.Prefix{}); err == nil {
		t.Errorf("Delete(invalid prefix) = nil, want an error")
	}
	got := stored(t, s)
	if _, ok := got[del.Prefix]; ok || len(got) != 1 {
		t.Errorf("after Delete(%s), bans bucket = %v, want only %s", del.Prefix, got, keep.Prefix)
	}
	if h := storedHistory(t, s); len(h) != 1 {
		t.Errorf("after Delete, history = %v, want the deleted ban's record kept", h)
	}
}

func TestPutRefusesInvalidPrefix(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	err := s.Put(rules.Ban{Until: t0})
	if err == nil || !strings.Contains(err.Error(), "invalid prefix") {
		t.Errorf("Put(zero prefix) = %v, want an error containing %q", err, "invalid prefix")
	}
}

func TestHistoryKeepsLatestBan(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	p := netip.MustParsePrefix("192.0.2.1/32")
	second := rules.Ban{Prefix: p, Jail: "probes", Count: 2, Until: t0.Add(2 * time.Hour), Created: t0}
	first := rules.Ban{Prefix: p, Jail: "probes", Count: 1, Until: t0.Add(-time.Hour), Created: t0.Add(-2 * time.Hour)}
	other := rules.Ban{Prefix: p, Jail: "auth", Count: 1, Until: t0.Add(time.Hour), Created: t0}
	manual := rules.Ban{Prefix: p, Until: t0.Add(time.Hour), Created: t0.Add(time.Minute)}
	// A resync may replay an older ban after a newer one was written.
	for _, b := range []rules.Ban{second, first, other, manual} {
		if err := s.Put(b); err != nil {
			t.Fatalf("Put(%s) = %v", b.Prefix, err)
		}
	}
	h := storedHistory(t, s)
	if len(h) != 2 {
		t.Fatalf("history = %v, want one record per jail (probes, auth)", h)
	}
	if err := sameBan(h["192.0.2.1/32 probes"], second); err != nil {
		t.Errorf("history of probes: %v", err)
	}
	if err := sameBan(h["192.0.2.1/32 auth"], other); err != nil {
		t.Errorf("history of auth: %v", err)
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{Forget: 24 * time.Hour})
	ban := func(addr string, until time.Duration) rules.Ban {
		return rules.Ban{Prefix: netip.MustParsePrefix(addr), Jail: "probes", Count: 1, Until: t0.Add(until), Created: t0.Add(until - time.Hour)}
	}
	for _, b := range []rules.Ban{
		ban("192.0.2.1/32", -25*time.Hour), // expired, history forgotten
		ban("192.0.2.2/32", -24*time.Hour), // expired, history exactly at the window: kept
		ban("192.0.2.3/32", time.Hour),     // active
	} {
		if err := s.Put(b); err != nil {
			t.Fatalf("Put(%s) = %v", b.Prefix, err)
		}
	}
	if err := s.prune(t0); err != nil {
		t.Fatalf("prune() = %v", err)
	}
	if got := stored(t, s); len(got) != 1 || got[netip.MustParsePrefix("192.0.2.3/32")].Count != 1 {
		t.Errorf("after prune, bans = %v, want only 192.0.2.3/32", got)
	}
	h := storedHistory(t, s)
	if _, ok := h["192.0.2.1/32 probes"]; ok || len(h) != 2 {
		t.Errorf("after prune, history = %v, want 192.0.2.2/32 and 192.0.2.3/32", h)
	}
}

func TestPruneCapsHistory(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{MaxHistory: 3})
	for i := range 5 {
		b := rules.Ban{
			Prefix:  netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32),
			Jail:    "probes",
			Count:   1,
			Until:   t0.Add(time.Duration(i+1) * time.Hour),
			Created: t0,
		}
		if err := s.Put(b); err != nil {
			t.Fatalf("Put(%s) = %v", b.Prefix, err)
		}
	}
	if err := s.prune(t0); err != nil {
		t.Fatalf("prune() = %v", err)
	}
	h := storedHistory(t, s)
	for _, gone := range []string{"192.0.2.0/32 probes", "192.0.2.1/32 probes"} {
		if _, ok := h[gone]; ok {
			t.Errorf("after prune with MaxHistory 3, history keeps %s, whose ban ended first", gone)
		}
	}
	if len(h) != 3 {
		t.Errorf("after prune with MaxHistory 3, %d history records, want 3", len(h))
	}
	if n := len(stored(t, s)); n != 5 {
		t.Errorf("prune of history removed active bans: %d left, want 5", n)
	}
}

func TestLoadDropsUnreadableRecords(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	good := rules.Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Until: t0.Add(time.Hour), Created: t0}
	if err := s.Put(good); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		bb, hb := tx.Bucket([]byte(bucketBans)), tx.Bucket([]byte(bucketHistory))
		k := appendPrefixKey(nil, netip.MustParsePrefix("192.0.2.2/32"))
		newer, err := encodeBan(good)
		if err != nil {
			return err
		}
		newer[0] = banVersion + 1
		tooShort := slices.Clone(newer[:banHeaderLen+1])
		tooShort[0] = banVersion
		tooShort[banHeaderLen] = 5 // a jail name of 5 bytes that is not there
		return errors.Join(
			bb.Put(k, []byte("{not binary}")),
			bb.Put(appendPrefixKey(nil, netip.MustParsePrefix("192.0.2.3/32")), newer),
			bb.Put(appendPrefixKey(nil, netip.MustParsePrefix("192.0.2.4/32")), tooShort),
			bb.Put([]byte("junk"), newer),
			hb.Put(append(k, "probes"...), []byte{historyVersion, 1, 2}),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	active, history, err := s.Load(t0)
	if err != nil {
		t.Fatalf("Load() = %v, want the unreadable records skipped", err)
	}
	if len(active) != 1 || active[0].Prefix != good.Prefix || len(history) != 0 {
		t.Errorf("Load() = %v, %v; want only %s and no history", active, history, good.Prefix)
	}
	if n, h := len(stored(t, s)), len(storedHistory(t, s)); n != 1 || h != 0 {
		t.Errorf("after Load, %d bans and %d history records in the file, want 1 and 0", n, h)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer.db")
	s, err := Open(StoreConfig{Path: newer}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchema), []byte("2"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.db")
	db, err := bolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("certificates"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	notBolt := filepath.Join(dir, "text.db")
	if err := os.WriteFile(notBolt, []byte(strings.Repeat("not a database\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		cfg     StoreConfig
		wantErr string
		is      error
	}{
		{"newer schema", StoreConfig{Path: newer}, "schema version 2: ban store was written by a newer gatehouse (this one reads up to version 1)", ErrNewerSchema},
		{"foreign bbolt file", StoreConfig{Path: foreign}, `not a gatehouse ban store: no "meta" bucket, but buckets ["certificates"]`, nil},
		{"not a bbolt file", StoreConfig{Path: notBolt}, "open ban store " + notBolt, nil},
		{"missing directory", StoreConfig{Path: filepath.Join(dir, "nope", "bans.db")}, "no such file or directory", nil},
		{"empty path", StoreConfig{}, "path is empty", nil},
		{"negative forget", StoreConfig{Path: "x", Forget: -time.Hour}, "forget -1h0m0s is negative", nil},
		{"negative max history", StoreConfig{Path: "x", MaxHistory: -1}, "max history -1 is negative", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.cfg, nil)
			if err == nil {
				_ = s.Close() // the test has failed already
				t.Fatalf("Open(%+v) = nil error, want %q", tc.cfg, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Open(%+v) = %q, want it to contain %q", tc.cfg, err, tc.wantErr)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Open(%+v) = %v, want it to wrap %v", tc.cfg, err, tc.is)
			}
		})
	}
}

// TestOpenLockedFails: a second gatehouse on the same state_dir gets a
// clear error after the default lock timeout instead of hanging (bbolt
// waits forever by default).
func TestOpenLockedFails(t *testing.T) {
	t.Parallel()
	first := openTest(t, StoreConfig{})
	done := make(chan error, 1)
	go func() {
		s, err := Open(StoreConfig{Path: first.path}, nil)
		if err == nil {
			err = errors.Join(errors.New("second Open succeeded"), s.Close())
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("second Open of a locked store has not returned after 30s")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "is another gatehouse running with the same state_dir?") {
		t.Errorf("second Open = %v, want ErrLocked, naming the likely cause", err)
	}
	// The first Store is unaffected.
	if err := first.Put(rules.Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Until: t0, Created: t0}); err != nil {
		t.Errorf("Put on the first store = %v", err)
	}
}

func TestRunFollowsBanList(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	// A ban the list does not hold: Run's first resync deletes it.
	stale := netip.MustParsePrefix("198.51.100.0/24")
	if err := s.Put(rules.Ban{Prefix: stale, Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	l := rules.NewBanList(rules.BanListConfig{})
	sub := l.Subscribe(16)
	defer sub.Close()
	stop := startRun(t, s, sub)
	waitFor(t, "the stale ban to be deleted by the first resync", func() bool {
		_, ok := stored(t, s)[stale]
		return !ok
	})

	b, err := l.Ban(rules.Ban{Prefix: netip.MustParsePrefix("2001:db8:7::/64"), Jail: "probes", Reason: "/wp-login.php", Count: 1, Until: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ban in the store", func() bool {
		got, ok := stored(t, s)[b.Prefix]
		return ok && sameBan(got, b) == nil
	})
	if h, ok := storedHistory(t, s)[b.Prefix.String()+" probes"]; !ok || h.Count != 1 || !h.Until.Equal(b.Until) {
		t.Errorf("history of %s = %v, %v; want Count 1 until %s", b.Prefix, h, ok, b.Until)
	}
	l.Unban(b.Prefix)
	waitFor(t, "the unban in the store", func() bool {
		_, ok := stored(t, s)[b.Prefix]
		return !ok
	})
	if err := stop(); err != nil {
		t.Errorf("Run() = %v after ctx was cancelled, want nil", err)
	}
}

// blockWriters holds bbolt's writer lock, so Run stalls in its next
// write, until the returned function is called.
func blockWriters(t testing.TB, s *Store) (release func()) {
	t.Helper()
	tx, err := s.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(); err != nil {
			t.Errorf("rollback the blocking transaction: %v", err)
		}
	}
}

// TestRunResyncsAfterOverflow: with a one-change buffer and Run stalled
// in a write, almost all of a burst of bans is lost from the feed; Run
// must notice the overflow and make the file equal to the list.
func TestRunResyncsAfterOverflow(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	l := rules.NewBanList(rules.BanListConfig{})
	sub := l.Subscribe(1)
	defer sub.Close()
	stop := startRun(t, s, sub)
	until := time.Now().Add(time.Hour)
	marker, err := l.Ban(rules.Ban{Prefix: netip.MustParsePrefix("198.51.100.1/32"), Until: until})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first ban in the store", func() bool {
		_, ok := stored(t, s)[marker.Prefix]
		return ok
	})

	release := blockWriters(t, s)
	const n = 500
	for i := range n {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32)
		if _, err := l.Ban(rules.Ban{Prefix: p, Jail: "probes", Count: 1, Until: until.Add(time.Duration(i))}); err != nil {
			t.Fatal(err)
		}
	}
	l.Unban(marker.Prefix)
	release()

	want := l.List()
	waitFor(t, "the store to equal the ban list", func() bool {
		got := stored(t, s)
		if len(got) != len(want) {
			return false
		}
		for _, b := range want {
			if g, ok := got[b.Prefix]; !ok || sameBan(g, b) != nil {
				return false
			}
		}
		return true
	})
	if h := storedHistory(t, s); len(h) != n {
		t.Errorf("after the resync, %d history records, want %d (one per jail ban)", len(h), n)
	}
	if err := stop(); err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
}

// TestRunFlushesOnCancel: changes still queued when ctx ends are written
// before Run returns. Once ctx is done, Run's select may take either the
// queued changes or ctx.Done first, so the test does it a few times.
func TestRunFlushesOnCancel(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	l := rules.NewBanList(rules.BanListConfig{})
	until := time.Now().Add(time.Hour)
	const rounds, n = 8, 100
	for r := range rounds {
		sub := l.Subscribe(1024)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, sub) }()
		marker, err := l.Ban(rules.Ban{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(r)}), 32), Until: until})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the round's first ban in the store", func() bool {
			_, ok := stored(t, s)[marker.Prefix]
			return ok
		})
		release := blockWriters(t, s)
		for i := range n {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 2, byte(r), byte(i)}), 32)
			if _, err := l.Ban(rules.Ban{Prefix: p, Until: until}); err != nil {
				t.Fatal(err)
			}
		}
		// Cancel while Run is stalled with changes queued behind it.
		cancel()
		release()
		if err := <-done; err != nil {
			t.Fatalf("round %d: Run() = %v, want nil", r, err)
		}
		sub.Close()
		if got, want := len(stored(t, s)), (r+1)*(n+1); got != want {
			t.Fatalf("round %d: after Run returned, %d bans stored, want %d", r, got, want)
		}
	}
}

func TestRunStopsWhenSubscriptionCloses(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	l := rules.NewBanList(rules.BanListConfig{})
	sub := l.Subscribe(1)
	done := make(chan error, 1)
	go func() { done <- s.Run(t.Context(), sub) }()
	sub.Close()
	if err := <-done; !errors.Is(err, errClosedFeed) {
		t.Errorf("Run() after the subscription closed = %v, want %v", err, errClosedFeed)
	}
}

func TestRunStopsWhenStoreCloses(t *testing.T) {
	t.Parallel()
	s := openTest(t, StoreConfig{})
	l := rules.NewBanList(rules.BanListConfig{})
	sub := l.Subscribe(16)
	defer sub.Close()
	done := make(chan error, 1)
	go func() { done <- s.Run(t.Context(), sub) }()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Ban(rules.Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "database not open") {
		t.Errorf("Run() on a closed store = %v, want an error saying the database is not open", err)
	}
}

// TestHistoryRestoreAfterRestart: a repeat offender's second ban, made
// after a restart, is twice as long as the first, as with no restart.
func TestHistoryRestoreAfterRestart(t *testing.T) {
	t.Parallel()
	const bantime = time.Hour
	jailsCfg := rules.JailsConfig{Jails: map[string]rules.JailConfig{
		"probes": {MaxRetry: 2, FindTime: time.Minute, BanTime: bantime, Increment: &rules.Increment{Factor: 2}},
	}}
	client := netip.MustParseAddr("192.0.2.77")
	offend := func(j *rules.Jails) {
		j.Report("probes", client, "/.git/config")
		j.Report("probes", client, "/.env")
	}

	// First life: the client is banned once; Run stores the ban.
	s := openTest(t, StoreConfig{})
	bans := rules.NewBanList(rules.BanListConfig{})
	jails, err := rules.NewJails(jailsCfg, bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub := bans.Subscribe(64)
	stop := startRun(t, s, sub)
	offend(jails)
	first, ok := bans.Lookup(client)
	if !ok || first.Count != 1 || first.Until.Sub(first.Created) != bantime {
		t.Fatalf("first ban = %+v, %v; want Count 1 for %s", first, ok, bantime)
	}
	waitFor(t, "the ban's history in the store", func() bool {
		_, ok := storedHistory(t, s)[first.Prefix.String()+" probes"]
		return ok
	})
	if err := stop(); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	sub.Close()

	// Restart two hours later: the ban has ended, its history has not.
	s = reopen(t, s, StoreConfig{})
	active, history, err := s.Load(time.Now().Add(2 * time.Hour))
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if len(active) != 0 || len(history) != 1 {
		t.Fatalf("Load() = %v, %v; want no active ban and one history record", active, history)
	}
	bans2 := rules.NewBanList(rules.BanListConfig{})
	jails2, err := rules.NewJails(jailsCfg, bans2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range history {
		if !jails2.RestoreHistory(h) {
			t.Errorf("RestoreHistory(%+v) = false, want true", h)
		}
	}
	offend(jails2)
	second, ok := bans2.Lookup(client)
	if !ok || second.Count != 2 || second.Until.Sub(second.Created) != 2*bantime {
		t.Errorf("ban after restart = %+v, %v; want Count 2 lasting %s", second, ok, 2*bantime)
	}

	// Without the history, the same offences make a first ban again: the
	// check above is not satisfied by the jails alone.
	bans3 := rules.NewBanList(rules.BanListConfig{})
	jails3, err := rules.NewJails(jailsCfg, bans3, nil)
	if err != nil {
		t.Fatal(err)
	}
	offend(jails3)
	if b, _ := bans3.Lookup(client); b.Count != 1 {
		t.Errorf("ban without restored history has Count %d, want 1", b.Count)
	}
}

// TestRunPrunesPeriodically: Run deletes expired bans and forgotten
// history every PruneEvery, even when the ban list never tells it (its
// own pruning is not running here). In a synctest bubble, so the clock
// is fake.
func TestRunPrunesPeriodically(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bans.db")
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t, StoreConfig{Path: path, Forget: time.Minute, PruneEvery: time.Minute})
		l := rules.NewBanList(rules.BanListConfig{})
		sub := l.Subscribe(16)
		defer sub.Close()
		stop := startRun(t, s, sub)
		b, err := l.Ban(rules.Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Jail: "probes", Count: 1, Until: time.Now().Add(30 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(stored(t, s)) != 1 || len(storedHistory(t, s)) != 1 {
			t.Fatalf("the ban of %s and its history are not in the store", b.Prefix)
		}
		time.Sleep(time.Minute) // fake time: the first prune, the ban has expired
		synctest.Wait()
		if n, h := len(stored(t, s)), len(storedHistory(t, s)); n != 0 || h != 1 {
			t.Errorf("after the ban ended and a prune: %d bans and %d history records, want 0 and 1", n, h)
		}
		time.Sleep(time.Minute) // the second prune: 90s after the ban ended, past Forget
		synctest.Wait()
		if h := len(storedHistory(t, s)); h != 0 {
			t.Errorf("after the forget window and a prune: %d history records, want 0", h)
		}
		if err := stop(); err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	})
}
