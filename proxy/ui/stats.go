package ui

import (
	"cmp"
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"gatehouse/middleware"
	"gatehouse/rules"
)

// Kind classifies a counted request.
type Kind uint8

// The kinds the dashboard counts. Every request counts as Requests; a
// blocked one counts under its reason too.
const (
	Requests Kind = iota // every request answered
	Probe                // blocked as a probe (probes)
	Auth                 // bad basic auth credentials (auth jail)
	Hotlink              // hotlinked media refused
	Flood                // over a flood jail's rate
	Banned               // refused by the ban guard
	Other                // another offence
	Log                  // a log line a watch source blamed (not a request)
	numKinds
)

// blockedKinds are the kinds that are blocked requests.
var blockedKinds = []Kind{Probe, Auth, Hotlink, Flood, Banned, Other}

var kindNames = [numKinds]string{"requests", "probe", "auth", "hotlink", "flood", "banned", "other", "log"}

// String returns the kind's name: "requests", "probe", "auth", "hotlink",
// "flood", "banned", "other" or "log".
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "other"
}

// kindOf classifies the middleware's Scope.Offence text: "probe <rule>"
// (ProbeBlock), "bad credentials" (BasicAuth), "hotlink", "flood", and
// "limit …" (a named rate limit), which counts as flood.
func kindOf(offence string) (Kind, string) {
	switch {
	case strings.HasPrefix(offence, "probe "):
		return Probe, offence[len("probe "):]
	case offence == "bad credentials":
		return Auth, offence
	case offence == "hotlink":
		return Hotlink, offence
	case offence == "flood", offence == "limit", strings.HasPrefix(offence, "limit "):
		return Flood, offence
	}
	return Other, offence
}

// Offence is one request that was reported as an offence, as the
// dashboard lists it. Its text fields are what the client sent, so they
// are hostile: the pages escape them, and Stats bounds their length.
type Offence struct {
	Time      time.Time
	ClientIP  netip.Addr
	Host      string // the request's host, as the client named it
	Method    string
	Path      string // percent-decoded, without the query string
	UserAgent string
	Kind      Kind
	Rule      string // what matched: the probe rule, "bad credentials", …
	// Seq numbers the offences Stats recorded, from 1.
	Seq uint64
}

// Length bounds of an offence's text, in bytes.
const (
	maxPathLen   = 512
	maxHostLen   = 256
	maxUALen     = 256
	maxMethodLen = 16
	maxRuleLen   = 128
	maxTopKeyLen = 200
)

const (
	// ringSeconds is how far back the per-second counters go.
	ringSeconds = 3600
	// countMask is the count half of a counter slot; the other half is
	// the slot's second.
	countMask = 1<<32 - 1
	// topPerMinute is how many keys each top list keeps for a minute.
	topPerMinute = 128
)

// StatsConfig configures a Stats. Zero values are defaults.
type StatsConfig struct {
	// Queue is how many offences may wait for Run; more are dropped and
	// counted. Zero: 4096.
	Queue int
	// Latest is how many of the latest offences are kept. Zero: 200.
	Latest int
}

// Stats keeps what the dashboard shows about traffic, in bounded memory:
// per-second counters of requests and blocked requests by kind for the
// last hour, the latest offences, and per-minute top lists of probed
// paths and offending networks (IPv4 /24, IPv6 /48) for the last hour.
//
// The request path costs little: Count is one compare-and-swap on a
// counter of the current second (and, for a blocked request, an atomic
// add to its kind's total), with no lock and no allocation; Report
// is a Count and a non-blocking send to Run, which files the offence
// (when Run falls behind, offences are dropped from the lists and
// counted, never the counters). The readers take a mutex Run holds only
// to file one offence.
//
// A Stats is safe for concurrent use.
type Stats struct {
	now func() time.Time
	// sec[k][t%ringSeconds] holds the count of kind k in second t: the
	// second's low 32 bits in the high half, the count in the low half.
	sec [numKinds][ringSeconds]atomic.Uint64
	// total[k] counts blocked kind k since the start, for Prometheus
	// (BlockedTotals); total[Requests] stays 0.
	total [numKinds]atomic.Uint64
	_     [64]byte // keeps the totals off the cache line of what follows

	queue    chan Offence
	dropped  atomic.Uint64
	done     chan struct{}
	doneOnce sync.Once

	mu      sync.Mutex
	latest  []Offence // ring of the latest offences
	seq     uint64    // offences filed so far; latest[(seq-1)%len] is the newest
	minutes [60]minuteTop
}

