package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

const bansUsage = `usage: gatehouse bans list [--json]
       gatehouse bans add IP|CIDR [--for 1h] [--reason TEXT]
       gatehouse bans del IP|CIDR
flags for every form: --admin URL (default $GATEHOUSE_ADMIN or http://127.0.0.1:9901)
                      --token T   (default $GATEHOUSE_TOKEN)
`

// adminClient calls a running gateway's admin API.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func (c *adminClient) call(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b, err
}

// apiErrorText returns the admin API's error message, or the raw body.
func apiErrorText(code int, body []byte) string {
	var e struct{ Error, Field string }
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		if e.Field != "" {
			return fmt.Sprintf("%d: %s: %s", code, e.Field, e.Error)
		}
		return fmt.Sprintf("%d: %s", code, e.Error)
	}
	return fmt.Sprintf("%d: %s", code, strings.TrimSpace(string(body)))
}

// reorderFlags moves flags before positional arguments, so both
// "add IP --for 1h" and "add --for 1h IP" work.
func reorderFlags(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if f := fs.Lookup(name); f != nil && !strings.Contains(name, "=") {
				if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); !isBool && i+1 < len(args) {
					flags = append(flags, args[i+1])
					i++
				}
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func bansCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, bansUsage)
		return exitUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("bans "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, bansUsage) }
	admin := fs.String("admin", envOr("GATEHOUSE_ADMIN", "http://127.0.0.1:9901"), "admin API base URL")
	token := fs.String("token", os.Getenv("GATEHOUSE_TOKEN"), "admin API token")
	asJSON := fs.Bool("json", false, "list: print the API's JSON")
	dur := fs.String("for", "1h", "add: ban duration (30m, 2h, 7d, or seconds)")
	reason := fs.String("reason", "", "add: a note kept with the ban")
	if err := fs.Parse(reorderFlags(fs, args[1:])); err != nil {
		return exitUsage
	}
	base := strings.TrimRight(*admin, "/")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "gatehouse bans: --admin %q is not an http(s) URL\n", *admin)
		return exitUsage
	}
	c := &adminClient{base: base, token: *token, http: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{Proxy: nil}}}
	ctx := context.Background()

	var code int
	var body []byte
	var err error
	switch {
	case verb == "list" && fs.NArg() == 0:
		code, body, err = c.call(ctx, "GET", "/v1/bans", nil)
		if err == nil && code == http.StatusOK {
			return printBans(stdout, body, *asJSON)
		}
	case verb == "add" && fs.NArg() == 1:
		code, body, err = c.call(ctx, "POST", "/v1/bans", map[string]string{"ip": fs.Arg(0), "duration": *dur, "reason": *reason})
		if err == nil && code == http.StatusCreated {
			var b struct{ IP, Until string }
			_ = json.Unmarshal(body, &b) // printed as far as it parses
			fmt.Fprintf(stdout, "banned %s until %s\n", b.IP, b.Until)
			return exitOK
		}
	case verb == "del" && fs.NArg() == 1:
		code, body, err = c.call(ctx, "DELETE", "/v1/bans/"+fs.Arg(0), nil)
		if err == nil && code == http.StatusNoContent {
			fmt.Fprintf(stdout, "unbanned %s\n", fs.Arg(0))
			return exitOK
		}
	default:
		fmt.Fprint(stderr, bansUsage)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse bans %s: %v\n", verb, err)
		return exitRuntime
	}
	fmt.Fprintf(stderr, "gatehouse bans %s: %s\n", verb, apiErrorText(code, body))
	return exitRuntime
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func printBans(w io.Writer, body []byte, asJSON bool) int {
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
		fmt.Fprintf(w, "unexpected answer: %v\n", err)
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
