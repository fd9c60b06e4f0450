//go:build unix

package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"gatehouse/rules/testenv"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// screenshotDir is where TestDashboardBrowser saves a screenshot of each
// dashboard page (go test ./cmd/gatehouse -run Dashboard -args
// -screenshots DIR); by default a temporary directory. `make
// docs-screenshots` copies two of them to docs/ for the README.
var screenshotDir = flag.String("screenshots", "", "directory for the dashboard test's page screenshots (default: a temporary directory)")

// Hostile request parts the dashboard must show as text.
const (
	xssPath = "/old-admin/<script>alert(1)</script>"
	xssUA   = `Mozilla/5.0 <img src=x onerror=alert(2)> "><script>alert(3)</script>`
)

// browser is a headless Chromium driven over the DevTools protocol, with
// what it reported that a test must fail on: dialogs, script exceptions,
// console errors (Content-Security-Policy violations among them).
type browser struct {
	ctx      context.Context
	dialogs  atomic.Int64
	mu       sync.Mutex
	problems []string
	output   bytes.Buffer // the browser's stdout and stderr
}

// startBrowser starts Debian's chromium headless with a fresh profile.
// It is closed when the test ends, before the gateways the test started
// earlier stop.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	exe := testenv.Tool(t, "chromium")
	b := &browser{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 900),
		chromedp.CombinedOutput(&lockedWriter{w: &b.output, mu: &b.mu}),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			b.mu.Lock()
			t.Logf("chromium output:\n%s", b.output.String())
			b.mu.Unlock()
		}
	})
	// The first action starts the browser; it gets no deadline, which
	// would end the browser with it (see chromedp.Run).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b.ctx = ctx
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			b.dialogs.Add(1)
			b.note("dialog opened: " + e.Message)
			// Close it, or the page stays blocked. Listen's func must not
			// run commands itself.
			go func() {
				// The test fails on the dialog already; closing is best effort.
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}()
		case *runtime.EventExceptionThrown:
			b.note("script exception: " + e.ExceptionDetails.Text + " " + exceptionText(e.ExceptionDetails))
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError {
				b.note("console error: " + e.Entry.Text + " (" + e.Entry.URL + ")")
			}
		}
	})
	if err != nil {
		t.Fatalf("listen to chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the browser log: %v", err)
	}
	return b
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}

// lockedWriter serialises writes to w, which mu also guards for readers.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (b *browser) note(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

// check fails the test if the browser reported a problem.
func (b *browser) check(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("browser: %s", p)
	}
	b.problems = nil
}

// do runs actions with a deadline.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript predicate in the page until it holds.
func (b *browser) waitFor(t *testing.T, what, predicate string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 40*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("browser: waiting for %s: %v", what, err)
	}
}

// screenshot saves the whole page as name.png in the screenshot dir.
func (b *browser) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// probeAs sends GET path to www.test as client ip (through the trusted
// proxy 127.0.0.1) with a User-Agent, and returns the status.
func (g *gateway) probeAs(t *testing.T, ip, path, ua string) int {
	t.Helper()
	req, err := g.newRequest(t.Context(), http.MethodGet, "www.test", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", ip)
	req.Header.Set("User-Agent", ua)
	resp, _ := g.mustDo(t, req)
	return resp.StatusCode
}

// backgroundTraffic sends requests from a few clients until the test
// ends: pages, and now and then a probe, so the dashboard has traffic,
// offences and jail bans to show. Errors are ignored: it only decorates.
func backgroundTraffic(t *testing.T, g *gateway) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		probes := []string{"/wp-login.php", "/.env", "/phpmyadmin/", "/.git/config", "/cgi-bin/luci"}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ip, path := fmt.Sprintf("198.51.100.%d", 100+i%7), "/"
			if i%9 == 4 {
				// Eight clients probing in turn: each is banned by its
				// third probe, some three seconds in.
				ip, path = fmt.Sprintf("203.0.113.%d", 100+(i/9)%8), probes[(i/9)%len(probes)]
			}
			req, err := g.newRequest(context.Background(), http.MethodGet, "www.test", path, nil)
			if err != nil {
				return
			}
			req.Header.Set("X-Forwarded-For", ip)
			req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
			// Only decoration: a failed request changes nothing the test checks.
			_, _, _ = g.do(req)
		}
	})
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
}

