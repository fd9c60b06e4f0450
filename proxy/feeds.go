package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/middleware"
	"gatehouse/proxy/config"
	"gatehouse/proxy/ui"
	"gatehouse/rules/firewall"
	"gatehouse/rules/intel"

	"github.com/prometheus/client_golang/prometheus"
)

// Blocklist feeds (intel.feeds): each feed is an intel.Source that keeps
// its list current; the runner merges the lists into one
// middleware.FeedTable for the request path and, for drop feeds, keeps
// one kernel set per feed through firewall.Feeds. The runner lives as
// long as the Server: a reload keeps the feeds whose settings did not
// change, with their lists, and their refresh clocks running.

// feedRunner keeps the configured feeds.
type feedRunner struct {
	log      *slog.Logger
	base     *slog.Logger // the server's: the intel package names itself
	stateDir string       // "" without state_dir: no last good copies kept
	// kernel holds the drop feeds in the kernel; nil when the firewall
	// is off or its backend keeps no feed sets (iptables).
	kernel *firewall.Feeds
	// table is what FeedGuard reads; nil while no feed is configured.
	table atomic.Pointer[middleware.FeedTable]
	// portless: firewall.ports is empty, so no feed goes into the
	// kernel (useKernel).
	portless bool
	// kick wakes the kernel loop: a feed's list, the feeds or the
	// exempt prefixes changed.
	kick chan struct{}

	mu     sync.Mutex
	feeds  []*feed         // the current feeds, in config order
	exempt []netip.Prefix  // allow and trusted_proxies, for the kernel
	ctx    context.Context // Run's; nil before Run
	wg     sync.WaitGroup  // the feeds' refresh loops
}

// feed is one configured feed and its current list.
type feed struct {
	cfg config.Feed
	src *intel.Source
	set atomic.Pointer[intel.Set]
	// blocks counts the requests the feed refused over HTTP.
	blocks atomic.Uint64
	// kernelErr is the last kernel sync failure, "" when it succeeded.
	kernelErr atomic.Pointer[string]
	// stop ends the feed's refresh loop; nil until it runs.
	stop context.CancelFunc
}

func newFeedRunner(log *slog.Logger, stateDir string) *feedRunner {
	return &feedRunner{log: log.With("component", "feeds"), base: log, stateDir: stateDir, kick: make(chan struct{}, 1)}
}

// useKernel makes the runner keep drop feeds in the kernel through
// backend, whose drops apply to ports. A backend without feed sets is
// logged once: its feeds are enforced on the HTTP path only. So are they
// without ports: a feed such as FireHOL level 1 lists the private ranges,
// and dropping every packet from them would drop the answers of the
// gateway's own upstreams and resolvers; the kernel then holds no feed
// set (those of an earlier run are removed).
func (fr *feedRunner) useKernel(backend firewall.Backend, ports []uint16, log *slog.Logger) {
	k, err := firewall.NewFeeds(firewall.FeedsConfig{Backend: backend, Log: log})
	if err != nil {
		if errors.Is(err, firewall.ErrFeedsUnsupported) {
			fr.log.Warn("the firewall backend keeps no feed sets; drop feeds are enforced over HTTP only", "backend", backend.Name())
			return
		}
		fr.log.Error("feeds not kept in the kernel", "error", err)
		return
	}
	fr.kernel = k
	fr.portless = len(ports) == 0
}

// prepare returns the feeds cfg asks for: the current ones whose settings
// are unchanged, and new ones with their first list loaded (a file read,
// a url feed's last good copy). It changes nothing the running gateway
// uses; install does. A file feed that cannot be read or parsed is an
// error, so a bad reload keeps the old config; a url feed without a copy
// yet starts empty and is fetched as soon as it runs.
func (fr *feedRunner) prepare(cfg *config.File) ([]*feed, error) {
	fr.mu.Lock()
	cur := fr.feeds
	fr.mu.Unlock()
	out := make([]*feed, 0, len(cfg.Intel.Feeds))
	for i, fc := range cfg.Intel.Feeds {
		if j := slices.IndexFunc(cur, func(f *feed) bool { return f.cfg == fc }); j >= 0 {
			out = append(out, cur[j])
			continue
		}
		f, err := fr.newFeed(fc)
		if err != nil {
			return nil, fmt.Errorf("intel.feeds[%d] (%s): %w", i, fc.Name, err)
		}
		out = append(out, f)
	}
	return out, nil
}

