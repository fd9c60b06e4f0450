package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"gatehouse/configs"
	"gatehouse/proxy/config"
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

// healthcheckBase finds the admin listener's base URL: the --admin flag or
// $GATEHOUSE_ADMIN, else admin.listen of the config file, else of the
// embedded demo config.
func healthcheckBase(admin, path string) (string, error) {
	if admin != "" {
		base := strings.TrimRight(admin, "/")
		if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("--admin %q is not an http(s) URL", admin)
		}
		return base, nil
	}
	name, data := "embedded default.yaml", configs.Default
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return "", fmt.Errorf("read config: %w", err)
		}
		name = path
	}
	listen, err := config.AdminListen(name, data)
	if err != nil {
		return "", err
	}
	if listen == "off" {
		return "", fmt.Errorf("%s: admin.listen is off; the health check needs the admin listener (or --admin URL)", name)
	}
	return "http://" + dialAddr(listen), nil
}

// dialAddr turns a listen address into one to connect to: a wildcard or
// missing host becomes loopback of the same family.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen // the request then fails and says so
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// readyz GETs base/readyz and returns nil on 200.
func readyz(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return err
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s/readyz: no answer within %v", base, healthcheckTimeout)
		}
		return fmt.Errorf("%s/readyz: %w", base, err)
	}
	defer resp.Body.Close()
	// The body is a short status object; drained so the answer is complete.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/readyz answered %d %s", base, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return nil
}
