package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"gatehouse/signer"
)

const bansUsage = `usage: gatehouse bans list [--json]
       gatehouse bans add IP|CIDR [--for 1h] [--reason TEXT]
       gatehouse bans del IP|CIDR
flags for every form: --admin URL       (default $GATEHOUSE_ADMIN, else admin.listen of -c FILE,
                                         else http://127.0.0.1:9901)
                      -c FILE           the gateway's config, for its admin.listen
                                        (default $GATEHOUSE_CONFIG)
                      --token T         (default $GATEHOUSE_TOKEN)
                      --token-file FILE (the token on one line, instead of --token)
`

// banFlags maps the admin API's ban fields to the CLI's words.
var banFlags = map[string]string{"ip": "", "duration": "--for", "reason": "--reason"}

func bansCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, bansUsage)
		return exitUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("bans "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, bansUsage) }
	af := addAdminFlags(fs)
	af.config = configFlag(fs)
	asJSON := fs.Bool("json", false, "list: print the API's JSON")
	dur := fs.String("for", "1h", "add: ban duration (30m, 2h, 7d, or seconds)")
	reason := fs.String("reason", "", "add: a note kept with the ban")
	if err := fs.Parse(reorderFlags(fs, args[1:])); err != nil {
		return exitUsage
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "gatehouse bans %s: %s\n", verb, fmt.Sprintf(format, args...))
		return exitUsage
	}
	switch {
	case verb == "list" && fs.NArg() == 0:
	case (verb == "add" || verb == "del") && fs.NArg() == 1:
		if err := checkBanTarget(fs.Arg(0)); err != nil {
			return fail("%v", err)
		}
		if verb == "add" {
			if _, err := signer.ParseDuration(*dur); err != nil {
				return fail("%v", flagDurationError("--for", err))
			}
		}
	default:
		fmt.Fprint(stderr, bansUsage)
		return exitUsage
	}
	c, err := af.client()
	if err != nil {
		return fail("%v", err)
	}
	ctx := context.Background()

	var code int
	var body []byte
	switch verb {
	case "list":
		code, body, err = c.call(ctx, "GET", "/v1/bans", nil)
		if err == nil && code == http.StatusOK {
			return printBans(stdout, stderr, body, *asJSON)
		}
	case "add":
		code, body, err = c.call(ctx, "POST", "/v1/bans", map[string]string{"ip": fs.Arg(0), "duration": *dur, "reason": *reason})
		if err == nil && code == http.StatusCreated {
			var b struct{ IP, Until string }
			_ = json.Unmarshal(body, &b) // printed as far as it parses
			fmt.Fprintf(stdout, "banned %s until %s\n", b.IP, b.Until)
			return exitOK
		}
	case "del":
		code, body, err = c.call(ctx, "DELETE", "/v1/bans/"+fs.Arg(0), nil)
		if err == nil && code == http.StatusNoContent {
			fmt.Fprintf(stdout, "unbanned %s\n", fs.Arg(0))
			return exitOK
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse bans %s: %v\n", verb, err)
		return exitRuntime
	}
	e := c.describeAPIError(code, body, banFlags)
	fmt.Fprintf(stderr, "gatehouse bans %s: %s\n", verb, e.msg)
	if e.usage {
		return exitUsage
	}
	return exitRuntime
}

// checkBanTarget checks the form of a ban's address or prefix before the
// gateway is asked; the gateway applies its own rules (allow list, host
// bits) and says why it refuses.
func checkBanTarget(s string) error {
	if strings.Contains(s, "/") {
		if _, err := netip.ParsePrefix(s); err != nil {
			return fmt.Errorf("%q is not an IP address or CIDR prefix such as 203.0.113.7 or 203.0.113.0/24", s)
		}
		return nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("%q is not an IP address or CIDR prefix such as 203.0.113.7 or 203.0.113.0/24", s)
	}
	if a.Zone() != "" {
		return fmt.Errorf("%q has a zone; give the address without it", s)
	}
	return nil
}

func printBans(w, stderr io.Writer, body []byte, asJSON bool) int {
	if asJSON {
		_, _ = w.Write(body) // stdout; nothing to do if it fails
		return exitOK
	}
	var bans []struct {
		IP, Jail, Reason string
		Until            time.Time
		Count            int
	}
	if err := json.Unmarshal(body, &bans); err != nil {
		fmt.Fprintf(stderr, "gatehouse bans list: unexpected answer from the admin API: %v\n", err)
		return exitRuntime
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IP\tJAIL\tUNTIL\tCOUNT\tREASON")
	for _, b := range bans {
		jail := b.Jail
		if jail == "" {
			jail = "(manual)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", b.IP, jail, b.Until.Format(time.RFC3339), b.Count, b.Reason)
	}
	tw.Flush()
	return exitOK
}
