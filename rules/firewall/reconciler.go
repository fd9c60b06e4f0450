package firewall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"time"

	"gatehouse/rules"

	"github.com/prometheus/client_golang/prometheus"
)

// ReconcilerConfig configures a Reconciler.
type ReconcilerConfig struct {
	// Backend is the kernel firewall to keep in line. Required.
	Backend Backend
	// Bans is the ban list the kernel must match. Required.
	Bans *rules.BanList
	// Interval is how often a full pass runs besides the passes that
	// changes trigger (firewall.reconcile). Zero: 30 seconds.
	Interval time.Duration
	// Allow lists prefixes that are never pushed to the kernel, even if
	// a ban covers them (the config's allow list, the admin listener's
	// peers): such bans are skipped and logged, and kernel entries that
	// overlap them are deleted.
	Allow []netip.Prefix
	// Log receives pass failures, repairs and skipped bans; nil
	// discards.
	Log *slog.Logger
	// Registerer receives the metrics; nil registers none (they are
	// still kept).
	Registerer prometheus.Registerer

	// subBuf is the ban list subscription's buffer; zero: 4096.
	subBuf int
}

// DefaultInterval is the full-pass interval of a zero
// ReconcilerConfig.Interval.
const DefaultInterval = 30 * time.Second

// Tolerances between the expiry the kernel reports for an entry and the
// one it should have: ipset counts whole seconds, and a big batch takes a
// moment to commit. Within them an entry is left alone.
const (
	earlyTolerance = 2 * time.Second
	lateTolerance  = 5 * time.Second
)

// maxBatch bounds how many queued changes one change pass drains.
const maxBatch = 65536

// Reconciler makes a Backend's kernel objects hold exactly the active
// bans of a BanList. It is level-triggered: a full pass ensures the
// objects, lists what the kernel holds, compares that with a snapshot of
// the ban list and applies the difference; it runs at start, every
// Interval, after the subscription overflowed and after a failure (with
// backoff). Between full passes, changes from the ban list's feed are
// applied at once, in batches: whatever is queued when a change arrives
// is drained and applied with one Backend.Apply, so a ban reaches the
// kernel within milliseconds and a storm of bans becomes a few batches.
// Entries deleted by hand, sets flushed or deleted, rules removed are
// repaired by the next full pass, and counted as drift.
//
// What the kernel gets for a ban: its prefix, with the ban's time left as
// the entry's timeout, capped at MaxTimeout and renewed when less than
// half of that is left. A ban that overlaps Allow is not pushed; nor is a
// ban inside a ban of a shorter prefix that lasts at least as long (the
// kernel drops its packets already, and interval sets refuse the
// overlap).
//
// A Reconciler is safe for concurrent use: Status and Flush may be
// called while Run runs.
type Reconciler struct {
	b      Backend
	bans   *rules.BanList
	every  time.Duration
	allow  []netip.Prefix
	log    *slog.Logger
	m      *metrics
	subBuf int

	mu       sync.Mutex // serialises kernel passes; guards the fields below
	want     *desired
	have     kernelMap             // what the kernel holds, as last listed and changed since; nil before the first list
	trusted  bool                  // have matched the kernel after the last pass: no failure since
	skipped  map[netip.Prefix]bool // allow-listed bans already logged
	lastPass time.Time
	lastErr  error
}

// NewReconciler checks cfg, applies its defaults and registers the
// metrics. It touches neither the kernel nor the ban list.
func NewReconciler(cfg ReconcilerConfig) (*Reconciler, error) {
	if cfg.Backend == nil {
		return nil, errors.New("firewall reconciler: no backend")
	}
	if cfg.Bans == nil {
		return nil, errors.New("firewall reconciler: no ban list")
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("firewall reconciler: interval %s is negative", cfg.Interval)
	}
	r := &Reconciler{
		b:       cfg.Backend,
		bans:    cfg.Bans,
		every:   cfg.Interval,
		log:     discard(cfg.Log).With("component", "firewall", "backend", cfg.Backend.Name()),
		subBuf:  cfg.subBuf,
		want:    newDesired(nil),
		skipped: map[netip.Prefix]bool{},
	}
	if r.every == 0 {
		r.every = DefaultInterval
	}
	if r.subBuf <= 0 {
		r.subBuf = 4096
	}
	for _, p := range cfg.Allow {
		c, ok := rules.CanonicalPrefix(p)
		if !ok {
			return nil, fmt.Errorf("firewall reconciler: allow: invalid prefix %s", p)
		}
		r.allow = append(r.allow, c)
	}
	m, err := newMetrics(cfg.Registerer, cfg.Backend.Name())
	if err != nil {
		return nil, err
	}
	r.m = m
	return r, nil
}

