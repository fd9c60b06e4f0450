package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/proxy/config"
	"gatehouse/proxy/ui"
	"gatehouse/rules/watch"
	"gatehouse/rules/watch/filter"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Log watching: the config's watch sources (log files, the journal) run
// as rules/watch sources, all sending their lines to one goroutine that
// judges them with each source's filter (rules/watch/filter) and reports
// every blamed address to the source's jail, with the line's own time.
//
// Restarts neither lose nor repeat an offence: every line carries the
// position its source stands at once it is handed over, and the judging
// goroutine saves those positions together with the jails' counts
// (checkpoint.go), between two lines, so what is saved is always "these
// lines were read, and these are the counts they built". After a crash
// the lines past the last checkpoint are read again and counted against
// the counts of that checkpoint, once.

// watcher runs the watch sources of the current config.
type watcher struct {
	s        *Server
	log      *slog.Logger
	lines    chan watch.Line
	pos      *checkpointPositions
	metrics  *watchMetrics
	resolver *hostResolver
	// entries are the sources' judging state, by name; replaced on reload.
	// Only the judging goroutine uses an entry's stream.
	entries atomic.Pointer[map[string]*watchEntry]

	// started is when the watcher was made: lines logged before it are
	// a backlog, not lag.
	started time.Time

	mu      sync.Mutex
	ctx     context.Context // Run's; nil before Run
	stopped bool            // Run is stopping: no source starts again
	sources map[string]*runningSource
	wg      sync.WaitGroup // the running sources
}

// watchEntry is what the judging goroutine needs of one source.
type watchEntry struct {
	cfg     config.Watch
	jail    string
	reason  string
	stream  *filter.Stream
	lines   [numVerdicts]prometheus.Counter
	lag     prometheus.Gauge
	untimed prometheus.Counter
}

// runningSource is one source's goroutine.
type runningSource struct {
	cfg    config.Watch
	cancel context.CancelFunc
	done   chan struct{}
}

// verdict is what became of a line, the result label of
// gatehouse_watch_lines_total.
type verdict int

const (
	vNoMatch    verdict = iota // no failregex matched
	vFail                      // an offence was reported
	vIgnored                   // an ignoreregex excused it
	vOld                       // blamed, but older than the jail's findtime
	vUnresolved                // blamed a host name, not resolved
	vLocal                     // blamed a loopback, link-local, multicast, unspecified or broadcast address
	vTooLong                   // cut at config.WatchMaxLine: not judged
	numVerdicts
)

var verdictNames = [numVerdicts]string{"nomatch", "fail", "ignored", "old", "unresolved", "local", "too_long"}

type watchMetrics struct {
	lines   *prometheus.CounterVec
	lag     *prometheus.GaugeVec
	untimed *prometheus.CounterVec
}

func newWatchMetrics(reg prometheus.Registerer) *watchMetrics {
	m := &watchMetrics{
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_watch_lines_total",
			Help: "Log lines read by watch sources, by source and result (fail, nomatch, ignored, old, unresolved, local, too_long).",
		}, []string{"source", "result"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_watch_lag_seconds",
			Help: "How far behind the clock the last timestamped line a watch source read was.",
		}, []string{"source"}),
		untimed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_watch_untimed_lines_total",
			Help: "Lines a watch source's filter blamed without a timestamp it could read (counted as now): a datepattern that does not fit the log.",
		}, []string{"source"}),
	}
	reg.MustRegister(m.lines, m.lag, m.untimed)
	return m
}

func newWatcher(s *Server, pos *checkpointPositions) *watcher {
	w := &watcher{
		s:        s,
		log:      s.log.With("component", "watch"),
		lines:    make(chan watch.Line),
		pos:      pos,
		started:  time.Now(),
		resolver: newHostResolver(),
		metrics:  newWatchMetrics(s.metrics.reg),
		sources:  map[string]*runningSource{},
	}
	w.entries.Store(&map[string]*watchEntry{})
	return w
}

// prepare compiles cfg's filters into new entries, keeping the stream
// (a filter's memory of earlier lines) of every source whose settings
// did not change. It changes nothing: apply does.
func (w *watcher) prepare(cfg *config.File) (map[string]*watchEntry, error) {
	old := *w.entries.Load()
	next := make(map[string]*watchEntry, len(cfg.Watch))
	for _, wc := range cfg.Watch {
		e := &watchEntry{cfg: wc, jail: config.WatchJail(wc), reason: "watch " + wc.Name,
			lag: w.metrics.lag.WithLabelValues(wc.Name), untimed: w.metrics.untimed.WithLabelValues(wc.Name)}
		for v := range numVerdicts {
			e.lines[v] = w.metrics.lines.WithLabelValues(wc.Name, verdictNames[v])
		}
		if o := old[wc.Name]; o != nil && reflect.DeepEqual(o.cfg, wc) {
			e.stream = o.stream
		} else {
			fc, err := config.WatchFilterConfig(wc)
			if err != nil {
				return nil, fmt.Errorf("watch %s: %w", wc.Name, err)
			}
			f, err := filter.Compile(fc)
			if err != nil {
				return nil, fmt.Errorf("watch %s: filter: %w", wc.Name, err)
			}
			e.stream = f.NewStream()
		}
		next[wc.Name] = e
	}
	return next, nil
}

