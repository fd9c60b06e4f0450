package firewall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"gatehouse/rules"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeBackend is an in-memory kernel for the Reconciler's logic: entries
// with timeouts capped at MaxTimeout that expire by themselves, and
// failures on demand.
type fakeBackend struct {
	mu         sync.Mutex
	entries    map[netip.Prefix]time.Time
	ensures    int
	lists      int
	applies    []fakeApply
	removes    int
	failEnsure error           // returned by every Ensure while set
	failApply  []error         // returned by the next Applies, one each
	refuse     netip.Prefix    // never added: Apply reports it and adds the rest
	gate       <-chan struct{} // when set, Apply waits for it to be closed
}

type fakeApply struct {
	add []Entry
	del []netip.Prefix
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{entries: map[netip.Prefix]time.Time{}}
}

func (f *fakeBackend) Name() string { return "fake" }

func (f *fakeBackend) Ensure(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ensures++
	return f.failEnsure
}

func (f *fakeBackend) List(context.Context) ([]Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	f.expire()
	var es []Entry
	for p, exp := range f.entries {
		es = append(es, Entry{p, exp})
	}
	return es, nil
}

// expire drops the entries whose timeout ran out, as a kernel does.
func (f *fakeBackend) expire() {
	now := time.Now()
	maps.DeleteFunc(f.entries, func(_ netip.Prefix, exp time.Time) bool { return !exp.IsZero() && !exp.After(now) })
}

func (f *fakeBackend) Apply(ctx context.Context, add []Entry, del []netip.Prefix) error {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies = append(f.applies, fakeApply{slices.Clone(add), slices.Clone(del)})
	if len(f.failApply) > 0 {
		err := f.failApply[0]
		f.failApply = f.failApply[1:]
		return err
	}
	now := time.Now()
	var err error
	for _, p := range del {
		delete(f.entries, p)
	}
	for _, e := range add {
		if e.Prefix == f.refuse {
			err = &OpError{Backend: "fake", Op: "add", Object: e.Prefix.String(), Err: errors.New("refused")}
			continue
		}
		d, ok := kernelTimeout(e.Expires, now, time.Second)
		switch {
		case !ok:
		case d == 0:
			f.entries[e.Prefix] = time.Time{}
		default:
			f.entries[e.Prefix] = now.Add(d)
		}
	}
	return err
}

func (f *fakeBackend) Remove(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removes++
	clear(f.entries)
	return nil
}

// held returns a copy of the entries the fake kernel holds now.
func (f *fakeBackend) held() map[netip.Prefix]time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expire()
	return maps.Clone(f.entries)
}

