package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse/middleware"
	"gatehouse/proxy/config"
	"gatehouse/proxy/ui"
	"gatehouse/rules/intel"
)

// intelLists owns the named trusted_proxies sets (CDN ranges, file: and
// url: lists): it loads each when a config first names it, keeps it
// current (a file is re-read when it changes; with intel.refresh a
// provider or url: list is fetched again, its last good copy kept in
// state_dir), and after each change updates the current generation's
// client-IP resolver, so new ranges apply without a reload. A reload
// keeps the lists whose entry (and refresh, and state_dir) it leaves
// alone. Safe for concurrent use.
type intelLists struct {
	log  *slog.Logger
	base *slog.Logger // the server's: intel.Source names its component
	// changed is called after a list's set changed, from the list's
	// goroutine.
	changed func()

	mu sync.Mutex
	// lists are the loaded lists by key (listKey); active those the
	// current config names.
	lists  map[string]*intelList
	active map[string]bool
	// runCtx is Run's context: nil before Run, and lists prepared
	// before it are started by Run.
	runCtx context.Context
	// stopped is set when Run's context has ended: nothing starts
	// after it, so Run's Wait never races an Add.
	stopped bool
	wg      sync.WaitGroup
}

// intelList is one named set.
type intelList struct {
	key   string
	entry config.TrustedProxy
	// provider is the CDN for a provider entry, else nil.
	provider *intel.Provider
	src      *intel.Source
	// run: the source must be kept current (a file, or a url with a
	// refresh); cancel stops its goroutine once started.
	run    bool
	cancel context.CancelFunc
	set    atomic.Pointer[intel.Set]
	// origin and updated describe the set in use: "snapshot", "state",
	// "url" or "file", and when it was published or read.
	origin  atomic.Pointer[string]
	updated atomic.Int64 // unix nanoseconds
}

func newIntelLists(log *slog.Logger, changed func()) *intelLists {
	return &intelLists{log: log.With("component", "intel"), base: log, changed: changed,
		lists: map[string]*intelList{}, active: map[string]bool{}}
}

// listKey identifies a list across reloads: the same entry fetched on
// another schedule or kept in another state_dir is another list.
func listKey(cfg *config.File, t config.TrustedProxy) string {
	return t.String() + "\x00" + cfg.Intel.Refresh.String() + "\x00" + cfg.StateDir
}

// prepare loads the lists cfg names that are not loaded yet and returns
// cfg's lists in trusted_proxies order. It makes no network request. A
// file: list that cannot be read, or a url: list with no copy, is an
// error; a provider whose last good copy cannot be read falls back to its
// snapshot with a warning. Lists prepared for a config that never
// becomes current are dropped by the next commit.
func (il *intelLists) prepare(cfg *config.File) ([]*intelList, error) {
	il.mu.Lock()
	defer il.mu.Unlock()
	var out []*intelList
	for _, t := range cfg.TrustedSets() {
		key := listKey(cfg, t)
		l := il.lists[key]
		if l == nil {
			var err error
			if l, err = il.load(cfg, t, key); err != nil {
				return nil, err
			}
			il.lists[key] = l
		}
		out = append(out, l)
	}
	return out, nil
}

func (l *intelList) setOrigin(origin string, updated time.Time) {
	l.origin.Store(&origin)
	l.updated.Store(updated.UnixNano())
}

