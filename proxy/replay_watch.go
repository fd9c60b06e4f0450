package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"

	"gatehouse/proxy/config"
	"gatehouse/rules"
	"gatehouse/rules/watch/filter"
)

// WatchReplayOptions configures a WatchReplay.
type WatchReplayOptions struct {
	// Matches, when set, receives every line a failregex or an
	// ignoreregex matched, prefixed with the verdict and the regex.
	Matches io.Writer
	// MaxMissed bounds WatchReplayReport.Missed, the lines kept that no
	// failregex matched. Zero keeps none; the count is always complete.
	MaxMissed int
	// Progress, when set, is called with the bytes read so far, every
	// 256 KiB of input and at the end of each log.
	Progress func(read int64)
}

// WatchReplayReport sums up a replay of a watch source's logs.
type WatchReplayReport struct {
	// Source is the watch source's name; "" for a filter replayed alone.
	Source string
	// Filter names the filter: a built-in one's name and mode, or
	// "custom".
	Filter string
	// Jail is the jail the source reports to, JailConfig its settings
	// as the config writes them; "" and zero for a filter alone.
	Jail       string
	JailConfig config.Jail
	Lines      int // lines judged
	Comments   int // lines starting with '#', skipped as fail2ban-regex does
	TooLong    int // lines over 64 KiB, skipped
	NoTime     int // lines without a timestamp the filter reads
	// FailRegex and IgnoreRegex are the filter's regexes with the lines
	// each decided, in the filter's order.
	FailRegex   []WatchRegex
	IgnoreRegex []WatchRegex
	Missed      int // no failregex matched
	Ignored     int // a failregex matched, an ignoreregex excused it
	// Failed counts the lines that blamed an address (or a host name
	// resolved, with resolve: true) within the jail's findtime: the
	// offences reported. For a filter alone, every line a failregex
	// blamed.
	Failed int
	// Old counts the blamed lines older than the jail's findtime, taken
	// against the newest line read before them; Unresolved those that
	// blamed a host name (not resolved, or resolving to nothing).
	Old        int
	Unresolved int
	// Local counts the blamed lines whose addresses are no client
	// serve bans (loopback, link-local, multicast, unspecified,
	// broadcast).
	Local int
	// WhileBanned counts the offences by clients banned at the time,
	// which the kernel sets would have kept from reaching the service.
	WhileBanned int
	Offences    uint64 // what the jail received
	Bans        []ReplayBan
	// MissedLines are the first MaxMissed lines no failregex matched.
	MissedLines []string
	FirstTime   time.Time
	LastTime    time.Time
}

// WatchRegex is one regex of a filter and how many lines it decided.
type WatchRegex struct {
	Regex string
	Lines int
}

// WatchReplay runs log lines through one watch source's filter and jail
// as serve judges them (proxy/watch.go), with the log's own times as the
// clock and no side effects, like fail2ban-regex: "now" is the newest
// line time read so far, so the findtime check ("old") and the bans are
// those reading the log live would have made, whatever its age. A
// WatchReplay is not safe for concurrent use.
type WatchReplay struct {
	opts     WatchReplayOptions
	rep      *WatchReplayReport
	stream   *filter.Stream
	dates    *filter.Filter // finds the time of lines no failregex can match
	jails    *rules.DryRun  // nil for a filter alone
	jail     string
	reason   string
	findTime time.Duration
	resolve  bool
	// resolver looks up host names for resolve: true, as serve does.
	resolver *hostResolver
	// now is the replay's clock: the newest line time read so far.
	now time.Time
	replayBans
	bytesRead int64
}

