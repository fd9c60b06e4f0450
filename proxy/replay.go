package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"gatehouse/middleware"
	"gatehouse/proxy/config"
	"gatehouse/rules"
	"gatehouse/rules/match"
)

// maxLogLine bounds one access log line; longer lines are counted and
// skipped, so a replay streams in constant memory.
const maxLogLine = 64 << 10

// ReplayOptions configures a Replay.
type ReplayOptions struct {
	// Host names the host whose rules apply to lines that do not name
	// one (nginx combined). "": the first host with rules of its own
	// (probes, routes, hotlink, basic auth, access, limit or jail).
	Host string
	// Matches, when set, receives every line a rule matched, prefixed
	// with what matched it.
	Matches io.Writer
	// Progress, when set, is called with the bytes read so far, every
	// 256 KiB of input and at the end of each log.
	Progress func(read int64)
	// Top, when > 0, keeps the clients with the most refused requests
	// for ReplayReport.TopClients, at most this many of them.
	Top int
}

// ReplayBan is a ban a replay would have made.
type ReplayBan struct {
	Prefix netip.Prefix
	Jail   string
	At     time.Time
	Until  time.Time
	Count  int // the client's n-th ban in this jail (a network's, if Escalated)
	// Escalated marks a network's ban that the jail's escalate made
	// after banning enough of its clients; those stay listed before it.
	Escalated bool
}

// ReplayReport sums up a replay. Rules are named by their text as the
// config writes them: a probe rule by its preset and pattern
// ("wordpress:**/wp-login.php") or its probes.paths pattern
// ("paths:/old-admin/"), a hotlink rule by its host and pattern.
type ReplayReport struct {
	Lines       int // lines read
	Unparsed    int // lines in no known access log format (or too long)
	Unsafe      int // request paths the gateway refuses with 400
	WhileBan    int // lines from clients banned at the time: answered 403 from memory
	UnknownHost int // lines naming a host the config does not serve: 421
	NoHost      int // lines that name no host (nginx combined)
	// DefaultHost is the host whose rules applied to lines that name
	// none; "" when no host has rules of its own.
	DefaultHost string
	Probes      map[string]int // by rule
	Hotlinks    map[string]int // by host and pattern
	// Auth counts the 401 answers on paths under basic auth, offences
	// for the auth jail as the gateway counts failed logins, by host or
	// route.
	Auth map[string]int
	// Flood counts the requests over a flood jail's rate (429), by jail.
	Flood map[string]int
	// Limits counts the requests a named rate limit (limits.rates)
	// refused, by limit; Delayed those let through late (over the rate,
	// within the burst, beyond delay), by the limits a host or route
	// names ("login", "login+api").
	Limits  map[string]int
	Delayed map[string]int
	// Access counts the requests an access list denied (403), by host
	// or route; Responds those a route answered itself.
	Access   map[string]int
	Responds map[string]int
	// Ambiguous counts the paths whose readings choose different routes
	// of their host: refused with 400.
	Ambiguous int
	Bans      []ReplayBan
	Offences  map[string]uint64 // by jail
	FirstTime time.Time
	LastTime  time.Time
	// TopClients are the clients with the most refused requests, most
	// first, when ReplayOptions.Top asked for them.
	TopClients []ReplayClient
	// TopOverflow is true when more clients were refused than the replay
	// tracks (limits.tracked_clients): the counts of TopClients are then
	// upper bounds (ReplayClient.Over says by how much at most).
	TopOverflow bool
}

// ReplayClient is one client of ReplayReport.TopClients, keyed as jails
// key clients (an IPv4 address, an IPv6 client's ipv6_prefix).
type ReplayClient struct {
	Prefix netip.Prefix
	// Refused counts the requests the gateway would have refused: probes,
	// unsafe paths, hotlinks, failed logins, flood, and every request
	// while banned.
	Refused int
	// Offences counts the offences reported to jails.
	Offences int
	// Over is how much Refused may overstate: the count of the client it
	// replaced in a full table. 0: exact.
	Over int
}

