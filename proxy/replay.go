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
	"time"

	"gatehouse/proxy/config"
	"gatehouse/rules"
	"gatehouse/rules/match"
)

// maxLogLine bounds one access log line; longer lines are counted and
// skipped, so a replay streams in constant memory.
const maxLogLine = 64 << 10

// ReplayOptions configures ReplayLog.
type ReplayOptions struct {
	// Host selects whose hotlink rules apply to lines that do not name a
	// host (nginx combined). "": the first host with hotlink rules.
	Host string
	// Matches, when set, receives every line a rule matched, prefixed
	// with what matched it.
	Matches io.Writer
	// Progress, when set, is called with the bytes read so far, every
	// 256 KiB of input and at the end.
	Progress func(read int64)
}

// ReplayBan is a ban a replay would have made.
type ReplayBan struct {
	Prefix netip.Prefix
	Jail   string
	At     time.Time
	Until  time.Time
	Count  int // the client's n-th ban in this jail
}

// ReplayReport sums up a replay.
type ReplayReport struct {
	Lines     int            // lines read
	Unparsed  int            // lines in no known access log format (or too long)
	Unsafe    int            // request paths the gateway refuses with 400
	WhileBan  int            // lines from clients banned at the time: answered 403 from memory
	Probes    map[string]int // by rule
	Hotlinks  map[string]int // by host
	Bans      []ReplayBan
	Offences  map[string]uint64 // by jail
	FirstTime time.Time
	LastTime  time.Time
}

// replayer holds one replay's compiled rules and state.
type replayer struct {
	opts      ReplayOptions
	rep       *ReplayReport
	jails     *rules.DryRun
	probes    *match.ProbeMatcher
	probeJail string
	// malformedJail receives the paths the gateway refuses with 400, as
	// Hygiene reports them (probeJail of the config).
	malformedJail string
	hosts         *router // routes carry only their name
	hot           map[*route]replayHotlink
	defHot        *route
	// banned holds the bans active at the log's current time, to count
	// the lines the guard would have refused; swept as time passes.
	banned     map[netip.Prefix]time.Time
	nextSweep  time.Time
	ipv6Prefix int
}

type replayHotlink struct {
	m    *match.HotlinkMatcher
	jail string
}

// ReplayLog runs an access log through cfg's probe and hotlink rules and
// its jails — with the log's own timestamps as the clock and no side
// effects, like fail2ban-regex — and reports what would have been blocked
// and which clients banned when. It streams: memory is bounded by the
// jails' capacity, the number of rules and the bans active at one time.
func ReplayLog(ctx context.Context, cfg *config.File, r io.Reader, opts ReplayOptions) (*ReplayReport, error) {
	p, err := newReplayer(cfg, opts)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(r, maxLogLine)
	var read, lastProgress int64
	for {
		if p.rep.Lines%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return p.rep, err
			}
		}
		line, err := br.ReadSlice('\n')
		read += int64(len(line))
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of an overlong line
				line, err = br.ReadSlice('\n')
				read += int64(len(line))
			}
			p.rep.Lines++
			p.rep.Unparsed++
		} else if len(bytes.TrimSpace(line)) > 0 {
			p.line(line)
		}
		if opts.Progress != nil && read-lastProgress >= 256<<10 {
			lastProgress = read
			opts.Progress(read)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return p.rep, fmt.Errorf("read log: %w", err)
		}
	}
	if opts.Progress != nil {
		opts.Progress(read)
	}
	for name := range p.rep.Offences {
		p.rep.Offences[name] = p.jails.Offences(name)
	}
	return p.rep, nil
}