// NewWatchReplay compiles the filter of cfg's watch source name and
// the jails for a replay.
func NewWatchReplay(cfg *config.File, name string, opts WatchReplayOptions) (*WatchReplay, error) {
	var wc *config.Watch
	names := make([]string, 0, len(cfg.Watch))
	for i := range cfg.Watch {
		names = append(names, cfg.Watch[i].Name)
		if cfg.Watch[i].Name == name {
			wc = &cfg.Watch[i]
		}
	}
	if wc == nil {
		if len(names) == 0 {
			return nil, fmt.Errorf("watch %s: the config has no watch sources", name)
		}
		return nil, fmt.Errorf("watch %s: no such watch source (the config has %v)", name, names)
	}
	fc, err := config.WatchFilterConfig(*wc)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", name, err)
	}
	desc := "custom"
	if wc.Filter != nil && wc.Filter.Builtin != "" {
		mode := wc.Mode
		if mode == "" {
			mode = "default mode"
		}
		desc = wc.Filter.Builtin + " (" + mode + ")"
	}
	p, err := newWatchReplay(fc, desc, opts)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", name, err)
	}
	jail := config.WatchJail(*wc)
	jc, ok := cfg.Jails[jail]
	if !ok {
		return nil, fmt.Errorf("watch %s: jail %q is not defined under jails", name, jail)
	}
	if p.jails, err = rules.NewDryRun(jailsConfig(cfg, nil)); err != nil {
		return nil, fmt.Errorf("jails: %w", err)
	}
	p.jail, p.reason, p.findTime = jail, "watch "+wc.Name, jc.FindTime.D()
	p.resolve, p.ipv6Prefix = wc.Resolve, cfg.IPv6Prefix
	p.rep.Source, p.rep.Jail, p.rep.JailConfig = wc.Name, jail, jc
	return p, nil
}

// NewFilterReplay replays lines through a filter alone, without a jail:
// the report counts what the filter matched, and no bans.
func NewFilterReplay(fc filter.Config, desc string, opts WatchReplayOptions) (*WatchReplay, error) {
	return newWatchReplay(fc, desc, opts)
}

func newWatchReplay(fc filter.Config, desc string, opts WatchReplayOptions) (*WatchReplay, error) {
	f, err := filter.Compile(fc)
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	// A filter looks for the time only in lines a failregex could match
	// (its literal pre-check comes first); this one, with the same date
	// settings, finds it in every line.
	dates, err := filter.Compile(filter.Config{FailRegex: []string{`^(?:<HOST>)?`}, DatePattern: fc.DatePattern,
		Location: fc.Location, Now: fc.Now})
	if err != nil {
		return nil, fmt.Errorf("filter: datepattern: %w", err)
	}
	rep := &WatchReplayReport{Filter: desc}
	for _, re := range fc.FailRegex {
		rep.FailRegex = append(rep.FailRegex, WatchRegex{Regex: re})
	}
	for _, re := range fc.IgnoreRegex {
		rep.IgnoreRegex = append(rep.IgnoreRegex, WatchRegex{Regex: re})
	}
	return &WatchReplay{opts: opts, rep: rep, stream: f.NewStream(), dates: dates,
		resolver: newHostResolver(), replayBans: newReplayBans(0)}, nil
}

// Input prepares r, named name, for Read: decompressed when it is gzip
// (by its magic bytes), with Start the time of its first line with one
// (as the filter reads times) within the first 64 KiB, for
// SortReplayInputs.
func (p *WatchReplay) Input(name string, r io.Reader) (*ReplayInput, error) {
	in, err := NewReplayInput(name, r)
	if err != nil {
		return nil, err
	}
	in.Start = time.Time{}
	// NewReplayInput has the head buffered already.
	head, _ := in.br.Peek(maxLogLine)
	for len(head) > 0 {
		var line []byte
		line, head, _ = bytes.Cut(head, []byte("\n"))
		if t := p.lineTime(line); !t.IsZero() {
			in.Start = t
			break
		}
	}
	return in, nil
}

// lineTime is the time of line as the replay reads it; zero if none.
func (p *WatchReplay) lineTime(line []byte) time.Time {
	line = bytes.TrimRight(line, "\r\n")
	if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
		return time.Time{}
	}
	if l, ok := parseJournalJSON(line); ok {
		return l.Time
	}
	return p.dates.Match(string(line)).Time
}

// Read replays one log after those read before: the jail's counts, the
// bans and the clock carry over, so logs should be read oldest first.
// It returns how many lines it judged and how many of them had no
// timestamp.
func (p *WatchReplay) Read(ctx context.Context, in *ReplayInput) (lines, noTime int, err error) {
	lines0, noTime0 := p.rep.Lines, p.rep.NoTime
	if p.now.IsZero() {
		// Lines before the log's first timestamp are judged at it.
		p.now = in.Start
	}
	err = p.read(ctx, in)
	return p.rep.Lines - lines0, p.rep.NoTime - noTime0, err
}