func (f *fakeBackend) do(fn func(f *fakeBackend)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

var (
	pA    = netip.MustParsePrefix("198.51.100.1/32")
	pB    = netip.MustParsePrefix("198.51.100.2/32")
	pC    = netip.MustParsePrefix("198.51.100.3/32")
	p24   = netip.MustParsePrefix("198.51.100.0/24")
	p6    = netip.MustParsePrefix("2001:db8:1:2::/64")
	p6in  = netip.MustParsePrefix("2001:db8:1:2::7/128")
	pAllo = netip.MustParsePrefix("203.0.113.7/32")
)

func TestPlan(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	capped := now.Add(MaxTimeout)
	type m = map[netip.Prefix]time.Time
	for _, tc := range []struct {
		name    string
		want    m // ban list: prefix -> until
		have    m // kernel: prefix -> expiry
		add     []Entry
		del     []netip.Prefix
		skipped []netip.Prefix
	}{
		{name: "missing ban is added", want: m{pA: at(time.Hour)}, add: []Entry{{pA, at(time.Hour)}}},
		{name: "entry without a ban is deleted", have: m{pA: at(time.Hour)}, del: []netip.Prefix{pA}},
		{name: "in line: nothing", want: m{pA: at(time.Hour), p6: at(time.Minute)}, have: m{pA: at(time.Hour + time.Second), p6: at(time.Minute - time.Second)}},
		{name: "ended ban is not pushed and its entry goes", want: m{pA: at(-time.Second), pB: at(0)}, have: m{pA: at(time.Second)}, del: []netip.Prefix{pA}},
		{name: "extended ban renews the entry", want: m{pA: at(2 * time.Hour)}, have: m{pA: at(time.Hour)},
			del: []netip.Prefix{pA}, add: []Entry{{pA, at(2 * time.Hour)}}},
		{name: "shortened ban renews the entry", want: m{pA: at(10 * time.Minute)}, have: m{pA: at(time.Hour)},
			del: []netip.Prefix{pA}, add: []Entry{{pA, at(10 * time.Minute)}}},
		{name: "long ban is capped", want: m{pA: at(60 * 24 * time.Hour)}, add: []Entry{{pA, capped}}},
		{name: "capped entry with more than half left stays", want: m{pA: at(60 * 24 * time.Hour)}, have: m{pA: capped.Add(-time.Hour)}},
		{name: "capped entry with less than half left is renewed", want: m{pA: at(60 * 24 * time.Hour)}, have: m{pA: at(MaxTimeout/2 - time.Hour)},
			del: []netip.Prefix{pA}, add: []Entry{{pA, capped}}},
		{name: "entry without timeout stays while banned", want: m{pA: at(time.Hour)}, have: m{pA: {}}},
		{name: "entry without timeout goes with its ban", have: m{pA: {}}, del: []netip.Prefix{pA}},
		{name: "allow-listed ban is skipped and its entry deleted", want: m{pAllo: at(time.Hour), pB: at(time.Hour)}, have: m{pAllo: at(time.Hour)},
			del: []netip.Prefix{pAllo}, add: []Entry{{pB, at(time.Hour)}}, skipped: []netip.Prefix{pAllo}},
		{name: "ban inside a longer-lasting shorter ban is not pushed", want: m{p24: at(2 * time.Hour), pA: at(time.Hour), pB: at(2 * time.Hour)},
			add: []Entry{{p24, at(2 * time.Hour)}}},
		{name: "ban outlasting the shorter ban around it is pushed", want: m{p24: at(time.Hour), pA: at(2 * time.Hour)},
			add: []Entry{{p24, at(time.Hour)}, {pA, at(2 * time.Hour)}}},
		{name: "inner entry goes once a shorter ban covers it", want: m{p24: at(2 * time.Hour), pA: at(time.Hour)}, have: m{pA: at(time.Hour)},
			add: []Entry{{p24, at(2 * time.Hour)}}, del: []netip.Prefix{pA}},
		{name: "inner entry comes back when the shorter ban ends", want: m{p24: at(-time.Minute), pA: at(time.Hour)}, have: m{p24: at(time.Hour)},
			add: []Entry{{pA, at(time.Hour)}}, del: []netip.Prefix{p24}},
		{name: "IPv6 /128 inside a /64", want: m{p6: at(time.Hour), p6in: at(time.Minute)}, add: []Entry{{p6, at(time.Hour)}}},
		{name: "IPv4 and IPv6 do not cover each other", want: m{netip.MustParsePrefix("::/0"): at(time.Hour), pA: at(time.Minute)},
			add: []Entry{{netip.MustParsePrefix("::/0"), at(time.Hour)}, {pA, at(time.Minute)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Reconciler{allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}
			d := newDesired(nil)
			for p, u := range tc.want {
				d.set(p, u)
			}
			have := kernelMapOf(tc.have)
			sortEntries(tc.add)
			slices.SortFunc(tc.del, comparePrefix)
			// planFull, the full pass's plan, must decide as plan does
			// over every prefix.
			for name, got := range map[string]plan{
				"plan":     r.plan(now, d, have, d.union(have)),
				"planFull": r.planFull(now, d, have),
			} {
				sortEntries(got.add)
				slices.SortFunc(got.del, comparePrefix)
				if !slices.Equal(got.add, tc.add) || !slices.Equal(got.del, tc.del) || !slices.Equal(got.skipped, tc.skipped) {
					t.Errorf("%s(want %v, have %v) = add %v del %v skipped %v,\nwant add %v del %v skipped %v",
						name, tc.want, tc.have, got.add, got.del, got.skipped, tc.add, tc.del, tc.skipped)
				}
			}
		})
	}
}

func TestDrifted(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	type m = map[netip.Prefix]time.Time
	for _, tc := range []struct {
		name     string
		was, is  m
		want     bool
		wantNote string
	}{
		{name: "deleted by hand", was: m{pA: now.Add(time.Hour)}, is: m{}, want: true},
		{name: "expired by itself", was: m{pA: now.Add(-time.Second)}, is: m{}, want: false},
		{name: "expired a moment early", was: m{pA: now.Add(2 * time.Second)}, is: m{}, want: false},
		{name: "added by hand", was: m{}, is: m{pA: now.Add(time.Hour)}, want: true},
		{name: "retimed by hand", was: m{pA: now.Add(time.Hour)}, is: m{pA: now.Add(time.Minute)}, want: true},
		{name: "listed a second off", was: m{pA: now.Add(time.Hour)}, is: m{pA: now.Add(time.Hour - time.Second)}, want: false},
		{name: "entry without timeout deleted", was: m{pA: {}}, is: m{}, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := drifted(now, kernelMapOf(tc.was), kernelMapOf(tc.is), pA); got != tc.want {
				t.Errorf("drifted(%v -> %v) = %v, want %v", tc.was, tc.is, got, tc.want)
			}
		})
	}
}

func TestKernelTimeout(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		expires time.Time
		unit    time.Duration
		want    time.Duration
		wantOK  bool
	}{
		{name: "zero: no timeout", want: 0, wantOK: true, unit: time.Second},
		{name: "past", expires: now.Add(-time.Second), unit: time.Second},
		{name: "now", expires: now, unit: time.Second},
		{name: "rounded up to the second", expires: now.Add(1500 * time.Millisecond), unit: time.Second, want: 2 * time.Second, wantOK: true},
		{name: "whole seconds stay", expires: now.Add(time.Hour), unit: time.Second, want: time.Hour, wantOK: true},
		{name: "milliseconds", expires: now.Add(1500*time.Millisecond + time.Microsecond), unit: time.Millisecond, want: 1501 * time.Millisecond, wantOK: true},
		{name: "capped", expires: now.Add(365 * 24 * time.Hour), unit: time.Second, want: MaxTimeout, wantOK: true},
		{name: "just under the cap", expires: now.Add(MaxTimeout - time.Millisecond), unit: time.Second, want: MaxTimeout, wantOK: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := kernelTimeout(tc.expires, now, tc.unit)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("kernelTimeout(%v) = %v, %v; want %v, %v", tc.expires, got, ok, tc.want, tc.wantOK)
			}
		})
	}
	if MaxTimeout != 2147483*time.Second {
		t.Errorf("MaxTimeout = %v, want ipset's limit 2147483s", MaxTimeout)
	}
}