func newReplayer(cfg *config.File, opts ReplayOptions) (*replayer, error) {
	jails, err := rules.NewDryRun(jailsConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("jails: %w", err)
	}
	p := &replayer{
		opts: opts, jails: jails, hosts: newRouter(), hot: map[*route]replayHotlink{},
		banned: map[netip.Prefix]time.Time{}, ipv6Prefix: cfg.IPv6Prefix,
		rep: &ReplayReport{Probes: map[string]int{}, Hotlinks: map[string]int{}, Offences: map[string]uint64{}},
	}
	for name := range cfg.Jails {
		p.rep.Offences[name] = 0
	}
	p.malformedJail = probeJail(cfg)
	if pc := cfg.Probes; pc != nil {
		if p.probes, err = match.CompileProbes(match.ProbeConfig{Presets: pc.Presets, Paths: pc.Paths, Exclude: pc.Exclude}); err != nil {
			return nil, fmt.Errorf("probes: %w", err)
		}
		p.probeJail = pc.Jail
		p.rep.Offences[pc.Jail] = 0
	}
	for i, h := range cfg.Hosts {
		if h.Hotlink == nil {
			continue
		}
		m, err := match.CompileHotlink(match.HotlinkConfig{Paths: h.Hotlink.Paths, Allow: h.Hotlink.Allow})
		if err != nil {
			return nil, fmt.Errorf("hosts[%d].hotlink: %w", i, err)
		}
		rt := &route{name: h.Match[0].String()}
		p.hot[rt] = replayHotlink{m: m, jail: h.Hotlink.Jail}
		if h.Hotlink.Jail != "" {
			p.rep.Offences[h.Hotlink.Jail] = 0
		}
		for _, pat := range h.Match {
			if pat.Wildcard() {
				p.hosts.wildcard[pat.Name()] = rt
			} else {
				p.hosts.exact[pat.Name()] = rt
			}
		}
		if p.defHot == nil {
			p.defHot = rt
		}
	}
	if opts.Host != "" {
		if p.defHot = p.hosts.lookup(opts.Host); p.defHot == nil {
			return nil, fmt.Errorf("host %s: no host with hotlink rules matches it", opts.Host)
		}
	}
	return p, nil
}

// line replays one log line.
func (p *replayer) line(line []byte) {
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
	p.sweep(e.Time)
	if p.isBanned(e.IP, e.Time) {
		p.rep.WhileBan++
		return
	}
	raw := match.RequestPath(e.Target)
	c, err := match.Canonical(raw)
	if err != nil {
		// The gateway's Hygiene refuses it with 400, an offence for the
		// probes jail when no browser sends it.
		p.rep.Unsafe++
		p.matched("unsafe-path", line)
		if upe, ok := errors.AsType[*match.UnsafePathError](err); ok && upe.Hostile(raw) {
			p.offence(p.malformedJail, &e, "malformed request")
		}
		return
	}
	if p.probes != nil {
		if rule, ok := p.probes.MatchRequest(raw, c); ok {
			p.rep.Probes[rule]++
			p.matched("probe "+rule, line)
			p.offence(p.probeJail, &e, "probe")
			return
		}
	}
	rt := p.defHot
	if e.Host != "" {
		rt = p.hosts.lookup(e.Host)
	}
	if h, ok := p.hot[rt]; ok && h.m.ProtectedRequest(raw, c) && !h.m.Allowed(e.Referer, e.RefererSet) {
		p.rep.Hotlinks[rt.name]++
		p.matched("hotlink "+rt.name, line)
		p.offence(h.jail, &e, "hotlink")
	}
}

func (p *replayer) matched(what string, line []byte) {
	if p.opts.Matches != nil {
		fmt.Fprintf(p.opts.Matches, "%s\t%s", what, line)
		if len(line) > 0 && line[len(line)-1] != '\n' {
			fmt.Fprintln(p.opts.Matches)
		}
	}
}

func (p *replayer) offence(jail string, e *match.LogEntry, reason string) {
	if jail == "" {
		return
	}
	if b, ok := p.jails.ReportAt(jail, e.IP, reason, e.Time); ok {
		p.rep.Bans = append(p.rep.Bans, ReplayBan{Prefix: b.Prefix, Jail: b.Jail, At: e.Time, Until: b.Until, Count: b.Count})
		p.banned[b.Prefix] = b.Until
	}
}

// isBanned looks the client up by the prefixes jails ban: an IPv4
// address, or an IPv6 address's ipv6_prefix (or /128 when the jail
// narrowed a ban around an allowed address).
func (p *replayer) isBanned(ip netip.Addr, at time.Time) bool {
	if len(p.banned) == 0 {
		return false
	}
	keys := [2]netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}
	if ip.Is6() {
		keys[1], _ = ip.Prefix(p.ipv6Prefix)
	}
	for _, k := range keys {
		if until, ok := p.banned[k]; ok && at.Before(until) {
			return true
		}
	}
	return false
}

// sweep drops bans that ended, at most once a minute of log time.
func (p *replayer) sweep(now time.Time) {
	if now.Before(p.nextSweep) {
		return
	}
	p.nextSweep = now.Add(time.Minute)
	for prefix, until := range p.banned {
		if !now.Before(until) {
			delete(p.banned, prefix)
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