// Run keeps the kernel in line with the ban list until ctx is done, then
// returns nil, leaving the kernel entries in place: they expire by
// themselves. Failures are logged, counted and retried, except a refusal
// for lack of privilege, which nothing will cure: Run returns that error
// (wrapping ErrNoPermission) at once. The caller owns the goroutine. Run
// may be called again after it returned (not twice at once).
func (r *Reconciler) Run(ctx context.Context) error {
	sub := r.bans.Subscribe(r.subBuf)
	defer sub.Close()
	tick := time.NewTicker(r.every)
	defer tick.Stop()
	var (
		retry   *time.Timer
		retryC  <-chan time.Time
		backoff time.Duration
		failed  bool // the last full pass failed
		down    bool // ... before it could apply anything: the kernel objects cannot be used
	)
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	full := true
	for {
		if full {
			full = false
			err := r.fullPass(ctx, sub.Resync())
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				if errors.Is(err, ErrNoPermission) {
					return err
				}
				backoff = min(max(2*backoff, time.Second), r.every)
				if retry != nil {
					retry.Stop()
				}
				retry = time.NewTimer(backoff)
				retryC = retry.C
				var ae applyError
				failed, down = true, !errors.As(err, &ae)
			} else {
				if failed {
					r.log.Info("firewall reconcile recovered")
				}
				failed, down, backoff, retryC = false, false, 0, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case c, ok := <-sub.C:
			if !ok {
				return nil
			}
			batch := []rules.Change{c}
		drain:
			for len(batch) < maxBatch {
				select {
				case c, ok := <-sub.C:
					if !ok {
						break drain
					}
					batch = append(batch, c)
				default:
					break drain
				}
			}
			if down {
				// The last full pass could not even list the kernel;
				// the next one, after its backoff, takes these changes
				// from its snapshot.
				continue
			}
			err := r.applyChanges(ctx, batch)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				if errors.Is(err, ErrNoPermission) {
					return err
				}
				// A full pass sorts it out, now.
				full = true
			}
		case <-sub.Overflow():
			full = true
		case <-tick.C:
			full = true
		case <-retryC:
			retryC = nil
			full = true
		}
	}
}

// fullPass makes the kernel match bans: ensure, list, diff, apply.
func (r *Reconciler) fullPass(ctx context.Context, bans []rules.Ban) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	err := r.fullPassLocked(ctx, bans)
	r.m.seconds.WithLabelValues("full").Observe(time.Since(start).Seconds())
	r.lastErr = err
	if err != nil {
		r.m.errors.Inc()
		if ctx.Err() == nil {
			r.log.Warn("firewall reconcile failed", "err", err)
		}
		return err
	}
	r.lastPass = time.Now()
	return nil
}

func (r *Reconciler) fullPassLocked(ctx context.Context, bans []rules.Ban) error {
	r.want.sync(bans)
	if err := r.b.Ensure(ctx); err != nil {
		return fmt.Errorf("firewall reconcile: ensure: %w", err)
	}
	have, listed, err := r.list(ctx)
	if err != nil {
		return fmt.Errorf("firewall reconcile: list: %w", err)
	}
	now := time.Now()
	p := r.planFull(now, r.want, have)
	r.noteSkipped(p.skipped, true)
	if r.trusted {
		// The prefixes with an operation: every deletion (a
		// replacement is one too) and the additions of what the
		// kernel lacks.
		for _, q := range p.del {
			if drifted(now, r.have, have, q) {
				p.drift++
			}
		}
		for _, e := range p.add {
			if _, has := have[keyOf(e.Prefix)]; !has && drifted(now, r.have, have, e.Prefix) {
				p.drift++
			}
		}
	}
	if p.drift > 0 {
		r.m.drift.Add(float64(p.drift))
		r.log.Info("firewall drift repaired", "entries", p.drift)
	}
	r.have, r.trusted = have, false
	err = r.apply(ctx, p)
	r.trusted = err == nil
	if r.log.Enabled(ctx, slog.LevelDebug) {
		r.log.Debug("firewall pass", "kernel_entries", listed, "bans", len(r.want.until),
			"additions", len(p.add), "deletions", len(p.del), "drift", p.drift, "err", err)
	}
	if err != nil {
		return applyError{fmt.Errorf("firewall reconcile: apply %d additions, %d deletions: %w", len(p.add), len(p.del), err)}
	}
	return nil
}