func TestNewReconciler(t *testing.T) {
	t.Parallel()
	bans := rules.NewBanList(rules.BanListConfig{})
	fb := newFakeBackend()
	for _, tc := range []struct {
		name    string
		cfg     ReconcilerConfig
		wantErr string
	}{
		{name: "no backend", cfg: ReconcilerConfig{Bans: bans}, wantErr: "no backend"},
		{name: "no ban list", cfg: ReconcilerConfig{Backend: fb}, wantErr: "no ban list"},
		{name: "negative interval", cfg: ReconcilerConfig{Backend: fb, Bans: bans, Interval: -time.Second}, wantErr: "negative"},
		{name: "invalid allow", cfg: ReconcilerConfig{Backend: fb, Bans: bans, Allow: []netip.Prefix{{}}}, wantErr: "invalid prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewReconciler(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NewReconciler(%+v) = %v, want error containing %q", tc.cfg, err, tc.wantErr)
			}
		})
	}
	r, err := NewReconciler(ReconcilerConfig{Backend: fb, Bans: bans})
	if err != nil || r.every != DefaultInterval {
		t.Errorf("NewReconciler() = interval %v, %v; want %v, nil", r.every, err, DefaultInterval)
	}
	// Built again on a reload, with the same registry.
	reg := prometheus.NewRegistry()
	r1, err1 := NewReconciler(ReconcilerConfig{Backend: fb, Bans: bans, Registerer: reg})
	r2, err2 := NewReconciler(ReconcilerConfig{Backend: fb, Bans: bans, Registerer: reg})
	if err1 != nil || err2 != nil {
		t.Fatalf("NewReconciler() twice on one registry = %v, %v", err1, err2)
	}
	if r1.m.drift != r2.m.drift {
		t.Errorf("second Reconciler on one registry got new counters, want the registered ones")
	}
	if got := gathered(t, reg); !slices.Equal(got, metricNames) {
		t.Errorf("metrics registered: %q, want %q", got, metricNames)
	}
}

