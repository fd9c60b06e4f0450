package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"gatehouse/proxy"
	"gatehouse/proxy/config"
	"gatehouse/rules/fleet"
)

const fleetUsage = `usage: gatehouse fleet status [-c FILE]
  status  the nodes of the fleet as its Redis sees them (last heartbeat,
          stream lag, outbox), and the shared bans, unbans and stream size
`

// staleAfter is how old a node's heartbeat may be before status calls it
// stale (nodes beat every 5 seconds).
const staleAfter = 30 * time.Second

func fleetCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprint(stderr, fleetUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("fleet status", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(stderr, fleetUsage) }
	path := configFlag(fs)
	if !parseFlags(fs, args[1:], stderr) {
		return exitUsage
	}
	if *path == "" {
		fmt.Fprintln(stderr, "gatehouse fleet status: -c FILE (or GATEHOUSE_CONFIG) is required")
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return loadExit(err)
	}
	if cfg.Fleet == nil {
		fmt.Fprintf(stderr, "gatehouse fleet status: %s has no fleet block\n", *path)
		return exitUsage
	}
	rdb, err := proxy.NewRedisClient(cfg.Fleet)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse fleet status: %v\n", err)
		return exitRuntime
	}
	defer rdb.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := fleet.ReadStatus(ctx, rdb, cfg.Fleet.Prefix)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse fleet status: %v\n", err)
		return exitRuntime
	}
	fmt.Fprintf(stdout, "fleet %q: epoch %s, %d bans, %d unbans, %d stream entries\n",
		cfg.Fleet.Prefix, orNone(st.Epoch), st.Bans, st.Unbans, st.Stream)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSEEN\tLAG\tOUTBOX\tBANS\tSTATE")
	for _, n := range st.Nodes {
		age := st.Now.Sub(n.Seen)
		state := "ok"
		switch {
		case age > staleAfter:
			state = "stale"
		case n.Outbox > 0:
			state = "pushing"
		}
		fmt.Fprintf(tw, "%s\t%s ago\t%.3fs\t%d\t%d\t%s\n", n.Node, age.Round(time.Second), n.LagSeconds, n.Outbox, n.Bans, state)
	}
	if err := tw.Flush(); err != nil {
		return exitRuntime
	}
	return exitOK
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