// streamLister is a Backend that can hand its listing over entry by
// entry, without building the whole of it: Each calls fn for each entry
// List would return, in no particular order; after an error, fn may have
// seen some of them.
type streamLister interface {
	Each(ctx context.Context, fn func(Entry)) error
}

// list reads what the kernel holds into a new map, and counts the entries
// listed. A prefix listed twice keeps its later expiry.
func (r *Reconciler) list(ctx context.Context) (kernelMap, int, error) {
	have := make(kernelMap, len(r.have))
	n := 0
	put := func(e Entry) {
		n++
		k, s := keyOf(e.Prefix), stampOf(e.Expires)
		if old, dup := have[k]; !dup || s.n() > old.n() {
			have[k] = s
		}
	}
	if err := eachEntry(ctx, r.b, put); err != nil {
		return nil, 0, err
	}
	return have, n, nil
}

// eachEntry calls fn for each entry b lists: as b streams them if it can,
// else from its List.
func eachEntry(ctx context.Context, b Backend, fn func(Entry)) error {
	if sl, ok := b.(streamLister); ok {
		return sl.Each(ctx, fn)
	}
	list, err := b.List(ctx)
	if err != nil {
		return err
	}
	for _, e := range list {
		fn(e)
	}
	return nil
}

// applyError is a full pass's failure to apply its changes (all or some
// of them), as opposed to a failure to ensure or list the kernel objects.
type applyError struct{ err error }

func (e applyError) Error() string { return e.err.Error() }
func (e applyError) Unwrap() error { return e.err }

// applyChanges applies a batch of the ban list's changes to the kernel,
// judged against what the kernel was last known to hold.
func (r *Reconciler) applyChanges(ctx context.Context, changes []rules.Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.have == nil {
		// No full pass has listed the kernel yet: the next one (after
		// its backoff) takes these changes from its snapshot.
		return nil
	}
	start := time.Now()
	touched := map[netip.Prefix]struct{}{}
	var outer []netip.Prefix
	for _, c := range changes {
		p := c.Ban.Prefix
		switch c.Op {
		case rules.Added:
			r.want.set(p, c.Ban.Until)
		case rules.Removed:
			r.want.del(p)
		}
		touched[p] = struct{}{}
		outer = append(outer, p)
	}
	// A ban of a shorter prefix decides whether the bans inside it are
	// pushed: those are touched too.
	for q := range r.want.inside(outer) {
		touched[q] = struct{}{}
	}
	p := r.plan(time.Now(), r.want, r.have, maps.Keys(touched))
	r.noteSkipped(p.skipped, false)
	if len(p.add)+len(p.del) == 0 {
		return nil
	}
	err := r.apply(ctx, p)
	r.m.seconds.WithLabelValues("changes").Observe(time.Since(start).Seconds())
	if err != nil {
		r.trusted = false
		r.lastErr = err
		r.m.errors.Inc()
		if ctx.Err() == nil {
			r.log.Warn("firewall update failed", "additions", len(p.add), "deletions", len(p.del), "err", err)
		}
		return fmt.Errorf("firewall update: %w", err)
	}
	return nil
}

// apply sends a plan to the backend and records it in r.have; after a
// failure r.have is a guess that the next full pass corrects.
func (r *Reconciler) apply(ctx context.Context, p plan) error {
	var err error
	if len(p.add)+len(p.del) > 0 {
		err = r.b.Apply(ctx, p.add, p.del)
	}
	for _, q := range p.del {
		delete(r.have, keyOf(q))
	}
	for _, e := range p.add {
		r.have[keyOf(e.Prefix)] = stampOf(e.Expires)
	}
	r.m.entries.Set(float64(len(r.have)))
	return err
}

