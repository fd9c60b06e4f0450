package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	demoDashboard = regexp.MustCompile(`dashboard: (http://\S+/ui/)\n  sign in with the token (\S+) `)
	demoBansHint  = regexp.MustCompile(`gatehouse (bans list --admin \S+ --token-file \S+)\n`)
	csrfField     = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// TestDemoDashboard: `gatehouse serve --port N --admin-port M` runs the
// embedded demo on those ports and prints the dashboard's address and a
// token made for this run, with which one signs in; a second start gets
// another token.
func TestDemoDashboard(t *testing.T) {
	t.Parallel()
	first := startDemo(t)
	second := startDemo(t)
	if first.token == second.token {
		t.Errorf("two demo starts printed the same token %q", first.token)
	}

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: clientTimeout, Transport: &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	signIn := func(token string) *http.Response {
		t.Helper()
		_, page := get(first.ui + "login")
		m := csrfField.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no csrf field on the sign-in page:\n%s", page)
		}
		resp, err := c.PostForm(first.ui+"login", url.Values{"csrf": {m[1]}, "token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// The other run's token is not this run's.
	if resp := signIn(second.token); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("sign-in with another run's token = %d, want 401", resp.StatusCode)
	}
	if resp := signIn(first.token); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("sign-in with the printed token = %d → %q, want 303 → /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, body := get(first.ui); code != http.StatusOK || !strings.Contains(body, `data-page="overview"`) {
		t.Errorf("GET %s after sign-in = %d, want the overview page", first.ui, code)
	}
	// The banner's bans line works as printed.
	m := demoBansHint.FindStringSubmatch(first.banner)
	if m == nil {
		t.Fatalf("no bans hint with --token-file in the banner:\n%s", first.banner)
	}
	if out, errOut, code := runGatehouse(t, strings.Fields(m[1])...); code != 0 || !strings.Contains(out, "IP") {
		t.Errorf("gatehouse %s = exit %d, %q %q; want the (empty) ban table", m[1], code, out, errOut)
	}
	// The public listener is on --port.
	if resp, err := c.Get("http://" + first.http + "/"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET the demo on --port: %v, %v; want 200", resp, err)
	} else {
		resp.Body.Close()
	}
}

// runningDemo is one demo process, as its banner describes it.
type runningDemo struct {
	http, ui, token string
	banner          string
}

// startDemo runs `gatehouse serve` without a config on free ports and
// waits for its banner and listeners; the process is stopped at the end
// of the test.
func startDemo(t *testing.T) runningDemo {
	t.Helper()
	port, adminPort := freePort(t), freePort(t)
	for adminPort == port {
		adminPort = freePort(t)
	}
	args := []string{"serve", "--port", fmt.Sprint(port), "--admin-port", fmt.Sprint(adminPort)}
	if os.Geteuid() == 0 {
		args = append(args, "--allow-root")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, gatehouseBin, args...)
	cmd.Env = gatehouseEnv()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopTimeout
	out := newLogBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		// After SIGTERM (cmd.Cancel) Wait reports the cancellation; the
		// exit status is what counts.
		if err := <-exited; cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 0 {
			t.Errorf("demo exit after SIGTERM: %v, want status 0", err)
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", out)
		}
	})
	wantAdmin := fmt.Sprintf("listener=admin addr=127.0.0.1:%d", adminPort)
	deadline := time.Now().Add(startTimeout)
	for {
		text, changed := out.snapshot()
		if m := demoDashboard.FindStringSubmatch(text); m != nil && strings.Contains(text, wantAdmin) {
			if want := fmt.Sprintf("http://127.0.0.1:%d/ui/", adminPort); m[1] != want {
				t.Fatalf("banner dashboard URL = %q, want %q", m[1], want)
			}
			if strings.Count(text, m[2]) != 1 {
				t.Errorf("the token appears %d times in the output; want only in the banner's sign-in line", strings.Count(text, m[2]))
			}
			return runningDemo{http: fmt.Sprintf("127.0.0.1:%d", port), ui: m[1], token: m[2], banner: text}
		}
		select {
		case <-changed:
		case err := <-exited:
			t.Fatalf("demo exited before its banner: %v\n%s", err, text)
		case <-time.After(time.Until(deadline)):
			t.Fatalf("no dashboard banner and admin listener within %v:\n%s", startTimeout, text)
		}
	}
}

// TestDemoPortFlags: --port and --admin-port are for the embedded demo
// only, and must be two valid, different ports.
func TestDemoPortFlags(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "gatehouse.yaml", gatewayConfig("hosts:\n  - match: [a.test]\n    upstreams: [http://127.0.0.1:1]\n"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", cfg, "--port", "8081"}, "with -c FILE set listen.http and admin.listen in " + cfg},
		{[]string{"--port", "0"}, "--port 0 is not a port between 1 and 65535"},
		{[]string{"--admin-port", "70000"}, "--admin-port 70000 is not a port"},
		{[]string{"--port", "9000", "--admin-port", "9000"}, "--port and --admin-port must differ"},
		{[]string{"--port", "9901"}, "--port and --admin-port must differ"},
	} {
		_, stderr, code := runGatehouse(t, append([]string{"serve", "--allow-root"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "msg=listening") {
			t.Errorf("serve %s = %d, %q; want 2 and %q", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
	}
}