// runReconciler starts r.Run in the bubble and returns a stop function
// that cancels it and returns what Run returned.
func runReconciler(t *testing.T, r *Reconciler) (stop func() error) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

func mustBan(t *testing.T, bans *rules.BanList, p netip.Prefix, d time.Duration) rules.Ban {
	t.Helper()
	b, err := bans.Ban(rules.Ban{Prefix: p, Until: time.Now().Add(d)})
	if err != nil {
		t.Fatalf("Ban(%s) = %v", p, err)
	}
	return b
}

func TestReconcilerRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bans := rules.NewBanList(rules.BanListConfig{})
		fb := newFakeBackend()
		fb.entries[pC] = time.Now().Add(time.Hour) // stale, from a previous run
		r, err := NewReconciler(ReconcilerConfig{Backend: fb, Bans: bans, Interval: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		a := mustBan(t, bans, pA, time.Hour)
		stop := runReconciler(t, r)
		synctest.Wait()
		if got := fb.held(); len(got) != 1 || !got[pA].Equal(a.Until) {
			t.Errorf("after the first pass the kernel holds %v, want only %s until %s", got, pA, a.Until)
		}

		// A change is applied at once, without a full pass.
		lists := fb.lists
		mustBan(t, bans, pB, time.Hour)
		synctest.Wait()
		if _, ok := fb.held()[pB]; !ok || fb.lists != lists {
			t.Errorf("after Ban: kernel %v, %d lists; want %s added without listing", fb.held(), fb.lists-lists, pB)
		}
		bans.Unban(pA)
		synctest.Wait()
		if _, ok := fb.held()[pA]; ok {
			t.Errorf("after Unban the kernel still holds %s", pA)
		}

		// Deleted by hand: repaired at the next interval, as drift.
		fb.do(func(f *fakeBackend) { delete(f.entries, pB) })
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if _, ok := fb.held()[pB]; !ok {
			t.Errorf("hand-deleted %s not restored after an interval", pB)
		}
		if got := counterValue(t, r.m.drift); got != 1 {
			t.Errorf("drift = %v after one hand deletion, want 1", got)
		}
		// Set flushed and an entry added by hand.
		fb.do(func(f *fakeBackend) { clear(f.entries); f.entries[pC] = time.Time{} })
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if got := fb.held(); len(got) != 1 || got[pB].IsZero() {
			t.Errorf("after a flush and a foreign entry the kernel holds %v, want only %s", got, pB)
		}
		if got := counterValue(t, r.m.drift); got != 3 {
			t.Errorf("drift = %v after two more repairs, want 3", got)
		}

		// Bans ending by themselves are no drift.
		mustBan(t, bans, pA, 10*time.Second)
		synctest.Wait()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if _, ok := fb.held()[pA]; ok {
			t.Errorf("ended ban %s still in the kernel", pA)
		}
		if got := counterValue(t, r.m.drift); got != 3 {
			t.Errorf("drift = %v after an entry expired, want still 3", got)
		}
		if got := counterValue(t, r.m.entries); got != 1 {
			t.Errorf("entries = %v, want 1", got)
		}

		if err := stop(); err != nil {
			t.Errorf("Run() = %v after cancel, want nil", err)
		}
		if _, ok := fb.held()[pB]; !ok {
			t.Errorf("Run left the kernel without %s, want entries left in place", pB)
		}
	})
}

func TestReconcilerBatchesAStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bans := rules.NewBanList(rules.BanListConfig{})
		fb := newFakeBackend()
		gate := make(chan struct{})
		fb.gate = gate
		r, err := NewReconciler(ReconcilerConfig{Backend: fb, Bans: bans})
		if err != nil {
			t.Fatal(err)
		}
		stop := runReconciler(t, r)
		synctest.Wait() // first pass: nothing to apply
		const storm = 3000
		base := netip.MustParseAddr("100.64.0.0")
		ip := base
		for range storm {
			mustBan(t, bans, netip.PrefixFrom(ip, 32), time.Hour)
			ip = ip.Next()
		}
		close(gate)
		synctest.Wait()
		if got := len(fb.held()); got != storm {
			t.Errorf("kernel holds %d entries after a storm of %d bans", got, storm)
		}
		if n := len(fb.applies); n > 2 {
			t.Errorf("a storm of %d bans took %d Applies, want at most 2 (the first ban, then the rest drained at once)", storm, n)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

func TestReconcilerOverflowResyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bans := rules.NewBanList(rules.BanListConfig{})
		fb := newFakeBackend()
		gate := make(chan struct{})
		fb.gate = gate
		r, err := NewReconciler(ReconcilerConfig{Backend: fb, Bans: bans, subBuf: 8})
		if err != nil {
			t.Fatal(err)
		}
		stop := runReconciler(t, r)
		synctest.Wait()
		mustBan(t, bans, pA, time.Hour)
		synctest.Wait() // Run is in Apply, waiting at the gate
		ip := netip.MustParseAddr("100.64.0.0")
		for range 100 { // far more than the subscription holds
			mustBan(t, bans, netip.PrefixFrom(ip, 32), time.Hour)
			ip = ip.Next()
		}
		bans.Unban(pA)
		lists := fb.lists
		close(gate)
		synctest.Wait()
		got := fb.held()
		if _, ok := got[pA]; len(got) != 100 || ok {
			t.Errorf("after an overflow the kernel holds %d entries (%s: %v), want the 100 bans and not %s", len(got), pA, ok, pA)
		}
		if fb.lists != lists+1 {
			t.Errorf("overflow caused %d full passes, want 1", fb.lists-lists)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

func TestReconcilerRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bans := rules.NewBanList(rules.BanListConfig{})
		fb := newFakeBackend()
		fb.failEnsure = errors.New("kernel says no")
		logs := &logRecorder{}
		r, err := NewReconciler(ReconcilerConfig{Backend: fb, Bans: bans, Log: slog.New(logs)})
		if err != nil {
			t.Fatal(err)
		}
		mustBan(t, bans, pA, time.Hour)
		stop := runReconciler(t, r)
		synctest.Wait()
		mustBan(t, bans, pC, time.Hour) // not tried while the kernel is down
		synctest.Wait()
		time.Sleep(3 * time.Second) // retries after 1s and 2s
		synctest.Wait()
		if fb.ensures != 3 || len(fb.applies) != 0 {
			t.Errorf("%d Ensures and %d Applies in 3s of failures, want 3 (backoff 1s, 2s) and none", fb.ensures, len(fb.applies))
		}
		fb.do(func(f *fakeBackend) { f.failEnsure = nil })
		time.Sleep(4 * time.Second)
		synctest.Wait()
		if _, ok := fb.held()[pA]; !ok {
			t.Errorf("kernel lacks %s after the failure ended", pA)
		}
		if got := logs.since(0, "recovered"); len(got) != 1 {
			t.Errorf("logged %q, want one recovery", got)
		}

		// A failed update is followed by a full pass at once.
		fb.do(func(f *fakeBackend) { f.failApply = []error{errors.New("batch refused")} })
		mustBan(t, bans, pB, time.Hour)
		synctest.Wait()
		if _, ok := fb.held()[pB]; !ok {
			t.Errorf("kernel lacks %s after a failed update", pB)
		}
		if got := counterValue(t, r.m.errors); got != 4 {
			t.Errorf("errors = %v, want 4 (3 passes, 1 update)", got)
		}
		st, err := r.Status(t.Context())
		if err != nil || st.LastError != nil || st.LastPass.IsZero() || st.Want != 3 || st.Missing != 0 {
			t.Errorf("Status() = %+v, %v; want a recent pass without error, 3 bans none missing", st, err)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// A ban the kernel keeps refusing fails every full pass, but does not
// hold up the others.
func TestReconcilerRefusedItem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bans := rules.NewBanList(rules.BanListConfig{})
		fb := newFakeBackend()
		fb.refuse = pC
		r, err := NewReconciler(ReconcilerConfig{Backend: fb, Bans: bans})
		if err != nil {
			t.Fatal(err)
		}
		mustBan(t, bans, pC, time.Hour)
		stop := runReconciler(t, r)
		synctest.Wait()
		mustBan(t, bans, pA, time.Hour)
		synctest.Wait()
		if _, ok := fb.held()[pA]; !ok {
			t.Errorf("kernel lacks %s while another ban is refused, want it added at once", pA)
		}
		st, err := r.Status(t.Context())
		if err != nil || st.LastError == nil || !strings.Contains(st.LastError.Error(), pC.String()) || st.Missing != 1 {
			t.Errorf("Status() = %+v, %v; want the refusal of %s as last error, 1 ban missing", st, err, pC)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// Changes to a ban of a shorter prefix move the bans inside it in and out
// of the kernel at once, without waiting for a full pass.
func TestReconcilerNestedBans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bans := rules.NewBanList(rules.BanListConfig{})
		fb := newFakeBackend()
		r, err := NewReconciler(ReconcilerConfig{Backend: fb, Bans: bans, Interval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		mustBan(t, bans, pA, time.Hour)
		mustBan(t, bans, p6in, time.Hour)
		stop := runReconciler(t, r)
		synctest.Wait()
		lists := fb.lists
		mustBan(t, bans, p24, 2*time.Hour)
		mustBan(t, bans, p6, 2*time.Hour)
		synctest.Wait()
		if got := fb.held(); len(got) != 2 || got[p24].IsZero() || got[p6].IsZero() {
			t.Errorf("after longer bans of %s and %s the kernel holds %v, want only those", p24, p6, got)
		}
		bans.Unban(p24)
		bans.Unban(p6)
		synctest.Wait()
		if got := fb.held(); len(got) != 2 || got[pA].IsZero() || got[p6in].IsZero() {
			t.Errorf("after lifting them the kernel holds %v, want %s and %s back", got, pA, p6in)
		}
		if fb.lists != lists {
			t.Errorf("%d full passes, want the changes applied without one", fb.lists-lists)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

func TestReconcilerNoPermission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackend()
		fb.failEnsure = newOpError("fake", "ensure", "", "Operation not permitted", errors.New("exit status 1"))
		r, err := NewReconciler(ReconcilerConfig{Backend: fb, Bans: rules.NewBanList(rules.BanListConfig{})})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Run(t.Context()); !errors.Is(err, ErrNoPermission) {
			t.Errorf("Run() = %v, want an error wrapping ErrNoPermission", err)
		}
	})
}

func TestReconcilerAllow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bans := rules.NewBanList(rules.BanListConfig{})
		fb := newFakeBackend()
		fb.entries[pAllo] = time.Now().Add(time.Hour)
		logs := &logRecorder{}
		r, err := NewReconciler(ReconcilerConfig{Backend: fb, Bans: bans, Log: slog.New(logs),
			Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
		if err != nil {
			t.Fatal(err)
		}
		mustBan(t, bans, pAllo, time.Hour) // the ban list itself has no allow list here
		stop := runReconciler(t, r)
		synctest.Wait()
		mustBan(t, bans, pAllo, 2*time.Hour)
		mustBan(t, bans, pA, time.Hour)
		synctest.Wait()
		time.Sleep(DefaultInterval)
		synctest.Wait()
		if got := fb.held(); len(got) != 1 || got[pA].IsZero() {
			t.Errorf("kernel holds %v, want only %s (%s is allowed)", got, pA, pAllo)
		}
		if got := logs.since(0, "allow list"); len(got) != 1 {
			t.Errorf("logged %q, want the skipped ban once", got)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

func TestReconcilerRenewsCappedTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bans := rules.NewBanList(rules.BanListConfig{})
		fb := newFakeBackend()
		r, err := NewReconciler(ReconcilerConfig{Backend: fb, Bans: bans, Interval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		b := mustBan(t, bans, pA, 60*24*time.Hour)
		stop := runReconciler(t, r)
		synctest.Wait()
		first := fb.held()[pA]
		if want := time.Now().Add(MaxTimeout); !first.Equal(want) {
			t.Errorf("60-day ban pushed to expire at %s, want capped at %s", first, want)
		}
		// Hour by hour, the kernel entry must never lapse while the ban
		// lasts, and be renewed once less than half of it is left.
		renewed := 0
		for time.Now().Before(b.Until.Add(-time.Hour)) {
			time.Sleep(time.Hour)
			synctest.Wait()
			exp, ok := fb.held()[pA]
			if !ok {
				t.Fatalf("at %s the kernel lost the entry of a ban until %s", time.Now(), b.Until)
			}
			if exp.After(first) {
				renewed++
				first = exp
			}
		}
		if renewed < 2 || renewed > 4 {
			t.Errorf("a 60-day ban was renewed %d times, want 2 to 4 (every ~12 days)", renewed)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

func TestReconcilerFlushAndStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bans := rules.NewBanList(rules.BanListConfig{})
		fb := newFakeBackend()
		r, err := NewReconciler(ReconcilerConfig{Backend: fb, Bans: bans})
		if err != nil {
			t.Fatal(err)
		}
		mustBan(t, bans, pA, time.Hour)
		mustBan(t, bans, p6, time.Hour)
		fb.entries[pC] = time.Now().Add(time.Hour)
		st, err := r.Status(t.Context())
		want := Status{Backend: "fake", Entries: []Entry{{pC, time.Now().Add(time.Hour)}}, IPv4: 1, Want: 2, Missing: 2, Stale: 1}
		if err != nil || fmt.Sprint(st) != fmt.Sprint(want) {
			t.Errorf("Status() = %+v, %v;\nwant %+v", st, err, want)
		}
		if err := r.Flush(t.Context()); err != nil || fb.removes != 1 || len(fb.held()) != 0 {
			t.Errorf("Flush() = %v, %d removes, kernel %v; want the objects removed", err, fb.removes, fb.held())
		}
	})
}

// TestDesiredSync: sync leaves a desired holding exactly the bans it is
// given, with their ends and per-length counts, whether it held them, a
// part of them, more or others.
func TestDesiredSync(t *testing.T) {
	t.Parallel()
	hour := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	pA, pB := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("198.51.100.0/24")
	p6 := netip.MustParsePrefix("2001:db8::/64")
	ban := func(p netip.Prefix, u time.Time) rules.Ban { return rules.Ban{Prefix: p, Until: u} }
	for _, tc := range []struct {
		name       string
		held, bans []rules.Ban
	}{
		{"same", []rules.Ban{ban(pA, hour), ban(p6, hour)}, []rules.Ban{ban(pA, hour), ban(p6, hour)}},
		{"new end", []rules.Ban{ban(pA, hour)}, []rules.Ban{ban(pA, hour.Add(time.Hour))}},
		{"added", []rules.Ban{ban(pA, hour)}, []rules.Ban{ban(pA, hour), ban(pB, hour)}},
		{"removed", []rules.Ban{ban(pA, hour), ban(pB, hour)}, []rules.Ban{ban(pA, hour)}},
		{"replaced", []rules.Ban{ban(pA, hour), ban(pB, hour)}, []rules.Ban{ban(pA, hour), ban(p6, hour)}},
		{"emptied", []rules.Ban{ban(pA, hour)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDesired(tc.held)
			d.sync(tc.bans)
			want := newDesired(tc.bans)
			if !maps.Equal(d.until, want.until) || d.lens != want.lens {
				t.Errorf("sync(%v) over %v = %v, want %v", tc.bans, tc.held, d.until, want.until)
			}
		})
	}
}

// kernelMapOf returns m as the Reconciler keeps the kernel's entries.
func kernelMapOf(m map[netip.Prefix]time.Time) kernelMap {
	k := make(kernelMap, len(m))
	for p, t := range m {
		k[keyOf(p)] = stampOf(t)
	}
	return k
}

// TestCompactKeys: a prefix and a time come back from their map forms as
// they went in, and distinct prefixes get distinct keys (IPv4 and its
// IPv4-mapped IPv6 form among them).
func TestCompactKeys(t *testing.T) {
	t.Parallel()
	prefixes := []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/0"),
		netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("::/0"),
		netip.MustParsePrefix("::ffff:192.0.2.1/128"),
		netip.MustParsePrefix("::ffff:192.0.2.0/120"),
		netip.MustParsePrefix("2001:db8::/64"),
		netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("192.0.2.1/24"), // unmasked: kept so
	}
	seen := map[pkey]netip.Prefix{}
	for _, p := range prefixes {
		k := keyOf(p)
		if got := k.prefix(); got != p {
			t.Errorf("keyOf(%s).prefix() = %s", p, got)
		}
		if q, dup := seen[k]; dup {
			t.Errorf("keyOf(%s) = keyOf(%s)", p, q)
		}
		seen[k] = p
	}
	for _, tc := range []struct{ in, want time.Time }{
		{time.Time{}, time.Time{}},
		{time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC), time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)},
		{time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)), time.Date(2030, 1, 2, 2, 4, 5, 6, time.UTC)},
		{time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(0, 1).UTC()},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(0, math.MaxInt64).UTC()},
	} {
		if got := stampOf(tc.in).time(); got != tc.want {
			t.Errorf("stampOf(%v).time() = %v, want %v", tc.in, got, tc.want)
		}
	}
}