// noteSkipped logs the allow-listed bans not logged before. A full pass
// forgets the ones that are gone.
func (r *Reconciler) noteSkipped(skipped []netip.Prefix, full bool) {
	seen := r.skipped
	if full {
		r.skipped = make(map[netip.Prefix]bool, len(skipped))
	}
	for _, p := range skipped {
		if !seen[p] {
			r.log.Warn("firewall skips a ban on the allow list", "prefix", p)
		}
		r.skipped[p] = true
	}
}

// Status lists what the kernel holds and compares it with the ban list.
func (r *Reconciler) Status(ctx context.Context) (Status, error) {
	st, err := ReadStatus(ctx, r.b)
	if err != nil {
		return st, err
	}
	now := time.Now()
	d := newDesired(r.bans.List())
	have := make(map[pkey]bool, len(st.Entries))
	for _, e := range st.Entries {
		have[keyOf(e.Prefix)] = true
	}
	for k, until := range d.until {
		if _, ok, _ := r.targetOf(d, k.prefix(), until.time(), now); ok {
			st.Want++
			if !have[k] {
				st.Missing++
			}
		}
	}
	for k := range have {
		if _, ok, _ := r.target(d, k.prefix(), now); !ok {
			st.Stale++
		}
	}
	r.mu.Lock()
	st.LastPass, st.LastError = r.lastPass, r.lastErr
	r.mu.Unlock()
	return st, nil
}

// Flush removes the backend's kernel objects (`gatehouse firewall
// flush`). A running Run creates them again at its next full pass: stop
// it first for a lasting flush.
func (r *Reconciler) Flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.b.Remove(ctx)
	r.have, r.trusted = kernelMap{}, false
	r.m.entries.Set(0)
	if err != nil {
		return fmt.Errorf("firewall flush: %w", err)
	}
	return nil
}

// plan is what a pass changes.
type plan struct {
	add     []Entry
	del     []netip.Prefix
	skipped []netip.Prefix // bans not pushed because of the allow list
	drift   int
}

// plan decides, for each prefix of keys, what the kernel must do to go
// from have to want: add what is missing, delete what no ban asks for,
// and replace (delete and add) an entry whose timeout is off.
func (r *Reconciler) plan(now time.Time, want *desired, have kernelMap, keys func(func(netip.Prefix) bool)) plan {
	var p plan
	for q := range keys {
		t, ok, allowed := r.target(want, q, now)
		if allowed {
			p.skipped = append(p.skipped, q)
		}
		k, has := have[keyOf(q)]
		switch {
		case ok && !has:
			p.add = append(p.add, Entry{Prefix: q, Expires: t})
		case !ok && has:
			p.del = append(p.del, q)
		case ok && has && needsRefresh(now, k.time(), t):
			p.del = append(p.del, q)
			p.add = append(p.add, Entry{Prefix: q, Expires: t})
		}
	}
	return p
}

// planFull is plan over every prefix of want and of have, with one
// lookup per prefix: at a million bans a full pass over a kernel in line
// costs the ban list snapshot, the kernel's listing and little more.
func (r *Reconciler) planFull(now time.Time, want *desired, have kernelMap) plan {
	var p plan
	matched := 0
	for kq, until := range want.until {
		k, has := have[kq]
		if has {
			matched++
		}
		q := kq.prefix()
		t, ok, allowed := r.targetOf(want, q, until.time(), now)
		if allowed {
			p.skipped = append(p.skipped, q)
		}
		switch {
		case ok && !has:
			p.add = append(p.add, Entry{Prefix: q, Expires: t})
		case !ok && has:
			p.del = append(p.del, q)
		case ok && has && needsRefresh(now, k.time(), t):
			p.del = append(p.del, q)
			p.add = append(p.add, Entry{Prefix: q, Expires: t})
		}
	}
	if matched == len(have) {
		return p // every kernel entry has a ban: none is stale
	}
	for kq := range have {
		if _, banned := want.until[kq]; !banned {
			q := kq.prefix()
			p.del = append(p.del, q)
		}
	}
	return p
}

