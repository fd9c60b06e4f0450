package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"gatehouse/proxy"
	"gatehouse/proxy/config"
	"gatehouse/rules/watch/filter"

	"golang.org/x/term"
)

// maxBansListed bounds the bans printed; the count is always complete.
const maxBansListed = 200

const rulesUsage = "usage: gatehouse rules test -c FILE [--show-matches] [--host NAME] [--top N] LOGFILE...|-\n" +
	"       gatehouse rules test -c FILE --watch NAME [--show-matches] [--print-missed] [LOGFILE...|-]\n" +
	"       gatehouse rules test --filter NAME [--mode MODE] [--show-matches] [--print-missed] [LOGFILE...|-]"

// maxMissedListed bounds the lines --print-missed prints; the count is
// always complete.
const maxMissedListed = 200

// rulesCmd runs `gatehouse rules test`: access logs through the config's
// rules and jails, or (--watch, --filter) a service's log through a watch
// source's filter and jail.
func rulesCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, rulesUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, rulesUsage)
		fmt.Fprintln(stderr, "Replays access logs through the config's rules and jails, with the logs' own times:")
		fmt.Fprintln(stderr, "several logs (the rotated files of one) are read oldest first, gzip ones too.")
		fmt.Fprintln(stderr, "With --watch, replays a service's log (standard input without LOGFILE) through that watch")
		fmt.Fprintln(stderr, "source's filter and jail, like fail2ban-regex; with --filter, through a built-in filter alone.")
		fs.PrintDefaults()
	}
	path := configFlag(fs)
	show := fs.Bool("show-matches", false, "print every matching line, prefixed with the rule")
	host := fs.String("host", "", "whose rules apply to lines without a host (default: the first host with rules of its own)")
	top := fs.Int("top", 0, "list the `N` clients with the most refused requests and the N most hit rules")
	watchName := fs.String("watch", "", "replay the logs through the watch source `NAME` of the config")
	filterName := fs.String("filter", "", "replay the logs through the built-in filter `NAME` alone (no config, no jail)")
	mode := fs.String("mode", "", "the built-in filter's `MODE` (with --filter)")
	printMissed := fs.Bool("print-missed", false, fmt.Sprintf("with --watch or --filter, print the lines no failregex matched (the first %d)", maxMissedListed))
	// Flags may follow the logs: parse again after each one.
	var names []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			return exitUsage
		}
		if rest = fs.Args(); len(rest) == 0 {
			break
		}
		names, rest = append(names, rest[0]), rest[1:]
	}
	if *watchName != "" || *filterName != "" {
		// -c from $GATEHOUSE_CONFIG does not clash with --filter; given
		// on the command line it does.
		envConfig := true
		fs.Visit(func(f *flag.Flag) { envConfig = envConfig && f.Name != "c" })
		w := watchTest{config: *path, watch: *watchName, filter: *filterName, mode: *mode, show: *show, printMissed: *printMissed}
		bad := *host != "" || *top != 0 || countOf(names, "-") > 1
		if *filterName != "" {
			bad = bad || *watchName != "" || *path != "" && !envConfig
		} else {
			bad = bad || *path == "" || *mode != ""
		}
		if bad {
			fmt.Fprintln(stderr, rulesUsage)
			return exitUsage
		}
		return w.run(names, stdin, stdout, stderr)
	}
	if *printMissed || *mode != "" {
		fmt.Fprintln(stderr, rulesUsage)
		return exitUsage
	}
	if *path == "" || len(names) == 0 || *top < 0 || countOf(names, "-") > 1 {
		fmt.Fprintln(stderr, rulesUsage)
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return loadExit(err)
	}
	var read atomic.Int64 // bytes read from the files, compressed or not
	inputs, size, closeInputs, err := openInputs(names, stdin, &read, proxy.NewReplayInput)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse rules test:", err)
		return exitRuntime
	}
	defer closeInputs()
	opts := proxy.ReplayOptions{Host: *host, Top: *top}
	if *show {
		opts.Matches = stdout
	}
	if f, ok := stderr.(*os.File); ok && size > 0 && term.IsTerminal(int(f.Fd())) {
		bar := progressBar(f, size)
		opts.Progress = func(int64) { bar(read.Load()) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	replay, err := proxy.NewReplay(cfg, opts)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse rules test:", err)
		return exitUsage
	}
	var warnings []string
	for _, in := range inputs {
		lines, unparsed, err := replay.Read(ctx, in)
		if err != nil {
			if opts.Progress != nil {
				fmt.Fprint(stderr, "\r\033[K")
			}
			fmt.Fprintf(stderr, "gatehouse rules test: %s: %v\n", in.Name, err)
			return exitRuntime
		}
		if lines > 0 && unparsed == lines {
			warnings = append(warnings, fmt.Sprintf("%s: none of its %d lines is in a format gatehouse reads (%s)", in.Name, lines, proxy.LogFormats))
		}
	}
	if opts.Progress != nil {
		fmt.Fprint(stderr, "\r\033[K")
	}
	rep := replay.Report()
	if rep.Lines == 0 {
		warnings = append(warnings, "no lines to replay")
	}
	printReport(stdout, rep, inputs, *top, time.Since(start))
	for _, w := range warnings {
		fmt.Fprintln(stderr, "gatehouse rules test: warning:", w)
	}
	if len(warnings) > 0 {
		return exitRuntime
	}
	return exitOK
}

