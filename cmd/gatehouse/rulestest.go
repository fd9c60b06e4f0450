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

	"golang.org/x/term"
)

// maxBansListed bounds the bans printed; the count is always complete.
const maxBansListed = 200

const rulesUsage = "usage: gatehouse rules test -c FILE [--show-matches] [--host NAME] [--top N] LOGFILE...|-"

// rulesCmd runs `gatehouse rules test -c FILE [--show-matches] [--host NAME] [--top N] LOGFILE...`.
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
		fs.PrintDefaults()
	}
	path := configFlag(fs)
	show := fs.Bool("show-matches", false, "print every matching line, prefixed with the rule")
	host := fs.String("host", "", "whose rules apply to lines without a host (default: the first host with rules of its own)")
	top := fs.Int("top", 0, "list the `N` clients with the most refused requests and the N most hit rules")
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
	var size int64
	inputs := make([]*proxy.ReplayInput, 0, len(names))
	for _, name := range names {
		var r io.Reader = stdin
		if name == "-" {
			name = "standard input"
		} else {
			f, err := os.Open(name)
			if err != nil {
				fmt.Fprintln(stderr, "gatehouse rules test:", err)
				return exitRuntime
			}
			defer f.Close()
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				size += fi.Size()
			}
			r = &countingReader{r: f, n: &read}
		}
		in, err := proxy.NewReplayInput(name, r)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse rules test:", err)
			return exitRuntime
		}
		inputs = append(inputs, in)
	}
	proxy.SortReplayInputs(inputs)
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
	fmt.Fprintf(w, "Bans that would follow: %d\n", len(rep.Bans))
	for i, b := range rep.Bans {
		if i == maxBansListed {
			fmt.Fprintf(w, "  … and %d more\n", len(rep.Bans)-maxBansListed)
			break
		}
		fmt.Fprintf(w, "  %s  %-20s %-8s ban #%d until %s\n", b.At.UTC().Format(time.RFC3339), b.Prefix, b.Jail, b.Count,
			b.Until.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "Lines from clients banned at the time (403 from memory): %d\n", rep.WhileBan)
	if top > 0 {
		printTop(w, rep, top)
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