// target returns the expiry p's kernel entry should have and whether p
// belongs in the kernel at all; allowed reports a ban skipped because it
// overlaps the allow list.
func (r *Reconciler) target(d *desired, p netip.Prefix, now time.Time) (t time.Time, ok, allowed bool) {
	until, ok := d.until[keyOf(p)]
	if !ok {
		return time.Time{}, false, false
	}
	return r.targetOf(d, p, until.time(), now)
}

// targetOf is target for a prefix of d whose ban ends at until.
func (r *Reconciler) targetOf(d *desired, p netip.Prefix, until, now time.Time) (t time.Time, ok, allowed bool) {
	if !until.After(now) {
		return time.Time{}, false, false
	}
	for _, a := range r.allow {
		if a.Overlaps(p) {
			return time.Time{}, false, true
		}
	}
	if d.covered(p, until, now) {
		return time.Time{}, false, false
	}
	return capExpiry(until, now), true, false
}

// capExpiry returns the kernel expiry for a ban until: at most MaxTimeout
// from now.
func capExpiry(until, now time.Time) time.Time {
	if limit := now.Add(MaxTimeout); until.After(limit) {
		return limit
	}
	return until
}

// needsRefresh reports whether a kernel entry expiring at k must be
// replaced to expire at t instead: when it would end too early (but a
// capped entry only once less than half of MaxTimeout is left, not on
// every pass), or too late (the ban was shortened). An entry without a
// timeout (k zero) stays: the Reconciler deletes it when its ban ends.
func needsRefresh(now, k, t time.Time) bool {
	if k.IsZero() {
		return false
	}
	if k.Before(t.Add(-earlyTolerance)) && k.Sub(now) < MaxTimeout/2 {
		return true
	}
	return k.After(t.Add(lateTolerance))
}

// drifted reports whether the kernel entry of q changed since the
// Reconciler last saw it (was, from a pass without failures) other than
// by its own expiry: someone deleted, added or changed it.
func drifted(now time.Time, was, is kernelMap, q netip.Prefix) bool {
	kq := keyOf(q)
	ws, wasThere := was[kq]
	ks, isThere := is[kq]
	w, k := ws.time(), ks.time()
	switch {
	case wasThere && !isThere:
		expired := !w.IsZero() && !w.After(now.Add(lateTolerance))
		return !expired
	case !wasThere && isThere:
		return true
	case wasThere && isThere:
		return w.Sub(k).Abs() > lateTolerance
	}
	return false
}

// desired is the Reconciler's copy of the ban list: each banned prefix
// with its end, and how many prefixes of each length it holds, so that
// the bans around or inside a prefix are found without a scan in the
// usual case (IPv4 /32 and IPv6 /64 bans only).
type desired struct {
	until map[pkey]stamp
	lens  [2][129]int // [0] IPv4, [1] IPv6
}

func newDesired(bans []rules.Ban) *desired {
	d := &desired{until: make(map[pkey]stamp, len(bans))}
	for _, b := range bans {
		d.set(b.Prefix, b.Until)
	}
	return d
}

// sync makes d hold exactly bans. When it does already (a full pass
// after changes kept it in line) that costs one lookup per ban; when it
// holds prefixes bans does not, d is built again.
func (d *desired) sync(bans []rules.Ban) {
	kept := 0
	for _, b := range bans {
		p, ok := rules.CanonicalPrefix(b.Prefix)
		if !ok {
			continue
		}
		k, s := keyOf(p), stampOf(b.Until)
		if u, ok := d.until[k]; ok {
			kept++
			if u != s {
				d.until[k] = s
			}
			continue
		}
		d.lens[famIndex(p)][p.Bits()]++
		d.until[k] = s
		kept++
	}
	if kept != len(d.until) {
		*d = *newDesired(bans)
	}
}

func (d *desired) set(p netip.Prefix, until time.Time) {
	p, ok := rules.CanonicalPrefix(p)
	if !ok {
		return
	}
	k := keyOf(p)
	if _, ok := d.until[k]; !ok {
		d.lens[famIndex(p)][p.Bits()]++
	}
	d.until[k] = stampOf(until)
}

func (d *desired) del(p netip.Prefix) {
	p, ok := rules.CanonicalPrefix(p)
	if !ok {
		return
	}
	k := keyOf(p)
	if _, ok := d.until[k]; ok {
		d.lens[famIndex(p)][p.Bits()]--
		delete(d.until, k)
	}
}