func (fr *feedRunner) newFeed(fc config.Feed) (*feed, error) {
	sc := intel.SourceConfig{
		Name:    fc.Name,
		File:    fc.File,
		Format:  intel.Format(fc.Format),
		Refresh: fc.Refresh.D(),
		Vet:     intel.VetFeed,
		Log:     fr.base.With("feed", fc.Name),
	}
	if fc.URL != "" {
		sc.URLs = []string{fc.URL}
		if fc.APIKey.HasValue() {
			sc.Header = http.Header{"X-Api-Key": {fc.APIKey.Value()}}
		}
		if fr.stateDir != "" {
			dir := filepath.Join(fr.stateDir, "feeds")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("state_dir: %w", err)
			}
			sc.StatePath = feedCopy(dir, fc)
		}
	}
	src, err := intel.NewSource(sc)
	if err != nil {
		return nil, err
	}
	_, _, err = src.Load()
	switch {
	case errors.Is(err, intel.ErrNoCopy):
		fr.log.Warn("feed empty until its first download", "feed", fc.Name)
	case err != nil && fc.File != "":
		return nil, err
	case err != nil:
		// A last good copy that cannot be read: the feed starts empty
		// and is fetched at once.
		fr.log.Warn("feed's last good copy unreadable; empty until its first download", "feed", fc.Name, "error", err)
	}
	f := &feed{cfg: fc, src: src}
	f.set.Store(src.Set())
	return f, nil
}

// feedCopy is where a url feed's last good copy is kept in dir: named
// by the feed and a hash of its URL and format, so that a feed given
// another URL never starts from the old one's list.
func feedCopy(dir string, fc config.Feed) string {
	sum := sha256.Sum256([]byte(fc.URL + "\x00" + fc.Format))
	return filepath.Join(dir, fc.Name+"-"+hex.EncodeToString(sum[:8])+".txt")
}

// install makes feeds the current ones: the request path's table is
// rebuilt, feeds no longer configured stop, new ones start (when the
// runner runs), and the kernel follows.
func (fr *feedRunner) install(feeds []*feed, exempt []netip.Prefix) {
	fr.mu.Lock()
	old := fr.feeds
	fr.feeds, fr.exempt = feeds, exempt
	for _, f := range old {
		if !slices.Contains(feeds, f) && f.stop != nil {
			f.stop()
		}
	}
	if fr.ctx != nil {
		for _, f := range feeds {
			fr.start(f)
		}
	}
	fr.rebuildLocked()
	fr.mu.Unlock()
	fr.wake()
}

// rebuildLocked builds the request path's table from the feeds' current
// sets. fr.mu is held.
func (fr *feedRunner) rebuildLocked() {
	if len(fr.feeds) == 0 {
		fr.table.Store(nil)
		return
	}
	sets := make([]*intel.Set, len(fr.feeds))
	t := &middleware.FeedTable{Names: make([]string, len(fr.feeds)), Actions: make([]middleware.FeedAction, len(fr.feeds)),
		Blocks: make([]*atomic.Uint64, len(fr.feeds))}
	for i, f := range fr.feeds {
		sets[i] = f.set.Load()
		t.Names[i] = f.cfg.Name
		t.Blocks[i] = &f.blocks
		if f.cfg.Action == config.FeedActionForbid {
			t.Actions[i] = middleware.FeedForbid
		}
	}
	t.Lookup = intel.NewIndex(sets).Lookup
	fr.table.Store(t)
}

// start runs f's refresh loop; fr.mu is held and fr.ctx set.
func (fr *feedRunner) start(f *feed) {
	if f.stop != nil {
		return
	}
	ctx, stop := context.WithCancel(fr.ctx)
	f.stop = stop
	fr.wg.Go(func() {
		// Run returns ctx's error only.
		_ = f.src.Run(ctx, func(set *intel.Set, _ intel.Meta) {
			f.set.Store(set)
			fr.mu.Lock()
			if slices.Contains(fr.feeds, f) {
				fr.rebuildLocked()
			}
			fr.mu.Unlock()
			fr.wake()
		})
	})
}

