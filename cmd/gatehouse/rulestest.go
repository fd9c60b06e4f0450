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
	"syscall"
	"time"

	"gatehouse/proxy"
	"gatehouse/proxy/config"

	"golang.org/x/term"
)

// maxBansListed bounds the bans printed; the count is always complete.
const maxBansListed = 200

// rulesCmd runs `gatehouse rules test -c FILE [--show-matches] [--host NAME] LOGFILE`.
func rulesCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, "usage: gatehouse rules test -c FILE [--show-matches] [--host NAME] LOGFILE|-")
		return exitUsage
	}
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	show := fs.Bool("show-matches", false, "print every matching line, prefixed with the rule")
	host := fs.String("host", "", "whose hotlink rules apply to lines without a host (default: the first host with hotlink rules)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if *path == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: gatehouse rules test -c FILE [--show-matches] [--host NAME] LOGFILE|-")
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return loadExit(err)
	}
	in, size := io.Reader(os.Stdin), int64(0)
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse rules test:", err)
			return exitRuntime
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in = f
	}
	opts := proxy.ReplayOptions{Host: *host}
	if *show {
		opts.Matches = stdout
	}
	if f, ok := stderr.(*os.File); ok && size > 0 && term.IsTerminal(int(f.Fd())) {
		opts.Progress = progressBar(f, size)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rep, err := proxy.ReplayLog(ctx, cfg, in, opts)
	if opts.Progress != nil {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse rules test:", err)
		return exitRuntime
	}
	printReport(stdout, rep, time.Since(start))
	return exitOK
}

// progressBar draws "[#####.....]  42%" on a terminal.
func progressBar(w io.Writer, size int64) func(int64) {
	return func(read int64) {
		pct := min(100, int(read*100/size))
		fmt.Fprintf(w, "\r[%-40s] %3d%%", strings.Repeat("#", pct*40/100), pct)
	}
}

func printReport(w io.Writer, rep *proxy.ReplayReport, took time.Duration) {
	rate := float64(rep.Lines) / max(took.Seconds(), 1e-9)
	fmt.Fprintf(w, "Lines: %d read (%.0f lines/s), %d not in a known format\n", rep.Lines, rate, rep.Unparsed)
	if !rep.FirstTime.IsZero() {
		fmt.Fprintf(w, "Time span: %s to %s\n", rep.FirstTime.UTC().Format(time.RFC3339), rep.LastTime.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "Unsafe paths (400): %d\n", rep.Unsafe)
	printCounts(w, "Probe matches", rep.Probes)
	printCounts(w, "Hotlinks refused", rep.Hotlinks)
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