// covered reports whether an active ban of a shorter prefix containing p
// lasts at least until until.
func (d *desired) covered(p netip.Prefix, until, now time.Time) bool {
	f := famIndex(p)
	nowN, untilN := stampOf(now).n(), stampOf(until).n()
	for bits := 0; bits < p.Bits(); bits++ {
		if d.lens[f][bits] == 0 {
			continue
		}
		q := netip.PrefixFrom(p.Addr(), bits).Masked()
		if u, ok := d.until[keyOf(q)]; ok && u.n() > nowN && u.n() >= untilN {
			return true
		}
	}
	return false
}

// inside yields the prefixes of d strictly inside one of outer. It scans
// d once, and only when d holds prefixes longer than some of outer in
// their family (usually it does not: jails ban IPv4 /32s and IPv6 /64s).
func (d *desired) inside(outer []netip.Prefix) func(func(netip.Prefix) bool) {
	return func(yield func(netip.Prefix) bool) {
		var lens [2][129]bool // lengths of the outer prefixes with something longer in d
		outers := map[netip.Prefix]bool{}
		for _, p := range outer {
			p, ok := rules.CanonicalPrefix(p)
			if !ok {
				continue
			}
			f := famIndex(p)
			for bits := p.Bits() + 1; bits < len(d.lens[f]); bits++ {
				if d.lens[f][bits] > 0 {
					lens[f][p.Bits()] = true
					outers[p] = true
					break
				}
			}
		}
		if len(outers) == 0 {
			return
		}
		for k := range d.until {
			q := k.prefix()
			f := famIndex(q)
			for bits := 0; bits < q.Bits(); bits++ {
				if lens[f][bits] && outers[netip.PrefixFrom(q.Addr(), bits).Masked()] {
					if !yield(q) {
						return
					}
					break
				}
			}
		}
	}
}

// union yields the prefixes of d and of have, each once.
func (d *desired) union(have kernelMap) func(func(netip.Prefix) bool) {
	return func(yield func(netip.Prefix) bool) {
		for k := range d.until {
			if !yield(k.prefix()) {
				return
			}
		}
		for k := range have {
			if _, dup := d.until[k]; dup {
				continue
			}
			if !yield(k.prefix()) {
				return
			}
		}
	}
}

func famIndex(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 0
	}
	return 1
}

// metrics are the Reconciler's Prometheus series.
type metrics struct {
	entries prometheus.Gauge
	seconds *prometheus.HistogramVec // pass: full, changes
	errors  prometheus.Counter
	drift   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, backend string) (*metrics, error) {
	labels := prometheus.Labels{"backend": backend}
	m := &metrics{
		entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "gatehouse_firewall_entries",
			Help:        "Entries in the kernel firewall's sets or chains, as of the last pass or update.",
			ConstLabels: labels,
		}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "gatehouse_firewall_reconcile_seconds",
			Help:        "Duration of kernel firewall passes: full (ensure, list, diff, apply) or changes (a batch of ban list changes).",
			ConstLabels: labels,
			Buckets:     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"pass"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "gatehouse_firewall_reconcile_errors_total",
			Help:        "Kernel firewall passes and updates that failed.",
			ConstLabels: labels,
		}),
		drift: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "gatehouse_firewall_drift_total",
			Help:        "Kernel firewall entries repaired because they were changed behind gatehouse's back (deleted, added or retimed by hand, or lost with a flushed set).",
			ConstLabels: labels,
		}),
	}
	m.seconds.WithLabelValues("full")
	m.seconds.WithLabelValues("changes")
	if reg == nil {
		return m, nil
	}
	var err error
	if m.entries, err = register(reg, m.entries); err != nil {
		return nil, err
	}
	if m.seconds, err = register(reg, m.seconds); err != nil {
		return nil, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return nil, err
	}
	if m.drift, err = register(reg, m.drift); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector registered before under
// the same name and labels (a Reconciler built again on reload).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
		if old, ok := are.ExistingCollector.(C); ok {
			return old, nil
		}
	}
	return c, fmt.Errorf("firewall metrics: %w", err)
}