// load builds and loads one list.
func (il *intelLists) load(cfg *config.File, t config.TrustedProxy, key string) (*intelList, error) {
	l := &intelList{key: key, entry: t}
	sc := intel.SourceConfig{Name: t.Label(), Refresh: cfg.Intel.Refresh.D(), Vet: intel.VetTrusted, Log: il.base}
	switch {
	case t.Provider != "":
		p, ok := intel.ProviderNamed(t.Provider)
		if !ok {
			return nil, fmt.Errorf("trusted_proxies: unknown provider %q", t.Provider)
		}
		l.provider = &p
		snap, err := p.SnapshotPrefixes()
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		sc.URLs, sc.Format, sc.Fallback, sc.FallbackDate = p.URLs, p.Format, snap, p.SnapshotDate
		l.run = cfg.Intel.Refresh != 0
	case t.File != "":
		sc.File = t.File
		l.run = true
	case t.URL != "":
		sc.URLs = []string{t.URL}
		l.run = cfg.Intel.Refresh != 0
	}
	if cfg.StateDir != "" && t.File == "" {
		sc.StatePath = config.TrustedListCopy(cfg.StateDir, t)
		if err := os.MkdirAll(filepath.Dir(sc.StatePath), 0o750); err != nil {
			return nil, fmt.Errorf("trusted_proxies: %s: %w", t.Label(), err)
		}
	}
	src, err := intel.NewSource(sc)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	l.src = src
	set, meta, err := src.Load()
	switch {
	case err != nil && t.Provider != "" && meta.Origin == "snapshot":
		il.log.Warn("trusted proxy list: last good copy unreadable; using the snapshot", "list", t.Label(), "error", err)
	case errors.Is(err, intel.ErrNoCopy) && l.run:
		// The first fetch is at once; until it succeeds the list
		// trusts nobody.
		il.log.Warn("trusted proxy list: no copy yet; empty until the first fetch", "list", t.Label())
	case err != nil:
		return nil, fmt.Errorf("trusted_proxies: %s: %w", t.Label(), err)
	}
	origin, updated := meta.Origin, meta.Updated
	if l.provider != nil && origin == "state" && updated.Before(l.provider.SnapshotDate) {
		// The binary knows newer ranges than the copy a previous
		// version fetched.
		if set, err = l.provider.Snapshot(); err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		origin, updated = "snapshot", l.provider.SnapshotDate
	}
	l.set.Store(set)
	l.setOrigin(origin, updated)
	attrs := []any{"list", t.Label(), "origin", origin, "entries", set.Len(), "updated", updated.UTC().Format(time.RFC3339)}
	if l.provider != nil {
		attrs = append(attrs, "snapshot", l.provider.SnapshotDate.UTC().Format(time.DateOnly))
	}
	il.log.Info("trusted proxy list loaded", attrs...)
	return l, nil
}

// commit makes lists the active ones: it stops the lists no longer
// named and, once Run has started, starts the new ones. It does not wait
// for a stopped list's goroutine (which may be waiting to apply an
// update under the reload lock the caller holds).
func (il *intelLists) commit(lists []*intelList) {
	il.mu.Lock()
	defer il.mu.Unlock()
	active := map[string]bool{}
	for _, l := range lists {
		active[l.key] = true
	}
	for key, l := range il.lists {
		if active[key] {
			continue
		}
		if l.cancel != nil {
			l.cancel()
		}
		delete(il.lists, key)
	}
	il.active = active
	if il.runCtx != nil {
		for _, l := range lists {
			il.start(l)
		}
	}
}

// start runs l's source if it must be kept current and is not running.
// il.mu is held.
func (il *intelLists) start(l *intelList) {
	if !l.run || l.cancel != nil || il.stopped {
		return
	}
	ctx, cancel := context.WithCancel(il.runCtx)
	l.cancel = cancel
	il.wg.Go(func() {
		// Run returns only when ctx ends.
		_ = l.src.Run(ctx, func(set *intel.Set, m intel.Meta) {
			l.set.Store(set)
			l.setOrigin(m.Origin, m.Updated)
			il.log.Info("trusted proxy list updated", "list", l.entry.Label(), "origin", m.Origin, "entries", set.Len())
			il.changed()
		})
	})
}

// Run keeps the active lists current until ctx is done, then waits for
// their goroutines.
func (il *intelLists) Run(ctx context.Context) {
	il.mu.Lock()
	il.runCtx = ctx
	for key, l := range il.lists {
		if il.active[key] {
			il.start(l)
		}
	}
	il.mu.Unlock()
	<-ctx.Done()
	il.mu.Lock()
	il.stopped = true
	il.mu.Unlock()
	il.wg.Wait()
}

// clientIPConfig is the resolver config for cfg with lists (prepare's
// answer for cfg), each list's current set.
func clientIPConfig(cfg *config.File, lists []*intelList) middleware.ClientIPConfig {
	c := middleware.ClientIPConfig{TrustedProxies: cfg.TrustedPrefixes()}
	for _, l := range lists {
		c.Sets = append(c.Sets, middleware.TrustedSet{Name: l.entry.Label(), Ranges: l.set.Load(), Provider: l.provider})
	}
	return c
}