func (fr *feedRunner) wake() {
	select {
	case fr.kick <- struct{}{}:
	default:
	}
}

// Run starts the feeds' refresh loops and keeps the kernel's feed sets
// equal to the drop feeds until ctx ends.
func (fr *feedRunner) Run(ctx context.Context) {
	fr.mu.Lock()
	fr.ctx = ctx
	for _, f := range fr.feeds {
		fr.start(f)
	}
	fr.mu.Unlock()
	if fr.kernel != nil {
		fr.kernelLoop(ctx)
	} else {
		<-ctx.Done()
	}
	fr.mu.Lock()
	for _, f := range fr.feeds {
		if f.stop != nil {
			f.stop()
		}
	}
	fr.mu.Unlock()
	fr.wg.Wait()
}

// kernelRetry is how soon a failed kernel sync is tried again.
const kernelRetry = 30 * time.Second

// kernelLoop pushes drop feeds into the kernel whenever a list, the
// feeds or the exempt prefixes change. Feeds the config no longer holds
// (or that became 403 feeds) are removed, at start those left by an
// earlier run too.
func (fr *feedRunner) kernelLoop(ctx context.Context) {
	inKernel := map[string]*intel.Set{} // what each kernel feed holds
	var exempt []netip.Prefix
	pruned, warned := false, false
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		fr.mu.Lock()
		feeds, want := slices.Clone(fr.feeds), fr.exempt
		fr.mu.Unlock()
		failed := false
		anyDrop := slices.ContainsFunc(feeds, func(f *feed) bool { return f.cfg.Action == config.FeedActionDrop })
		if fr.portless && anyDrop && !warned {
			fr.log.Warn("drop feeds are enforced over HTTP only: the kernel gets them with firewall.ports set to the gateway's ports")
			warned = true
		}
		// The exempt sets exist for the feed sets: without a drop feed
		// gatehouse adds nothing to the kernel beside its bans.
		drops := anyDrop && !fr.portless
		exemptOK := exempt != nil && slices.Equal(exempt, want)
		if drops && !exemptOK {
			if err := fr.kernel.SetExempt(ctx, want); err != nil {
				fr.log.Error("feed exemptions not set in the kernel; no feed is pushed until they are", "error", err)
				failed = true
			} else {
				exempt, exemptOK = slices.Clone(want), true
				if exempt == nil {
					exempt = []netip.Prefix{}
				}
			}
		}
		var keep []string
		for _, f := range feeds {
			if !drops || f.cfg.Action != config.FeedActionDrop {
				continue
			}
			keep = append(keep, f.cfg.Name)
			set := f.set.Load()
			// A feed set is pushed only over its exemptions, and only
			// once a list is loaded: a restart whose url feed has no
			// copy yet leaves the set of the last run in place.
			if inKernel[f.cfg.Name] == set || !exemptOK || f.src.Meta().Origin == "" {
				continue
			}
			start := time.Now()
			err := fr.kernel.SetFeed(ctx, f.cfg.Name, slices.Collect(set.Prefixes()))
			if err != nil {
				msg := err.Error()
				f.kernelErr.Store(&msg)
				fr.log.Error("feed not pushed into the kernel; it is enforced over HTTP", "feed", f.cfg.Name, "error", err)
				failed = true
				continue
			}
			f.kernelErr.Store(nil)
			inKernel[f.cfg.Name] = set
			fr.log.Info("feed in the kernel", "feed", f.cfg.Name, "entries", set.Len(), "seconds", time.Since(start).Seconds())
		}
		for name := range inKernel {
			if !slices.Contains(keep, name) {
				if err := fr.kernel.RemoveFeed(ctx, name); err != nil {
					fr.log.Error("feed not removed from the kernel", "feed", name, "error", err)
					failed = true
					continue
				}
				delete(inKernel, name)
			}
		}
		if !pruned {
			if removed, err := fr.kernel.Prune(ctx, keep); err != nil {
				fr.log.Error("stale kernel feeds not removed", "error", err)
				failed = true
			} else {
				pruned = true
				if len(removed) > 0 {
					fr.log.Info("kernel feeds no longer configured removed", "feeds", removed)
				}
			}
		}
		if failed {
			retry.Reset(kernelRetry)
		}
		select {
		case <-ctx.Done():
			return
		case <-fr.kick:
		case <-retry.C:
		}
	}
}