// apply makes entries current and, once Run runs, starts the sources
// that are new or changed and stops those that went or changed.
func (w *watcher) apply(entries map[string]*watchEntry) {
	w.entries.Store(&entries)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx == nil || w.stopped {
		return
	}
	for name, rs := range w.sources {
		if e := entries[name]; e == nil || !reflect.DeepEqual(e.cfg, rs.cfg) {
			rs.cancel()
			<-rs.done
			delete(w.sources, name)
		}
	}
	names := make(map[string]bool, len(entries))
	for name, e := range entries {
		names[name] = true
		if w.sources[name] == nil {
			w.start(e.cfg)
		}
	}
	w.pos.keep(names)
}

// forget drops the metric series of the sources prev had and cfg has
// not, so that no gauge of a removed source stays frozen (and alerting).
func (w *watcher) forget(prev, cfg *config.File) {
	for _, old := range prev.Watch {
		if slices.ContainsFunc(cfg.Watch, func(wc config.Watch) bool { return wc.Name == old.Name }) {
			continue
		}
		w.metrics.lines.DeletePartialMatch(prometheus.Labels{"source": old.Name})
		w.metrics.lag.DeleteLabelValues(old.Name)
		w.metrics.untimed.DeleteLabelValues(old.Name)
	}
}

// start runs the source of wc; w.mu is held.
func (w *watcher) start(wc config.Watch) {
	ctx, cancel := context.WithCancel(w.ctx)
	rs := &runningSource{cfg: wc, cancel: cancel, done: make(chan struct{})}
	w.sources[wc.Name] = rs
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(rs.done)
		w.runSource(ctx, wc)
	}()
}

// sourceRetry is how long a source that stopped with an error (no
// journalctl) waits before it starts again.
const sourceRetry = 30 * time.Second