// rangesOf returns the prefixes of lists' current sets, for the lists of
// clients never banned.
func rangesOf(lists []*intelList) []netip.Prefix {
	var out []netip.Prefix
	for _, l := range lists {
		out = slices.AppendSeq(out, l.set.Load().Prefixes())
	}
	return out
}

// Describe implements prometheus.Collector.
func (il *intelLists) Describe(ch chan<- *prometheus.Desc) {
	ch <- intelEntriesDesc
	ch <- intelAgeDesc
	ch <- intelFailuresDesc
}

var (
	intelEntriesDesc = prometheus.NewDesc("gatehouse_intel_list_entries",
		"Address ranges in the intel list in use (trusted_proxies named sets).", []string{"list"}, nil)
	intelAgeDesc = prometheus.NewDesc("gatehouse_intel_list_age_seconds",
		"Seconds since the intel list in use was published (a snapshot), read, or last fetched or confirmed unchanged.", []string{"list"}, nil)
	intelFailuresDesc = prometheus.NewDesc("gatehouse_intel_list_failures_total",
		"Refreshes of the intel list that failed; the previous list stayed in use.", []string{"list"}, nil)
)

// Collect implements prometheus.Collector: one series per active list.
func (il *intelLists) Collect(ch chan<- prometheus.Metric) {
	il.mu.Lock()
	lists := make([]*intelList, 0, len(il.active))
	for key := range il.active {
		if l := il.lists[key]; l != nil {
			lists = append(lists, l)
		}
	}
	il.mu.Unlock()
	now := time.Now()
	for _, l := range lists {
		name := l.entry.Label()
		ch <- prometheus.MustNewConstMetric(intelEntriesDesc, prometheus.GaugeValue, float64(l.set.Load().Len()), name)
		m := l.src.Meta()
		// A refresh that found the list unchanged (304, same content)
		// confirms it as much as one that changed it.
		seen := time.Unix(0, l.updated.Load())
		if m.LastSuccess.After(seen) {
			seen = m.LastSuccess
		}
		ch <- prometheus.MustNewConstMetric(intelAgeDesc, prometheus.GaugeValue, now.Sub(seen).Seconds(), name)
		ch <- prometheus.MustNewConstMetric(intelFailuresDesc, prometheus.CounterValue, float64(m.Failures), name)
	}
}

// trustedChanged applies the named sets' current ranges to the current
// generation's resolver. It holds the reload lock, so a reload building
// from the lists' older sets cannot store its generation after it.
// Jails, the ban list and the connection limit keep the ranges of the
// last build.
func (s *Server) trustedChanged() {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	g := s.current.Load()
	if g == nil || g.clientIP == nil {
		return
	}
	if err := g.clientIP.Update(clientIPConfig(g.cfg, g.trusted)); err != nil {
		s.log.Error("trusted proxy ranges not applied", "error", err)
	}
	s.feeds.setExempt(feedExempt(g.cfg, rangesOf(g.trusted)))
}

// panel is the dashboard's view of the trusted-proxy lists.
func (il *intelLists) panel() []ui.IntelList {
	il.mu.Lock()
	lists := make([]*intelList, 0, len(il.active))
	for key := range il.active {
		if l := il.lists[key]; l != nil {
			lists = append(lists, l)
		}
	}
	il.mu.Unlock()
	slices.SortFunc(lists, func(a, b *intelList) int { return strings.Compare(a.entry.Label(), b.entry.Label()) })
	out := make([]ui.IntelList, 0, len(lists))
	for _, l := range lists {
		m := l.src.Meta()
		source := *l.origin.Load()
		if source == "snapshot" {
			source = "built in (" + time.Unix(0, l.updated.Load()).UTC().Format(time.DateOnly) + ")"
		}
		out = append(out, ui.IntelList{Kind: "trusted proxies", Name: l.entry.Label(), Source: source,
			Entries: l.set.Load().Len(), Updated: time.Unix(0, l.updated.Load()), LastError: m.LastError})
	}
	return out
}