// lists is the dashboard's view of the feeds.
func (fr *feedRunner) lists() []ui.IntelList {
	fr.mu.Lock()
	feeds := slices.Clone(fr.feeds)
	fr.mu.Unlock()
	out := make([]ui.IntelList, 0, len(feeds))
	for _, f := range feeds {
		m := f.src.Meta()
		l := ui.IntelList{Kind: "feed", Name: f.cfg.Name, Source: intel.RedactURL(f.cfg.URL), Action: f.cfg.Action,
			Entries: m.Entries, Updated: m.Updated, Blocks: f.blocks.Load(), LastError: m.LastError}
		if f.cfg.File != "" {
			l.Source = f.cfg.File
		}
		if e := f.kernelErr.Load(); e != nil && l.LastError == "" {
			l.LastError = "kernel: " + *e
		}
		out = append(out, l)
	}
	return out
}

// feedExempt lists the sources no feed blocks: allow, trusted_proxies
// (with the current ranges of its named sets, named), loopback, the
// load balancers of listen.proxy_protocol and the host's own addresses.
func feedExempt(cfg *config.File, named []netip.Prefix) []netip.Prefix {
	out := append(neverBanned(cfg, named), loopback...)
	out = append(out, prefixes(cfg.Listen.ProxyProtocol)...)
	return append(out, hostAddrs()...)
}

// setExempt replaces the prefixes the kernel's feed sets never drop,
// after a trusted-proxy list changed.
func (fr *feedRunner) setExempt(exempt []netip.Prefix) {
	fr.mu.Lock()
	fr.exempt = exempt
	fr.mu.Unlock()
	fr.wake()
}

// feedCollector exports the feeds' state at scrape time, so a feed
// removed by a reload leaves the metrics with it.
type feedCollector struct{ fr *feedRunner }

var (
	feedEntriesDesc = prometheus.NewDesc("gatehouse_feed_entries",
		"Prefixes the feed's current list holds.", []string{"feed"}, nil)
	feedAgeDesc = prometheus.NewDesc("gatehouse_feed_age_seconds",
		"Seconds since the feed's list was last fetched, confirmed unchanged or read; absent while none is loaded.", []string{"feed"}, nil)
	feedFailuresDesc = prometheus.NewDesc("gatehouse_feed_refresh_failures_total",
		"Failed refreshes of the feed (download, parse or shrink guard) since start; the last good list is kept.", []string{"feed"}, nil)
	feedBlocksDesc = prometheus.NewDesc("gatehouse_feed_blocks_total",
		"Requests the feed refused over HTTP (the kernel's drops are not counted here).", []string{"feed"}, nil)
)

func (c feedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- feedEntriesDesc
	ch <- feedAgeDesc
	ch <- feedFailuresDesc
	ch <- feedBlocksDesc
}

func (c feedCollector) Collect(ch chan<- prometheus.Metric) {
	c.fr.mu.Lock()
	feeds := slices.Clone(c.fr.feeds)
	c.fr.mu.Unlock()
	now := time.Now()
	for _, f := range feeds {
		m := f.src.Meta()
		ch <- prometheus.MustNewConstMetric(feedEntriesDesc, prometheus.GaugeValue, float64(m.Entries), f.cfg.Name)
		// A refresh that found the list unchanged (304) confirms it as
		// much as one that changed it.
		seen := m.Updated
		if m.LastSuccess.After(seen) {
			seen = m.LastSuccess
		}
		if !seen.IsZero() {
			ch <- prometheus.MustNewConstMetric(feedAgeDesc, prometheus.GaugeValue, now.Sub(seen).Seconds(), f.cfg.Name)
		}
		ch <- prometheus.MustNewConstMetric(feedFailuresDesc, prometheus.CounterValue, float64(m.Failures), f.cfg.Name)
		ch <- prometheus.MustNewConstMetric(feedBlocksDesc, prometheus.CounterValue, float64(f.blocks.Load()), f.cfg.Name)
	}
}