// minuteTop is one minute's top lists, kept with the Misra-Gries
// algorithm: at most topPerMinute keys each, and any key seen more than
// 1/topPerMinute of the minute's offences is among them (its count a
// lower bound).
type minuteTop struct {
	minute int64 // Unix minute; the lists belong to it
	paths  map[string]int
	nets   map[netip.Prefix]int
}

// NewStats returns an empty Stats. Offences are filed only while Run
// runs.
func NewStats(cfg StatsConfig) *Stats {
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.Latest <= 0 {
		cfg.Latest = 200
	}
	return &Stats{
		now:    time.Now,
		queue:  make(chan Offence, cfg.Queue),
		done:   make(chan struct{}),
		latest: make([]Offence, cfg.Latest),
	}
}

// Count counts one request of kind k answered at t. A t more than an hour
// older than the latest counted second is ignored. It never blocks and
// does not allocate.
func (st *Stats) Count(t time.Time, k Kind) {
	if k >= numKinds {
		k = Other
	}
	if k != Requests {
		// Blocked kinds only: every request is counted by
		// gatehouse_http_requests_total already, and a clean request pays
		// for no second atomic.
		st.total[k].Add(1)
	}
	sec := t.Unix()
	slot := &st.sec[k][uint64(sec)%ringSeconds]
	stamp := uint64(uint32(sec)) << 32
	for {
		v := slot.Load()
		var n uint64
		switch {
		case v&^countMask == stamp:
			if v&countMask == countMask {
				return // saturated at 4e9 a second
			}
			n = v + 1
		case int32(uint32(v>>32)-uint32(sec)) > 0:
			return // the slot already holds a later second
		default:
			n = stamp | 1
		}
		if slot.CompareAndSwap(v, n) {
			return
		}
	}
}

// KindTotal is how many requests of one kind were counted since the
// start.
type KindTotal struct {
	Kind  Kind
	Count uint64
}

// BlockedTotals returns, for every blocked kind (probe, auth, hotlink,
// flood, banned, other), the requests counted since the start: the
// dashboard's own counts, as monotonic totals for Prometheus.
func (st *Stats) BlockedTotals() []KindTotal {
	out := make([]KindTotal, len(blockedKinds))
	for i, k := range blockedKinds {
		out[i] = KindTotal{Kind: k, Count: st.total[k].Load()}
	}
	return out
}

// Report counts o under its kind (classified from o.Rule, the
// middleware's Scope.Offence text, when o.Kind is Requests) and queues
// it for the offence lists without blocking.
func (st *Stats) Report(o Offence) {
	if o.Kind == Requests {
		o.Kind, o.Rule = kindOf(o.Rule)
	}
	st.Count(o.Time, o.Kind)
	select {
	case st.queue <- o:
	default:
		st.dropped.Add(1)
	}
}

// Observe records one answered request: the access log's hook calls it
// with the request, its scope, its status and when it ended. A request
// the middleware reported is an offence; a 403 that reached no host for
// a client on bans is a ban guard refusal. It must not retain r or s, and
// does not: an offence keeps copies of a few strings.
func (st *Stats) Observe(r *http.Request, s *middleware.Scope, status int, end time.Time, bans *rules.BanList) {
	st.Count(end, Requests)
	switch {
	case s.Offence != "":
		host := s.RequestHost
		if host == "" {
			host = r.Host
		}
		st.Report(Offence{Time: end, ClientIP: s.ClientIP, Host: host, Method: r.Method,
			Path: r.URL.Path, UserAgent: r.UserAgent(), Rule: s.Offence})
	case status == http.StatusForbidden && s.Host == "" && bans != nil:
		// The ban guard answers before the router names a host.
		if _, banned := bans.Lookup(s.ClientIP); banned {
			st.Count(end, Banned)
		}
	}
}

// Run files reported offences until ctx is done, then returns nil and
// closes Done. The caller owns the goroutine running it.
func (st *Stats) Run(ctx context.Context) error {
	defer st.doneOnce.Do(func() { close(st.done) })
	for {
		select {
		case <-ctx.Done():
			return nil
		case o := <-st.queue:
			st.file(o)
		}
	}
}

// Done is closed when Run returns: the gateway is shutting down, and
// live event streams end.
func (st *Stats) Done() <-chan struct{} { return st.done }

// Dropped counts offences left out of the lists because Run fell behind.
func (st *Stats) Dropped() uint64 { return st.dropped.Load() }