// countOf counts the elements of s equal to v.
func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// openInputs opens the logs names ("-" is stdin) as replay inputs made by
// newInput, in time order; size is the sum of the sizes of the regular
// files among them, and what is read from the files is counted in read.
// The caller calls closeInputs when done; on error the files are closed.
func openInputs(names []string, stdin io.Reader, read *atomic.Int64,
	newInput func(string, io.Reader) (*proxy.ReplayInput, error)) (inputs []*proxy.ReplayInput, size int64, closeInputs func(), err error) {
	var files []*os.File
	closeInputs = func() {
		for _, f := range files {
			f.Close()
		}
	}
	inputs = make([]*proxy.ReplayInput, 0, len(names))
	for _, name := range names {
		var r io.Reader = stdin
		if name == "-" {
			name = "standard input"
		} else {
			f, err := os.Open(name)
			if err != nil {
				closeInputs()
				return nil, 0, nil, err
			}
			files = append(files, f)
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				size += fi.Size()
			}
			r = &countingReader{r: f, n: read}
		}
		in, err := newInput(name, r)
		if err != nil {
			closeInputs()
			return nil, 0, nil, err
		}
		inputs = append(inputs, in)
	}
	proxy.SortReplayInputs(inputs)
	return inputs, size, closeInputs, nil
}

// countingReader counts the bytes read through it into n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progressBar draws "[#####.....]  42%" on a terminal.
func progressBar(w io.Writer, size int64) func(int64) {
	return func(read int64) {
		pct := min(100, int(read*100/size))
		fmt.Fprintf(w, "\r[%-40s] %3d%%", strings.Repeat("#", pct*40/100), pct)
	}
}

func printReport(w io.Writer, rep *proxy.ReplayReport, inputs []*proxy.ReplayInput, top int, took time.Duration) {
	if len(inputs) > 1 {
		names := make([]string, len(inputs))
		for i, in := range inputs {
			names[i] = in.Name
		}
		fmt.Fprintf(w, "Logs, oldest first: %s\n", strings.Join(names, ", "))
	}
	rate := float64(rep.Lines) / max(took.Seconds(), 1e-9)
	fmt.Fprintf(w, "Lines: %d read (%.0f lines/s), %d not in a known format\n", rep.Lines, rate, rep.Unparsed)
	if !rep.FirstTime.IsZero() {
		fmt.Fprintf(w, "Time span: %s to %s\n", rep.FirstTime.UTC().Format(time.RFC3339), rep.LastTime.UTC().Format(time.RFC3339))
	}
	if rep.NoHost > 0 {
		if rep.DefaultHost != "" {
			fmt.Fprintf(w, "Lines without a host: %d, under the rules of %s (--host picks another)\n", rep.NoHost, rep.DefaultHost)
		} else {
			fmt.Fprintf(w, "Lines without a host: %d, under no host's rules (no host has rules of its own)\n", rep.NoHost)
		}
	}
	if rep.UnknownHost > 0 {
		fmt.Fprintf(w, "Lines for hosts the config does not serve (421): %d\n", rep.UnknownHost)
	}
	if len(rep.Flood) > 0 {
		printCounts(w, "Flood refusals (429) by jail", rep.Flood)
	}
	fmt.Fprintf(w, "Unsafe paths (400): %d\n", rep.Unsafe)
	printCounts(w, "Probe matches", rep.Probes)
	if rep.Ambiguous > 0 {
		fmt.Fprintf(w, "Paths whose readings choose different routes (400): %d\n", rep.Ambiguous)
	}
	if len(rep.Responds) > 0 {
		printCounts(w, "Answered by a route's respond", rep.Responds)
	}
	if len(rep.Limits) > 0 {
		printCounts(w, "Rate limit refusals by limit", rep.Limits)
	}
	if len(rep.Delayed) > 0 {
		printCounts(w, "Requests delayed within a limit's burst", rep.Delayed)
	}
	printCounts(w, "Hotlinks refused", rep.Hotlinks)
	if len(rep.Access) > 0 {
		printCounts(w, "Access denied (403) by host or route", rep.Access)
	}
	if len(rep.Auth) > 0 {
		printCounts(w, "Failed logins (401 under basic auth) by host or route", rep.Auth)
	}
	fmt.Fprintf(w, "Offences by jail:")
	for _, name := range rep.SortedOffences() {
		fmt.Fprintf(w, " %s %d", name, rep.Offences[name])
	}
	fmt.Fprintln(w)
	printReplayBans(w, rep.Bans)
	fmt.Fprintf(w, "Lines from clients banned at the time (403 from memory): %d\n", rep.WhileBan)
	if top > 0 {
		printTop(w, rep, top)
	}
}

