// Command gatehouse-bench measures gatehouse beside the tools users would
// pick instead, on this machine, so the figures in docs/performance.md can
// be reproduced:
//
//	gatehouse-bench compare   loopback throughput and CPU per request: gatehouse in
//	                          four configs, a bare Go httputil.ReverseProxy, and
//	                          nginx, Caddy and HAProxy when installed; wrk as load;
//	                          paired hosts with and without auth; HTTP/2 (h2load)
//	                          and TLS handshakes beside nginx
//	gatehouse-bench attack    root: 200 scanner addresses flood probe URIs while a
//	                          legit client measures throughput, in network
//	                          namespaces it creates; gatehouse with its kernel ban
//	                          set against nginx and nginx + fail2ban
//	gatehouse-bench memory    bytes per client of every per-client table, and the
//	                          RSS of gatehouse with the full chain: idle, after a
//	                          minute of clean load, with its tables full
//
// Every run prints Markdown tables on standard output and its progress on
// standard error, keeps its configs, logs and raw wrk output in a scratch
// directory (-dir), and stops every process it started, by PID, when it
// ends, fails or is interrupted. BENCH_SMOKE=1 makes compare, attack
// and memory short for the tests.
//
// The numbers to compare are CPU microseconds per request of the proxy's
// process tree, read from /proc/PID/stat around each wrk run: requests/s
// depends on everything else the machine does, CPU per request much less.
// The servers run as separate processes pinned to CPUs with taskset; the
// helpers (the upstream app, the bare proxy, the scanner) are
// subcommands of this same executable.
//
// Linux only: it reads /proc, and attack needs ip netns, iptables/ipset or
// nftables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"gatehouse/cmd/gatehouse-bench/role"
)

const usage = `usage: gatehouse-bench <command> [flags]

commands:
  compare   gatehouse, bare Go, nginx, Caddy, HAProxy on loopback (wrk)
  attack    legit throughput during a probe-scanner flood (root; network namespaces)
  memory    bytes per client of the per-client tables; gatehouse's RSS idle, loaded, full

  upstream | bare | scanner | get | handshake   helper processes the commands start

BENCH_SMOKE=1 runs compare and attack in smoke mode (1-second runs, gatehouse
and bare Go rows only), and memory with 20,000 clients per table and 3,000 for
gatehouse. "gatehouse-bench <command> -h" lists a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "compare":
		err = compareMain(ctx, args[1:], stdout, stderr)
	case "attack":
		err = attackMain(ctx, args[1:], stdout, stderr)
	case "memory":
		err = memoryMain(ctx, args[1:], stdout, stderr)
	case "upstream":
		stop() // the role handles its own signals
		err = role.Upstream(args[1:], stderr)
	case "bare":
		stop()
		err = role.Bare(args[1:], stderr)
	case "scanner":
		err = role.Scanner(args[1:], stdout, stderr)
	case "get":
		err = role.Get(args[1:], stdout, stderr)
	case "handshake":
		err = role.Handshake(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "gatehouse-bench: unknown command %q\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "gatehouse-bench:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "gatehouse-bench:", err)
		return 1
	}
}

// errUsage marks errors in the command line.
var errUsage = errors.New("usage")

// parseFlags parses a command's flags; a bad command line is a usage
// error (the flag package has already said what is wrong).
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %v", errUsage, err)
}