// runSource runs wc's source until ctx is done. A source that cannot be
// read is logged, never fatal: files are looked for again at every poll,
// and a journal source that stops is started again.
func (w *watcher) runSource(ctx context.Context, wc config.Watch) {
	log := w.log.With("source", wc.Name)
	for {
		var err error
		if wc.Journal != nil {
			jc := config.JournalSourceConfig(wc, w.pos)
			// The first start reads the jail's findtime back, as
			// fail2ban's systemd backend does: recent failures count.
			jc.Since = w.s.current.Load().jails.FindTime(config.WatchJail(wc))
			var src *watch.JournalSource
			if src, err = watch.NewJournalSource(jc, w.s.log); err == nil {
				err = src.Run(ctx, w.lines)
			}
		} else {
			var src *watch.FileSource
			if src, err = watch.NewFileSource(config.FileSourceConfig(wc, w.pos), w.s.log); err == nil {
				err = src.Run(ctx, w.lines)
			}
		}
		if ctx.Err() != nil {
			return
		}
		log.Error("watch source stopped; starting it again later", "retry_seconds", sourceRetry.Seconds(), "error", err)
		t := time.NewTimer(sourceRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Run starts the sources and judges their lines until ctx is done; it
// saves a checkpoint every checkpointInterval. It returns once every
// source has stopped and every line handed over has been judged; the
// caller saves the last checkpoint after that.
func (w *watcher) Run(ctx context.Context) {
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
	w.apply(*w.entries.Load())
	tick := time.NewTicker(checkpointInterval)
	defer tick.Stop()
	for {
		select {
		case l := <-w.lines:
			w.judge(l)
		case <-tick.C:
			w.s.checkpoint(false)
		case <-ctx.Done():
			// Sources stop on ctx without handing over more lines: a
			// line is handed over only while this goroutine receives.
			w.mu.Lock()
			w.stopped = true
			w.mu.Unlock()
			w.wg.Wait()
			return
		}
	}
}

// judge runs l through its source's filter and reports the offence, if
// any; then l's position is the source's.
func (w *watcher) judge(l watch.Line) {
	e := (*w.entries.Load())[l.Source]
	if e == nil {
		return // a source removed by a reload, stopping: its position goes
	}
	defer w.pos.advance(l.Key, l.Pos)
	// A cut line is WatchMaxLine bytes, one less when the source then
	// dropped a '\r' it ended on.
	if len(l.Text) >= config.WatchMaxLine-1 {
		e.lines[vTooLong].Inc()
		return
	}
	res := e.stream.MatchAt(l.SyslogText(), l.Time)
	now := time.Now()
	if !res.Time.IsZero() && res.Time.After(w.started) {
		// Lines logged before the start are a backlog read at the
		// first start, not a source falling behind.
		e.lag.Set(max(now.Sub(res.Time).Seconds(), 0))
	}
	switch res.Kind {
	case filter.NoMatch:
		e.lines[vNoMatch].Inc()
		return
	case filter.Ignored:
		e.lines[vIgnored].Inc()
		return
	}
	at := res.Time
	if at.IsZero() {
		e.untimed.Inc()
		at = now
	} else if at.After(now) {
		at = now
	}
	jails := w.s.current.Load().jails
	ft := jails.FindTime(e.jail)
	if ft == 0 {
		// A reload between the entries and the jails it names: the
		// jails are stored right after.
		jails = w.s.current.Load().jails
		ft = jails.FindTime(e.jail)
	}
	if now.Sub(at) > ft {
		// fail2ban ignores such lines too: they cannot count towards a
		// ban, and reading an old log must not ban anyone.
		e.lines[vOld].Inc()
		return
	}
	ips := []netip.Addr{res.Host}
	if !res.Host.IsValid() {
		if !e.cfg.Resolve {
			e.lines[vUnresolved].Inc()
			w.log.Debug("line blames a host name; not resolved (watch resolve: false)", "source", l.Source, "host", res.HostName)
			return
		}
		ips = w.resolve(res.HostName)
		if len(ips) == 0 {
			e.lines[vUnresolved].Inc()
			return
		}
	}
	ips = slices.DeleteFunc(ips, unbannable)
	if len(ips) == 0 {
		e.lines[vLocal].Inc()
		return
	}
	e.lines[vFail].Inc()
	for _, ip := range ips {
		w.s.notifier.Note(ip, e.reason+" "+l.Origin+": "+l.Text)
		w.s.metrics.dash.Report(ui.Offence{Time: at, ClientIP: ip, Host: e.cfg.Name, Kind: ui.Log,
			Rule: e.reason, Path: l.Text})
		jails.ReportAt(e.jail, ip, e.reason, at)
	}
}

// panel describes the watch sources for the dashboard, in config
// order.
func (w *watcher) panel() []ui.WatchSource {
	entries := *w.entries.Load()
	cfg := w.s.current.Load().cfg
	out := make([]ui.WatchSource, 0, len(cfg.Watch))
	for _, wc := range cfg.Watch {
		e := entries[wc.Name]
		if e == nil {
			continue
		}
		reads := "journal"
		if wc.Journal == nil {
			reads = strings.Join(wc.Files, ", ")
		}
		src := ui.WatchSource{Name: wc.Name, Jail: e.jail, Reads: reads,
			Offences: counterValue(e.lines[vFail]), Lag: gaugeValue(e.lag)}
		for _, c := range e.lines {
			src.Lines += counterValue(c)
		}
		out = append(out, src)
	}
	return out
}

func counterValue(c prometheus.Counter) uint64 {
	var m dto.Metric
	if c.Write(&m) != nil {
		return 0
	}
	return uint64(m.GetCounter().GetValue())
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if g.Write(&m) != nil {
		return 0
	}
	return m.GetGauge().GetValue()
}

// unbannable reports whether a log line's address is no client to ban:
// the host itself (loopback, as fail2ban's ignoreself), link-local (a
// ban widened to its /64 would cut off the link, routers included),
// multicast, unspecified or broadcast. The line's writer may name any of
// them.
func unbannable(ip netip.Addr) bool {
	return ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() ||
		ip.IsLinkLocalMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) ||
		lowIPv6.Contains(ip)
}

// lowIPv6 holds :: and ::1 and the deprecated IPv4-compatible addresses
// (::10.0.0.5): no client has one, and a ban widened to ipv6_prefix
// would cover loopback.
var lowIPv6 = netip.MustParsePrefix("::/64")

// resolve looks name up for a source with resolve: true.
func (w *watcher) resolve(name string) []netip.Addr {
	ctx := context.Background()
	w.mu.Lock()
	if w.ctx != nil {
		ctx = w.ctx
	}
	w.mu.Unlock()
	addrs, err := w.resolver.resolve(ctx, name)
	if err != nil {
		w.log.Warn("host name not resolved", "host", name, "error", err)
	}
	return addrs
}