// ReplayRule is one rule and how many requests it refused.
type ReplayRule struct {
	Kind  string // probe, hotlink, auth, flood, limit, access, respond
	Name  string
	Count int
}

// Rules returns every rule that refused a request, the most hits first
// (ties by kind and name).
func (r *ReplayReport) Rules() []ReplayRule {
	var out []ReplayRule
	for _, k := range []struct {
		kind   string
		counts map[string]int
	}{{"probe", r.Probes}, {"hotlink", r.Hotlinks}, {"auth", r.Auth}, {"flood", r.Flood},
		{"limit", r.Limits}, {"access", r.Access}, {"respond", r.Responds}} {
		for name, n := range k.counts {
			out = append(out, ReplayRule{Kind: k.kind, Name: name, Count: n})
		}
	}
	slices.SortFunc(out, func(a, b ReplayRule) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Replay runs access logs through a config's rules and jails — with the
// logs' own timestamps as the clock and no side effects, like
// fail2ban-regex — and reports what would have been blocked and which
// clients banned when. It streams: memory is bounded by the jails'
// capacity, the number of rules and the bans active at one time. A
// Replay is not safe for concurrent use; a replay is sequential by
// nature.
type Replay struct {
	opts   ReplayOptions
	rep    *ReplayReport
	jails  *rules.DryRun
	probes *replayProbes // nil: none
	// malformedJail receives the paths the gateway refuses with 400, as
	// Hygiene reports them (probeJail of the config).
	malformedJail string
	hosts         *router // routes carry only their name
	site          map[*route]*replayHost
	defHost       *route
	flood         []*replayFlood // the outermost first, as the chain runs them
	limits        map[string]*replayLimit
	allow         []netip.Prefix
	top           *clientTop // nil unless opts.Top > 0
	replayBans
	bytesRead int64 // for Progress
}

// replayHost is one host's own rules.
type replayHost struct {
	name    string
	probes  *replayProbes // nil: the gateway's
	hotlink *replayHotlink
	self    replayPolicy
	// routes chooses among route (hosts[].routes); nil: none.
	routes *match.RouteTable
	route  []replayPolicy
}

// hasRules reports whether the host has rules of its own, for lines
// that name no host.
func (h *replayHost) hasRules() bool {
	s := &h.self
	return h.probes != nil || h.hotlink != nil || h.routes != nil ||
		s.auth != nil || s.limits != nil || len(s.access) > 0 || s.jail != ""
}

type replayHotlink struct {
	m    *match.HotlinkMatcher
	jail string
	// patterns are the protected paths one by one, to name the one a
	// refused request fell under.
	patterns []*match.HotlinkMatcher
	labels   []string // host and pattern, by patterns index
}

// replayFlood is one flood jail: the gateway's own token buckets
// (middleware.RateBuckets), taken from at the log's times.
type replayFlood struct {
	jail    string
	buckets *middleware.RateBuckets
}

// ReplayLog replays one access log: NewReplay, Read and Report.
func ReplayLog(ctx context.Context, cfg *config.File, r io.Reader, opts ReplayOptions) (*ReplayReport, error) {
	p, err := NewReplay(cfg, opts)
	if err != nil {
		return nil, err
	}
	if _, _, err := p.Read(ctx, r); err != nil {
		return p.Report(), err
	}
	return p.Report(), nil
}

// NewReplay compiles cfg's rules for a replay.
func NewReplay(cfg *config.File, opts ReplayOptions) (*Replay, error) {
	// A replay reads no trusted_proxies list: only their prefixes are
	// kept from bans.
	jails, err := rules.NewDryRun(jailsConfig(cfg, nil))
	if err != nil {
		return nil, fmt.Errorf("jails: %w", err)
	}
	p := &Replay{
		opts: opts, jails: jails, hosts: newRouter(), site: map[*route]*replayHost{},
		replayBans: newReplayBans(cfg.IPv6Prefix), allow: prefixes(cfg.Allow),
		rep: &ReplayReport{Probes: map[string]int{}, Hotlinks: map[string]int{}, Auth: map[string]int{},
			Flood: map[string]int{}, Limits: map[string]int{}, Delayed: map[string]int{}, Access: map[string]int{},
			Responds: map[string]int{}, Offences: map[string]uint64{}},
		limits: map[string]*replayLimit{},
	}
	for name := range cfg.Jails {
		p.rep.Offences[name] = 0
	}
	p.malformedJail = probeJail(cfg)
	if pc := cfg.Probes; pc != nil {
		if p.probes, err = newReplayProbes(pc); err != nil {
			return nil, fmt.Errorf("probes: %w", err)
		}
		p.countJail(pc.Jail)
	}
	if err := p.addFlood(cfg); err != nil {
		return nil, err
	}
	var firstWithRules *route
	for i, h := range cfg.Hosts {
		site, err := p.newHost(cfg, i)
		if err != nil {
			return nil, err
		}
		rt := &route{name: site.name}
		p.site[rt] = site
		for _, pat := range h.Match {
			if pat.Wildcard() {
				p.hosts.wildcard[pat.Name()] = rt
			} else {
				p.hosts.exact[pat.Name()] = rt
			}
		}
		if firstWithRules == nil && site.hasRules() {
			firstWithRules = rt
		}
	}
	p.defHost = firstWithRules
	if opts.Host != "" {
		if p.defHost = p.hosts.lookup(opts.Host); p.defHost == nil {
			return nil, fmt.Errorf("host %s: no host of the config matches it", opts.Host)
		}
	}
	if p.defHost != nil {
		p.rep.DefaultHost = p.defHost.name
	}
	if opts.Top > 0 {
		p.top = newClientTop(cfg.Limits.TrackedClients)
	}
	return p, nil
}

// addFlood sets up the flood jails, in the order the chain runs them:
// the last jail by name is the outermost (buildRateLimit).
func (p *Replay) addFlood(cfg *config.File) error {
	names := make([]string, 0, len(cfg.Jails))
	for name, j := range cfg.Jails {
		if j.Rate > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	slices.Reverse(names)
	for _, name := range names {
		j := cfg.Jails[name]
		b, err := middleware.NewRateBuckets(middleware.RateLimitConfig{Rate: j.Rate, Burst: j.Burst, Jail: name,
			IPv6Prefix: cfg.IPv6Prefix, Capacity: cfg.Limits.TrackedClients}, nil)
		if err != nil {
			return fmt.Errorf("jails.%s: %w", name, err)
		}
		p.flood = append(p.flood, &replayFlood{jail: name, buckets: b})
	}
	return nil
}

// newHost compiles the rules of cfg.Hosts[i].
func (p *Replay) newHost(cfg *config.File, i int) (*replayHost, error) {
	h := cfg.Hosts[i]
	site := &replayHost{name: h.Match[0].String()}
	if hl := h.Hotlink; hl != nil {
		m, err := match.CompileHotlink(match.HotlinkConfig{Paths: hl.Paths, Allow: hl.Allow})
		if err != nil {
			return nil, fmt.Errorf("hosts[%d].hotlink: %w", i, err)
		}
		rh := &replayHotlink{m: m, jail: hl.Jail}
		for j, pat := range hl.Paths {
			one, err := match.CompileHotlink(match.HotlinkConfig{Paths: []string{pat}, Allow: []string{"none"}})
			if err != nil {
				return nil, fmt.Errorf("hosts[%d].hotlink.paths[%d]: %w", i, j, err)
			}
			rh.patterns = append(rh.patterns, one)
			rh.labels = append(rh.labels, site.name+" "+pat)
		}
		site.hotlink = rh
		if hl.Jail != "" {
			p.rep.Offences[hl.Jail] = 0
		}
	}
	if h.Probes != nil {
		var err error
		if site.probes, err = newReplayProbes(h.Probes); err != nil {
			return nil, fmt.Errorf("hosts[%d].probes: %w", i, err)
		}
		p.countJail(site.probes.jail)
	}
	if err := p.hostPolicy(cfg, i, site); err != nil {
		return nil, err
	}
	return site, nil
}

// Read replays one access log, after those read before: bans and jail
// counts carry over, so logs should be read in time order. It returns
// how many lines the log had and how many of them were in no known
// format.
func (p *Replay) Read(ctx context.Context, r io.Reader) (lines, unparsed int, err error) {
	lines0, unparsed0 := p.rep.Lines, p.rep.Unparsed
	err = p.read(ctx, r)
	return p.rep.Lines - lines0, p.rep.Unparsed - unparsed0, err
}

func (p *Replay) read(ctx context.Context, r io.Reader) error {
	return readLog(ctx, r, &p.bytesRead, p.opts.Progress, func(line []byte) {
		if len(bytes.TrimSpace(line)) > 0 {
			p.line(line)
		}
	}, func() {
		p.rep.Lines++
		p.rep.Unparsed++
	})
}

// readLog calls line with each line of r, its line end included, and
// tooLong for each line longer than maxLogLine, which it skips. It adds
// the bytes it reads to *read and reports the total to progress (when
// not nil) every 256 KiB and at the end. It stops when ctx is done.
func readLog(ctx context.Context, r io.Reader, read *int64, progress func(read int64), line func([]byte), tooLong func()) error {
	br := bufio.NewReaderSize(r, maxLogLine)
	lastProgress := *read
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		l, err := br.ReadSlice('\n')
		*read += int64(len(l))
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of an overlong line
				l, err = br.ReadSlice('\n')
				*read += int64(len(l))
			}
			tooLong()
		} else {
			line(l)
		}
		if progress != nil && *read-lastProgress >= 256<<10 {
			lastProgress = *read
			progress(*read)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
	}
	if progress != nil {
		progress(*read)
	}
	return nil
}

// Report returns the report of what was read so far.
func (p *Replay) Report() *ReplayReport {
	for name := range p.rep.Offences {
		p.rep.Offences[name] = p.jails.Offences(name)
	}
	if p.top != nil {
		p.rep.TopClients, p.rep.TopOverflow = p.top.list(p.opts.Top)
	}
	return p.rep
}

// line replays one log line, through the stages of the chain in its
// order: ban guard, flood jails, hygiene, probes (the host's or the
// gateway's), the host router, the route choice, then the route's
// respond, the host's hotlink rules, and the route's (or the host's)
// limits, access list and basic auth.
func (p *Replay) line(line []byte) {
	p.rep.Lines++
	e, err := match.ParseLogLine(line)
	if err != nil {
		p.rep.Unparsed++
		return
	}
	if p.rep.FirstTime.IsZero() || e.Time.Before(p.rep.FirstTime) {
		p.rep.FirstTime = e.Time
	}
	if e.Time.After(p.rep.LastTime) {
		p.rep.LastTime = e.Time
	}
	if e.Host == "" {
		p.rep.NoHost++
	}
	p.sweep(e.Time)
	if p.isBanned(e.IP, e.Time) {
		p.rep.WhileBan++
		p.refused(&e)
		return
	}
	if f := p.overFlood(&e); f != nil {
		p.rep.Flood[f.jail]++
		p.matched("flood "+f.jail, line)
		p.refused(&e)
		p.offence(f.jail, &e, "flood")
		return
	}
	raw := match.RequestPath(e.Target)
	c, err := match.Canonical(raw)
	if err != nil {
		// The gateway's Hygiene refuses it with 400, an offence for the
		// probes jail when no browser sends it.
		p.rep.Unsafe++
		p.matched("unsafe-path", line)
		p.refused(&e)
		if upe, ok := errors.AsType[*match.UnsafePathError](err); ok && upe.Hostile(raw) {
			p.offence(p.malformedJail, &e, "malformed request")
		}
		return
	}
	rt := p.defHost
	if e.Host != "" {
		rt = p.hosts.lookup(e.Host)
	}
	site := p.site[rt] // nil for an unknown host
	probes := p.probes
	if site != nil && site.probes != nil {
		probes = site.probes
	}
	if probes != nil {
		if rule, ok := probes.match(raw, c); ok {
			p.rep.Probes[rule]++
			p.matched("probe "+rule, line)
			p.refused(&e)
			p.offence(probes.jail, &e, "probe")
			return
		}
	}
	if site == nil {
		if e.Host != "" {
			p.rep.UnknownHost++
			p.refused(&e)
		}
		return
	}
	pol := &site.self
	if site.routes != nil {
		i, ok := site.routes.Select(raw, c)
		if !ok {
			// The path's readings choose different routes: 400.
			p.rep.Ambiguous++
			p.matched("ambiguous-route "+site.name, line)
			p.refused(&e)
			return
		}
		if i >= 0 {
			pol = &site.route[i]
		}
	}
	if p.respond(pol, &e, line) {
		return
	}
	if h := site.hotlink; h != nil && h.m.ProtectedRequest(raw, c) && !h.m.Allowed(e.Referer, e.RefererSet) {
		label := site.name
		for i, one := range h.patterns {
			if one.ProtectedRequest(raw, c) {
				label = h.labels[i]
				break
			}
		}
		p.rep.Hotlinks[label]++
		p.matched("hotlink "+label, line)
		p.refused(&e)
		p.offence(h.jail, &e, "hotlink")
		return
	}
	p.policyAfter(pol, &e, raw, c, line)
}

// overFlood takes a token from each flood jail's bucket for the client,
// outermost first, and returns the jail that refused the request, or nil.
func (p *Replay) overFlood(e *match.LogEntry) *replayFlood {
	if len(p.flood) == 0 || p.allowed(e.IP) {
		return nil
	}
	for _, f := range p.flood {
		if !f.buckets.Take(e.IP, e.Time) {
			return f
		}
	}
	return nil
}

func (p *Replay) allowed(ip netip.Addr) bool {
	for _, a := range p.allow {
		if a.Contains(ip) {
			return true
		}
	}
	return false
}

func (p *Replay) matched(what string, line []byte) {
	if p.opts.Matches != nil {
		fmt.Fprintf(p.opts.Matches, "%s\t%s", what, line)
		if len(line) > 0 && line[len(line)-1] != '\n' {
			fmt.Fprintln(p.opts.Matches)
		}
	}
}

// refused counts a refused request against its client for TopClients.
func (p *Replay) refused(e *match.LogEntry) {
	if p.top != nil {
		p.top.add(p.clientKey(e.IP), 1, 0)
	}
}

func (p *Replay) offence(jail string, e *match.LogEntry, reason string) {
	if jail == "" {
		return
	}
	if p.top != nil {
		p.top.add(p.clientKey(e.IP), 0, 1)
	}
	p.rep.Bans = p.bans(p.jails, p.rep.Bans, jail, e.IP, reason, e.Time)
}

// clientKey is the prefix jails key ip by.
func (p *Replay) clientKey(ip netip.Addr) netip.Prefix {
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	k, _ := ip.Prefix(p.ipv6Prefix)
	return k
}

// replayBans holds the bans a replay made that are active at the log's
// current time, to count the lines the guard would have refused; swept
// as time passes.
type replayBans struct {
	banned     map[netip.Prefix]time.Time
	nextSweep  time.Time
	ipv6Prefix int
	netBits    []int // lengths of the escalated networks banned, in the 16-byte form
}

// bans reports an offence by ip at at to jail and appends to bans the
// bans that follow: the network's, when the offence makes the jail
// escalate, then the client's.
func (b *replayBans) bans(jails *rules.DryRun, bans []ReplayBan, jail string, ip netip.Addr, reason string, at time.Time) []ReplayBan {
	cb, ok, nb, escalated := jails.ReportAt(jail, ip, reason, at)
	if escalated {
		bans = b.network(bans, nb, at)
	}
	if ok {
		bans = b.ban(jails, bans, cb, at)
	}
	return bans
}

// ban records b, a ban the jails made at at, in bans and returns them,
// followed by the network's ban when b makes the jail escalate. A client
// inside a network banned at the time gets no ban of its own, as the
// live ban list refuses it.
func (b *replayBans) ban(jails *rules.DryRun, bans []ReplayBan, ban rules.Ban, at time.Time) []ReplayBan {
	if b.inNetwork(ban.Prefix.Addr(), at) {
		return bans
	}
	bans = append(bans, ReplayBan{Prefix: ban.Prefix, Jail: ban.Jail, At: at, Until: ban.Until, Count: ban.Count})
	b.banned[ban.Prefix] = ban.Until
	if nb, ok := jails.Escalate(ban); ok {
		bans = b.network(bans, nb, at)
	}
	return bans
}

// network records nb, an escalated ban the jails made at at, in bans
// and returns them.
func (b *replayBans) network(bans []ReplayBan, nb rules.Ban, at time.Time) []ReplayBan {
	bans = append(bans, ReplayBan{Prefix: nb.Prefix, Jail: nb.Jail, At: at, Until: nb.Until, Count: nb.Count, Escalated: true})
	b.banned[nb.Prefix] = nb.Until
	bits := nb.Prefix.Bits()
	if nb.Prefix.Addr().Is4() {
		bits += 96
	}
	if !slices.Contains(b.netBits, bits) {
		b.netBits = append(b.netBits, bits)
	}
	return bans
}

// inNetwork reports whether ip is inside an escalated network banned at at.
func (b *replayBans) inNetwork(ip netip.Addr, at time.Time) bool {
	for _, bits := range b.netBits {
		if ip.Is4() != (bits >= 96) {
			continue
		}
		if ip.Is4() {
			bits -= 96
		}
		k, _ := ip.Prefix(bits)
		if until, ok := b.banned[k]; ok && at.Before(until) {
			return true
		}
	}
	return false
}

func newReplayBans(ipv6Prefix int) replayBans {
	return replayBans{banned: map[netip.Prefix]time.Time{}, ipv6Prefix: ipv6Prefix}
}

// isBanned looks the client up by the prefixes jails ban: an IPv4
// address, or an IPv6 address's ipv6_prefix (or /128 when the jail
// narrowed a ban around an allowed address).
func (b *replayBans) isBanned(ip netip.Addr, at time.Time) bool {
	if len(b.banned) == 0 {
		return false
	}
	keys := [2]netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}
	if ip.Is6() {
		keys[1], _ = ip.Prefix(b.ipv6Prefix)
	}
	for _, k := range keys {
		if until, ok := b.banned[k]; ok && at.Before(until) {
			return true
		}
	}
	return b.inNetwork(ip, at)
}

// sweep drops bans that ended, at most once a minute of log time.
func (b *replayBans) sweep(now time.Time) {
	if now.Before(b.nextSweep) {
		return
	}
	b.nextSweep = now.Add(time.Minute)
	for prefix, until := range b.banned {
		if !now.Before(until) {
			delete(b.banned, prefix)
		}
	}
}

// SortedOffences returns the jail names of r.Offences in order.
func (r *ReplayReport) SortedOffences() []string {
	names := make([]string, 0, len(r.Offences))
	for name := range r.Offences {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
