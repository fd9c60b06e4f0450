package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"gatehouse/configs"
)

const healthcheckUsage = `usage: gatehouse healthcheck [-c FILE] [--admin URL]
asks a running gateway's admin listener (GET /readyz) whether it serves:
exit 0 when it answers 200, 1 otherwise (bad flags too: Docker reserves
exit code 2 of a health command), with the reason on stderr.
The admin listener is --admin, else $GATEHOUSE_ADMIN, else admin.listen of
-c FILE (default $GATEHOUSE_CONFIG), else that of the embedded demo config.
`

// healthcheckTimeout bounds the whole check, as container runtimes expect
// a health command to end on its own.
const healthcheckTimeout = 5 * time.Second

func healthcheckCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(stderr, healthcheckUsage) }
	path := configFlag(fs)
	admin := fs.String("admin", os.Getenv("GATEHOUSE_ADMIN"), "admin listener base `URL` (default $GATEHOUSE_ADMIN)")
	if !parseFlags(fs, args, stderr) {
		// Not 2, even for a usage error: Docker reserves exit code 2 of a
		// health command.
		return exitRuntime
	}
	base, err := healthcheckBase(*admin, *path)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse healthcheck:", err)
		return exitRuntime
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthcheckTimeout)
	defer cancel()
	if err := readyz(ctx, base); err != nil {
		fmt.Fprintln(stderr, "gatehouse healthcheck:", err)
		return exitRuntime
	}
	return exitOK
}

// healthcheckBase finds the admin listener as adminBase does, with the
// embedded demo config's admin.listen as the last default.
func healthcheckBase(admin, path string) (adminURL, error) {
	if admin == "" && path == "" {
		return adminFromConfig("embedded default.yaml", configs.Default)
	}
	return adminBase(admin, path)
}

// readyz GETs /readyz under base and returns nil on 200. A redirect is
// not followed: it is not the gateway saying it is ready.
func readyz(ctx context.Context, base adminURL) error {
	where := base.String() + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.at("/readyz"), nil)
	if err != nil {
		return err
	}
	resp, err := adminHTTP(0).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: no answer within %v", where, healthcheckTimeout)
		}
		return fmt.Errorf("%s: %w", where, err)
	}
	defer resp.Body.Close()
	// The body is a short status object; drained so the answer is complete.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d %s", where, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return nil
}
