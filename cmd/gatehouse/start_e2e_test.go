package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// startCfg is a config for serve whose state_dir is %s; it listens on
// listen.http %s.
const startCfg = `listen: {http: "%s"}
admin: {listen: "127.0.0.1:0"}
state_dir: %s
hosts:
  - match: [app.test]
    upstreams: [http://127.0.0.1:1]
`

// serveArgs are the arguments of a serve that must fail at start.
func serveArgs(path string) []string {
	args := []string{"serve", "-c", path, "--watch", "0"}
	if os.Geteuid() == 0 {
		args = append(args, "--allow-root")
	}
	return args
}

// TestStartFailures: a valid config that cannot start — the environment
// is at fault, not the file — is a runtime failure, exit 1, with a line
// saying what failed; an invalid config stays exit 2 ("serve invalid
// config" in TestCLI). proxy.New's failures were exit 2 before.
func TestStartFailures(t *testing.T) {
	t.Parallel()
	t.Run("state_dir cannot be created", func(t *testing.T) {
		t.Parallel()
		// The parent exists (so the config is valid) but is a file.
		parent := writeFile(t, "not-a-dir", "")
		path := writeFile(t, "gatehouse.yaml", fmt.Sprintf(startCfg, "127.0.0.1:0", filepath.Join(parent, "state")))
		_, stderr, code := runGatehouse(t, serveArgs(path)...)
		if code != 1 || !strings.Contains(stderr, "state_dir") {
			t.Errorf("serve with state_dir under a file = exit %d, stderr %q; want exit 1 naming state_dir", code, stderr)
		}
		if strings.Contains(stderr, "msg=listening") {
			t.Errorf("serve with state_dir under a file: stderr %q, want no listener", stderr)
		}
	})
	t.Run("bans.db locked by another gatehouse", func(t *testing.T) {
		t.Parallel()
		state := t.TempDir()
		yaml := fmt.Sprintf(startCfg, "127.0.0.1:0", state)
		startGateway(t, yaml)
		path := writeFile(t, "gatehouse.yaml", yaml)
		_, stderr, code := runGatehouse(t, serveArgs(path)...)
		if code != 1 || !strings.Contains(stderr, "locked by another process") {
			t.Errorf("second serve on one state_dir = exit %d, stderr %q; want exit 1, the store locked", code, stderr)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		path := writeFile(t, "gatehouse.yaml", fmt.Sprintf(startCfg, ln.Addr().String(), t.TempDir()))
		_, stderr, code := runGatehouse(t, serveArgs(path)...)
		if code != 1 || !strings.Contains(stderr, "listen.http "+ln.Addr().String()) {
			t.Errorf("serve on a port in use = exit %d, stderr %q; want exit 1 naming listen.http", code, stderr)
		}
	})
}