// TestDashboardBrowser drives the dashboard in a real headless Chromium:
// sign in; watch a ban a probing client earned appear on the bans page
// without a reload; ban a network with the form; unban the client from
// the page and see it served again; see a hostile probe path and
// User-Agent shown as text with no dialog opening; and save a screenshot
// of each page.
func TestDashboardBrowser(t *testing.T) {
	dir := *screenshotDir
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	up := newEchoUpstream(t, "app")
	g := startGateway(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
trusted_proxies: [127.0.0.1/32]
admin:
  listen: "127.0.0.1:0"
  tokens:
    - name: ops
      token: sha256:d9310c002af91822beb0b3487d8b04f85bf6bf1f8a5496bff7d35fc7c5a29def
      scopes: [ui, bans:write]
hosts:
  - match: [www.test]
    upstreams: [%s]
probes:
  presets: [common, php, wordpress, phpmyadmin, secrets, vcs, cgi]
  paths: ["/old-admin/"]
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: 1h}
firewall: {backend: none}
`, up.URL()))
	backgroundTraffic(t, g)
	b := startBrowser(t)
	base := "http://" + g.adminAddr

	// Sign in.
	b.do(t, "open the dashboard", chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="login"] #token`)))
	b.screenshot(t, dir, "ui-login")
	b.do(t, "sign in",
		chromedp.SendKeys(chromedp.ID("token"), "ops-token"),
		chromedp.Click(chromedp.CSS(`section.login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="overview"] #live.on`)))
	g.waitLog(t, waitTimeout, "the sign-in audit line", func(log string) bool {
		return strings.Contains(log, `msg="ui sign-in" component=audit token=ops`) && !strings.Contains(log, "ops-token")
	})

	// A hostile client's probe, shown on the offences page as text.
	if code := g.probeAs(t, "198.51.100.23", xssPath, xssUA); code != http.StatusForbidden {
		t.Fatalf("hostile probe: status %d, want 403", code)
	}
	b.do(t, "open the offences page", chromedp.Navigate(base+"/ui/offences"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="offences"] #live.on`)))
	showsHostile := fmt.Sprintf(`(() => {
		const rows = Array.from(document.querySelectorAll("#offences tbody tr"));
		return rows.filter(r => r.querySelector("td.path") && r.querySelector("td.path").textContent === %q &&
			r.querySelector("td.ua").textContent === %q).length`, xssPath, xssUA)
	if n := eval[int](t, b, showsHostile+"})()"); n != 1 {
		t.Fatalf("the offences page shows the hostile probe %d times as text, want 1", n)
	}
	// The same, arriving live: app.js writes it as text too.
	if code := g.probeAs(t, "198.51.100.23", xssPath+"?again", xssUA); code != http.StatusForbidden {
		t.Fatalf("second hostile probe: status %d, want 403", code)
	}
	b.waitFor(t, "the live hostile offence", showsHostile+" >= 2})()")
	if n := eval[int](t, b, `document.querySelectorAll("main script, main img, main iframe").length`); n != 0 {
		t.Errorf("the offences page holds %d script or img elements: hostile text became markup", n)
	}
	b.screenshot(t, dir, "ui-offences")

	// The ban form.
	b.do(t, "ban a network with the form", chromedp.Navigate(base+"/ui/bans"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="bans"] #live.on`)),
		chromedp.SendKeys(chromedp.ID("ban-ip"), "192.0.2.0/24"),
		chromedp.SetValue(chromedp.ID("ban-for"), "6h"),
		chromedp.SendKeys(chromedp.ID("ban-reason"), "scanner network"),
		chromedp.Click(chromedp.CSS(`form.ban button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
	if msg := eval[string](t, b, `document.querySelector("p.flash").textContent`); !strings.HasPrefix(msg, "Banned 192.0.2.0/24 until") {
		t.Errorf("ban form result = %q", msg)
	}
	if code := g.probeAs(t, "192.0.2.44", "/", "curl"); code != http.StatusForbidden {
		t.Errorf("client in the banned network: status %d, want 403", code)
	}

	// A ban appears live: the page is not reloaded (its marker survives).
	b.do(t, "open the bans page", chromedp.Navigate(base+"/ui/bans"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="bans"] #live.on`)))
	eval[bool](t, b, `window.gatehouseTestMarker = true`)
	const client = "203.0.113.7"
	if code := g.probeAs(t, client, "/", "curl"); code != http.StatusOK {
		t.Fatalf("client before probing: status %d, want 200", code)
	}
	for i, path := range []string{"/wp-login.php", "/.env", "/phpmyadmin/"} {
		if code := g.probeAs(t, client, path, "curl"); code != http.StatusForbidden {
			t.Fatalf("probe %d %s: status %d, want 403", i, path, code)
		}
	}
	if code := g.probeAs(t, client, "/", "curl"); code != http.StatusForbidden {
		t.Fatalf("client after 3 probes: status %d, want 403 (banned)", code)
	}
	row := fmt.Sprintf(`tr[data-ip=%q]`, client)
	b.waitFor(t, "the new ban's row", fmt.Sprintf(`document.querySelector(%q) !== null`, row))
	if !eval[bool](t, b, `window.gatehouseTestMarker === true`) {
		t.Fatal("the bans page was reloaded to show the ban; want it live")
	}
	if jail := eval[string](t, b, fmt.Sprintf(`document.querySelector(%q).children[1].textContent`, row)); jail != "probes" {
		t.Errorf("the live row's jail = %q, want probes", jail)
	}
	b.screenshot(t, dir, "ui-bans")

	// Unban from the page.
	b.do(t, "unban from the page",
		chromedp.Click(chromedp.CSS(row+` button.unban`)),
		chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
	if msg := eval[string](t, b, `document.querySelector("p.flash").textContent`); msg != "Unbanned "+client+"." {
		t.Errorf("unban result = %q", msg)
	}
	if eval[bool](t, b, fmt.Sprintf(`document.querySelector(%q) !== null`, row)) {
		t.Error("the unbanned client still has a row")
	}
	if code := g.probeAs(t, client, "/", "curl"); code != http.StatusOK {
		t.Errorf("client after the unban: status %d, want 200", code)
	}
	g.waitLog(t, waitTimeout, "the form actions' audit lines", func(log string) bool {
		return strings.Contains(log, `msg="ui action" component=audit token=ops action=ban target=192.0.2.0/24 duration=6h reason="scanner network"`) &&
			strings.Contains(log, `msg="ui action" component=audit token=ops action=unban target=`+client)
	})

	b.do(t, "open the certificates and upstreams page", chromedp.Navigate(base+"/ui/system"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="system"] #live.on`)))
	if got := eval[string](t, b, `document.querySelector("main table:last-of-type tbody td:nth-child(2)").textContent`); got != up.URL() {
		t.Errorf("upstreams table shows %q, want %q", got, up.URL())
	}
	b.screenshot(t, dir, "ui-system")

	// The overview, its numbers live.
	b.do(t, "open the overview", chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="overview"] #live.on`)))
	eval[bool](t, b, `document.querySelector('[data-stat="rps"]').textContent = "-"; true`)
	b.waitFor(t, "a stats event", `document.querySelector('[data-stat="rps"]').textContent !== "-"`)
	if n := eval[string](t, b, `document.querySelector('[data-stat="hour_probe"]').textContent`); n == "0" {
		t.Error("the overview counts no probes in the last hour")
	}
	b.screenshot(t, dir, "ui-overview")

	if n := b.dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
	b.check(t)
	t.Logf("screenshots in %s", dir)
}