func (p *WatchReplay) read(ctx context.Context, r io.Reader) error {
	return readLog(ctx, r, &p.bytesRead, p.opts.Progress, func(line []byte) {
		if line = bytes.TrimRight(line, "\r\n"); len(bytes.TrimSpace(line)) == 0 {
			// blank: not a line
		} else if line[0] == '#' {
			p.rep.Comments++
		} else {
			p.line(line)
		}
	}, func() { p.rep.TooLong++ })
}

// line judges one line as (*watcher).judge does, with p.now for the
// clock.
func (p *WatchReplay) line(raw []byte) {
	p.rep.Lines++
	var res filter.Result
	text := string(raw)
	if l, ok := parseJournalJSON(raw); ok {
		// A journal entry, as journalctl --output=json writes it: what a
		// journal source hands the filter.
		res = p.stream.MatchAt(l.SyslogText(), l.Time)
	} else {
		res = p.stream.Match(text)
	}
	t := res.Time
	if t.IsZero() {
		t = p.dates.Match(text).Time
	}
	if t.IsZero() {
		p.rep.NoTime++
	} else {
		if t.After(p.now) {
			p.now = t
		}
		if p.rep.FirstTime.IsZero() || t.Before(p.rep.FirstTime) {
			p.rep.FirstTime = t
		}
		if t.After(p.rep.LastTime) {
			p.rep.LastTime = t
		}
	}
	switch res.Kind {
	case filter.NoMatch:
		p.rep.Missed++
		if len(p.rep.MissedLines) < p.opts.MaxMissed {
			p.rep.MissedLines = append(p.rep.MissedLines, text)
		}
		return
	case filter.Ignored:
		p.rep.Ignored++
		p.rep.IgnoreRegex[res.Regex].Lines++
		p.matched("ignored", "ignoreregex", res, raw)
		return
	}
	p.rep.FailRegex[res.Regex].Lines++
	if p.jails == nil {
		p.rep.Failed++
		p.matched("fail", "failregex", res, raw)
		return
	}
	now := p.now
	if now.IsZero() {
		now = time.Now() // no line had a time yet: as serve reads it now
	}
	at := res.Time
	if at.IsZero() || at.After(now) {
		at = now
	}
	if now.Sub(at) > p.findTime {
		p.rep.Old++
		p.matched("old", "failregex", res, raw)
		return
	}
	ips := []netip.Addr{res.Host}
	if !res.Host.IsValid() {
		if ips = p.lookup(res.HostName); len(ips) == 0 {
			p.rep.Unresolved++
			p.matched("unresolved", "failregex", res, raw)
			return
		}
	}
	if ips = slices.DeleteFunc(ips, unbannable); len(ips) == 0 {
		p.rep.Local++
		p.matched("local", "failregex", res, raw)
		return
	}
	p.rep.Failed++
	p.matched("fail", "failregex", res, raw)
	p.sweep(at)
	for _, ip := range ips {
		if p.isBanned(ip, at) {
			p.rep.WhileBanned++
		}
		p.rep.Bans = p.bans(p.jails, p.rep.Bans, p.jail, ip, p.reason, at)
	}
}

// matched writes a line a regex decided to Matches: the verdict, the
// regex and, for a failregex, what the line blames.
func (p *WatchReplay) matched(verdict, list string, res filter.Result, line []byte) {
	if p.opts.Matches == nil {
		return
	}
	blamed := res.HostName
	if res.Host.IsValid() {
		blamed = res.Host.String()
	}
	if blamed != "" {
		blamed = " " + blamed
	}
	fmt.Fprintf(p.opts.Matches, "%s %s[%d]%s\t%s\n", verdict, list, res.Regex, blamed, line)
}

// lookup resolves a host name a line blamed when the source has
// resolve: true, as serve does; nil otherwise or when it resolves to
// nothing.
func (p *WatchReplay) lookup(name string) []netip.Addr {
	if !p.resolve {
		return nil
	}
	addrs, _ := p.resolver.resolve(context.Background(), name)
	return addrs
}

// Report returns the report of what was read so far.
func (p *WatchReplay) Report() *WatchReplayReport {
	if p.jails != nil {
		p.rep.Offences = p.jails.Offences(p.jail)
	}
	return p.rep
}