// printReplayBans lists the bans a replay would have made, the first
// maxBansListed of them.
func printReplayBans(w io.Writer, bans []proxy.ReplayBan) {
	fmt.Fprintf(w, "Bans that would follow: %d\n", len(bans))
	for i, b := range bans {
		if i == maxBansListed {
			fmt.Fprintf(w, "  … and %d more\n", len(bans)-maxBansListed)
			break
		}
		escalated := ""
		if b.Escalated {
			escalated = "  escalated: the network replaces its clients' bans"
		}
		fmt.Fprintf(w, "  %s  %-20s %-8s ban #%d until %s%s\n", b.At.UTC().Format(time.RFC3339), b.Prefix, b.Jail, b.Count,
			b.Until.UTC().Format(time.RFC3339), escalated)
	}
}

// printTop lists the clients with the most refused requests and the
// most hit rules.
func printTop(w io.Writer, rep *proxy.ReplayReport, top int) {
	fmt.Fprintf(w, "Top %d clients by refused requests:\n", top)
	for _, c := range rep.TopClients {
		over := ""
		if c.Over > 0 {
			over = fmt.Sprintf(" (at most %d too many)", c.Over)
		}
		fmt.Fprintf(w, "  %-20s refused %d, offences %d%s\n", c.Prefix, c.Refused, c.Offences, over)
	}
	if rep.TopOverflow {
		fmt.Fprintln(w, "  (more clients were refused than limits.tracked_clients: the counts are upper bounds)")
	}
	fmt.Fprintf(w, "Top %d rules by refused requests:\n", top)
	for i, r := range rep.Rules() {
		if i == top {
			break
		}
		fmt.Fprintf(w, "  %7d  %s %s\n", r.Count, r.Kind, r.Name)
	}
}

func printCounts(w io.Writer, title string, counts map[string]int) {
	total := 0
	keys := make([]string, 0, len(counts))
	for k, n := range counts {
		total += n
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	fmt.Fprintf(w, "%s: %d\n", title, total)
	for _, k := range keys {
		fmt.Fprintf(w, "  %7d  %s\n", counts[k], k)
	}
}

// watchTest is `gatehouse rules test --watch NAME` or `--filter NAME`:
// a service's log through a watch source's filter and jail, or through a
// built-in filter alone.
type watchTest struct {
	config, watch, filter, mode string
	show, printMissed           bool
}

func (w watchTest) run(names []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// The bar needs the inputs' size, which needs the replay first.
	var bar func(int64)
	var read atomic.Int64 // bytes read from the files, compressed or not
	opts := proxy.WatchReplayOptions{}
	opts.Progress = func(int64) {
		if bar != nil {
			bar(read.Load())
		}
	}
	if w.show {
		opts.Matches = stdout
	}
	if w.printMissed {
		opts.MaxMissed = maxMissedListed
	}
	var replay *proxy.WatchReplay
	if w.filter != "" {
		fc, err := filter.Builtin(w.filter, w.mode)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse rules test:", err)
			return exitUsage
		}
		mode := w.mode
		if mode == "" {
			mode = "default mode"
		}
		if replay, err = proxy.NewFilterReplay(fc, w.filter+" ("+mode+")", opts); err != nil {
			fmt.Fprintln(stderr, "gatehouse rules test:", err)
			return exitUsage
		}
	} else {
		cfg, err := config.Load(w.config)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return loadExit(err)
		}
		if replay, err = proxy.NewWatchReplay(cfg, w.watch, opts); err != nil {
			fmt.Fprintln(stderr, "gatehouse rules test:", err)
			return exitUsage
		}
	}
	if len(names) == 0 {
		if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprintln(stderr, "gatehouse rules test: name the log files, or pipe the log in (journalctl -o json | …)")
			fmt.Fprintln(stderr, rulesUsage)
			return exitUsage
		}
		names = []string{"-"}
	}
	inputs, size, closeInputs, err := openInputs(names, stdin, &read, replay.Input)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse rules test:", err)
		return exitRuntime
	}
	defer closeInputs()
	if f, ok := stderr.(*os.File); ok && size > 0 && term.IsTerminal(int(f.Fd())) {
		bar = progressBar(f, size)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	var warnings []string
	for _, in := range inputs {
		lines, noTime, err := replay.Read(ctx, in)
		if err != nil {
			if bar != nil {
				fmt.Fprint(stderr, "\r\033[K")
			}
			fmt.Fprintf(stderr, "gatehouse rules test: %s: %v\n", in.Name, err)
			return exitRuntime
		}
		if lines > 0 && noTime == lines {
			warnings = append(warnings, fmt.Sprintf("%s: none of its %d lines has a timestamp the filter reads (a datepattern for this log?)", in.Name, lines))
		}
	}
	if bar != nil {
		fmt.Fprint(stderr, "\r\033[K")
	}
	rep := replay.Report()
	if rep.Lines == 0 {
		warnings = append(warnings, "no lines to replay")
	}
	printWatchReport(stdout, rep, inputs, time.Since(start))
	for _, warn := range warnings {
		fmt.Fprintln(stderr, "gatehouse rules test: warning:", warn)
	}
	if len(warnings) > 0 {
		return exitRuntime
	}
	return exitOK
}

