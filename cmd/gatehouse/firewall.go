package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"gatehouse/proxy/config"
	"gatehouse/rules/firewall"
)

const firewallUsage = `usage: gatehouse firewall status|flush [-c FILE]
  status  show the kernel sets/rules gatehouse created and what they hold
  flush   remove them (every backend's, or only firewall.backend's with -c)
`

// allBackends are tried, in order, when no config names one.
var allBackends = []string{"nftables", "ipset", "iptables"}

func firewallCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "status" && args[0] != "flush") {
		fmt.Fprint(stderr, firewallUsage)
		return exitUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("firewall "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, firewallUsage) }
	path := configFlag(fs)
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		fmt.Fprint(stderr, firewallUsage)
		return exitUsage
	}
	names := allBackends
	if *path != "" {
		cfg, err := config.Load(*path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return loadExit(err)
		}
		if cfg.Firewall.Backend == "none" {
			fmt.Fprintf(stdout, "%s: firewall.backend is none: gatehouse keeps no kernel objects\n", *path)
			return exitOK
		}
		names = []string{cfg.Firewall.Backend}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	code, found := exitOK, 0
	for _, name := range names {
		b, err := firewall.New(firewall.Config{Backend: name})
		if err != nil {
			if len(names) == 1 {
				fmt.Fprintf(stderr, "gatehouse firewall %s: %v\n", verb, err)
				return exitRuntime
			}
			continue // that backend's tools or kernel support are not here
		}
		found++
		if verb == "flush" {
			if err := b.Remove(ctx); err != nil {
				fmt.Fprintf(stderr, "gatehouse firewall flush: %s: %v\n", b.Name(), err)
				code = exitRuntime
				continue
			}
			fmt.Fprintf(stdout, "%s: removed gatehouse's kernel objects\n", b.Name())
			continue
		}
		st, err := firewall.ReadStatus(ctx, b)
		if err != nil {
			if errors.Is(err, firewall.ErrNoPermission) {
				fmt.Fprintf(stderr, "gatehouse firewall status: %s: %v\n", b.Name(), err)
				code = exitRuntime
				continue
			}
			fmt.Fprintf(stdout, "%s: no gatehouse objects (%v)\n", b.Name(), err)
			continue
		}
		fmt.Fprintf(stdout, "%s: %d entries (%d IPv4, %d IPv6)\n", st.Backend, len(st.Entries), st.IPv4, st.IPv6)
		for _, e := range st.Entries {
			expires := "no timeout"
			if !e.Expires.IsZero() {
				expires = "expires in " + time.Until(e.Expires).Round(time.Second).String()
			}
			fmt.Fprintf(stdout, "  %-40s %s\n", e.Prefix, expires)
		}
		for _, f := range st.Feeds {
			fmt.Fprintf(stdout, "%s: feed %s: %d entries (%d IPv4, %d IPv6)\n", st.Backend, f.Name, f.IPv4+f.IPv6, f.IPv4, f.IPv6)
		}
	}
	if found == 0 {
		fmt.Fprintln(stderr, "gatehouse firewall: no firewall backend is usable here (ipset, nftables or iptables, and CAP_NET_ADMIN)")
		return exitRuntime
	}
	return code
}