// file adds o to the latest offences and the top lists.
func (st *Stats) file(o Offence) {
	o.Host = clip(o.Host, maxHostLen)
	o.Method = clip(o.Method, maxMethodLen)
	o.Path = clip(o.Path, maxPathLen)
	o.UserAgent = clip(o.UserAgent, maxUALen)
	o.Rule = clip(o.Rule, maxRuleLen)

	st.mu.Lock()
	defer st.mu.Unlock()
	st.seq++
	o.Seq = st.seq
	st.latest[(st.seq-1)%uint64(len(st.latest))] = o

	minute := o.Time.Unix() / 60
	m := &st.minutes[uint64(minute)%uint64(len(st.minutes))]
	switch {
	case m.minute == minute:
	case m.minute > minute:
		return // over an hour late: its minute is gone
	default:
		*m = minuteTop{minute: minute, paths: map[string]int{}, nets: map[netip.Prefix]int{}}
	}
	if o.Kind == Probe {
		topAdd(m.paths, clip(o.Path, maxTopKeyLen))
	}
	if o.ClientIP.IsValid() {
		topAdd(m.nets, networkOf(o.ClientIP))
	}
}

// topAdd counts key in a Misra-Gries summary of topPerMinute keys.
func topAdd[K comparable](m map[K]int, key K) {
	if _, ok := m[key]; ok || len(m) < topPerMinute {
		m[key]++
		return
	}
	for k, n := range m {
		if n <= 1 {
			delete(m, k)
		} else {
			m[k] = n - 1
		}
	}
}

// networkOf is the network an offending address is grouped under: its
// /24 for IPv4, its /48 for IPv6.
func networkOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

// clip bounds s to n bytes, cut at a rune boundary, with invalid UTF-8
// replaced; a clipped string is a copy, so it does not keep the
// request's memory alive.
func clip(s string, n int) string {
	if len(s) <= n && utf8.ValidString(s) {
		return s
	}
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.Clone(strings.ToValidUTF8(s, "\uFFFD"))
}

// Series returns the counts of kind k for the n seconds ending with the
// second before now, oldest first; n is at most an hour.
func (st *Stats) Series(k Kind, now time.Time, n int) []uint64 {
	n = min(n, ringSeconds-1)
	out := make([]uint64, n)
	last := now.Unix() - 1
	for i := range n {
		sec := last - int64(n-1-i)
		v := st.sec[k][uint64(sec)%ringSeconds].Load()
		if v>>32 == uint64(uint32(sec)) {
			out[i] = v & countMask
		}
	}
	return out
}

// Minutes returns the counts of kind k for the 60 minutes ending with the
// current one (partly elapsed), oldest first.
func (st *Stats) Minutes(k Kind, now time.Time) []uint64 {
	out := make([]uint64, 60)
	cur := now.Unix() / 60
	for i := range out {
		m := cur - int64(59-i)
		for s := m * 60; s < (m+1)*60 && s <= now.Unix(); s++ {
			if s <= now.Unix()-ringSeconds {
				continue
			}
			v := st.sec[k][uint64(s)%ringSeconds].Load()
			if v>>32 == uint64(uint32(s)) {
				out[i] += v & countMask
			}
		}
	}
	return out
}

// Latest returns up to limit offences filed after the one numbered
// after, newest first, and the number of the newest filed offence.
func (st *Stats) Latest(after uint64, limit int) ([]Offence, uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := min(uint64(max(limit, 0)), st.seq-min(after, st.seq), uint64(len(st.latest)))
	out := make([]Offence, 0, n)
	for i := uint64(0); i < n; i++ {
		out = append(out, st.latest[(st.seq-1-i)%uint64(len(st.latest))])
	}
	return out, st.seq
}

// TopEntry is one line of a top list.
type TopEntry struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// Top returns the n most probed paths and the n networks with the most
// offences over the hour before now, most first. Counts are lower bounds
// when a minute saw more distinct keys than its lists keep.
func (st *Stats) Top(now time.Time, n int) (paths, nets []TopEntry) {
	cur := now.Unix() / 60
	pathSum := map[string]int{}
	netSum := map[netip.Prefix]int{}
	st.mu.Lock()
	for i := range st.minutes {
		m := &st.minutes[i]
		if m.minute <= cur-60 || m.minute > cur {
			continue
		}
		for k, c := range m.paths {
			pathSum[k] += c
		}
		for k, c := range m.nets {
			netSum[k] += c
		}
	}
	st.mu.Unlock()
	for k, c := range pathSum {
		paths = append(paths, TopEntry{Key: k, Count: c})
	}
	for k, c := range netSum {
		nets = append(nets, TopEntry{Key: k.String(), Count: c})
	}
	return topN(paths, n), topN(nets, n)
}

func topN(es []TopEntry, n int) []TopEntry {
	slices.SortFunc(es, func(a, b TopEntry) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return es[:min(n, len(es))]
}