func printWatchReport(w io.Writer, rep *proxy.WatchReplayReport, inputs []*proxy.ReplayInput, took time.Duration) {
	if len(inputs) > 1 {
		names := make([]string, len(inputs))
		for i, in := range inputs {
			names[i] = in.Name
		}
		fmt.Fprintf(w, "Logs, oldest first: %s\n", strings.Join(names, ", "))
	}
	if rep.Jail != "" {
		j := rep.JailConfig
		fmt.Fprintf(w, "Watch source: %s, filter %s, jail %s (maxretry %d, findtime %s, bantime %s)\n",
			rep.Source, rep.Filter, rep.Jail, j.MaxRetry, j.FindTime, j.BanTime)
	} else {
		fmt.Fprintf(w, "Filter: %s, alone (no jail: no bans)\n", rep.Filter)
	}
	rate := float64(rep.Lines) / max(took.Seconds(), 1e-9)
	fmt.Fprintf(w, "Lines: %d read (%.0f lines/s)", rep.Lines, rate)
	if rep.Comments > 0 {
		fmt.Fprintf(w, ", %d comment lines (#) skipped", rep.Comments)
	}
	if rep.TooLong > 0 {
		fmt.Fprintf(w, ", %d over 64 KiB skipped", rep.TooLong)
	}
	fmt.Fprintln(w)
	if !rep.FirstTime.IsZero() {
		fmt.Fprintf(w, "Time span: %s to %s\n", rep.FirstTime.UTC().Format(time.RFC3339), rep.LastTime.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "Lines without a timestamp: %d\n", rep.NoTime)
	printRegexes(w, "Failregex", rep.FailRegex)
	if len(rep.IgnoreRegex) > 0 {
		printRegexes(w, "Ignoreregex", rep.IgnoreRegex)
	}
	hint := ""
	if rep.Missed > 0 && rep.MissedLines == nil {
		hint = " (--print-missed lists them)"
	}
	fmt.Fprintf(w, "Missed (no failregex matched): %d%s\n", rep.Missed, hint)
	if rep.Jail == "" {
		fmt.Fprintf(w, "Blamed: %d\n", rep.Failed)
	} else {
		fmt.Fprintf(w, "Blamed but older than findtime before the newest line: %d\n", rep.Old)
		fmt.Fprintf(w, "Blamed a host name, not resolved: %d\n", rep.Unresolved)
		if rep.Local > 0 {
			fmt.Fprintf(w, "Blamed this host or no client (loopback, link-local …): %d\n", rep.Local)
		}
		fmt.Fprintf(w, "Offences for jail %s: %d\n", rep.Jail, rep.Failed)
		printReplayBans(w, rep.Bans)
		fmt.Fprintf(w, "Offences by clients banned at the time (kept out by the kernel set): %d\n", rep.WhileBanned)
	}
	if rep.MissedLines != nil {
		fmt.Fprintf(w, "Missed lines (%d of %d):\n", len(rep.MissedLines), rep.Missed)
		for _, l := range rep.MissedLines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

// printRegexes lists the regexes that decided lines, with their index
// in the filter and how many lines each decided.
func printRegexes(w io.Writer, title string, res []proxy.WatchRegex) {
	total, idle := 0, 0
	for _, r := range res {
		total += r.Lines
		if r.Lines == 0 {
			idle++
		}
	}
	fmt.Fprintf(w, "%s: %d lines\n", title, total)
	for i, r := range res {
		if r.Lines > 0 {
			fmt.Fprintf(w, "  %7d  [%d] %s\n", r.Lines, i, r.Regex)
		}
	}
	if idle > 0 {
		fmt.Fprintf(w, "  (%d of %d matched no line)\n", idle, len(res))
	}
}
