//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests run the real gatehouse binary: TestMain builds it
// once (with -race when the tests run with -race, so data races in the
// gateway fail the test that provoked them), and every test starts its
// own process on 127.0.0.1:0 with its own config and upstreams.

// Bounds of every wait. They are deadlines for polling loops and waits on
// channels, never sleeps; generous, because a race-enabled binary under a
// parallel test run is slow.
const (
	startTimeout  = 20 * time.Second // process start until /readyz answers 200
	waitTimeout   = 10 * time.Second // a log line, a metric, a file line
	stopTimeout   = 15 * time.Second // SIGTERM until exit
	clientTimeout = 10 * time.Second // one request, body included
	pollInterval  = 10 * time.Millisecond
)

// gatehouseBin is the binary TestMain built; set once before any test runs.
var gatehouseBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gatehouse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "gatehouse")
	args := []string{"build", "-o", bin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n", strings.Join(args, " "), err)
		return 1
	}
	gatehouseBin = bin
	return m.Run()
}

// gatehouseEnv is the environment of every gatehouse process: no config
// from $GATEHOUSE_CONFIG, and no race detector pause at exit (a second per
// process, by default).
func gatehouseEnv() []string {
	race := "atexit_sleep_ms=0"
	if v := os.Getenv("GORACE"); v != "" {
		race = v + " " + race
	}
	return append(os.Environ(), "GATEHOUSE_CONFIG=", "GORACE="+race)
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// logBuffer collects a process's output. It is safe for concurrent use,
// and lets readers wait for new output without polling.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every Write
}

func newLogBuffer() *logBuffer {
	return &logBuffer{changed: make(chan struct{})}
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

func (b *logBuffer) String() string {
	s, _ := b.snapshot()
	return s
}

// snapshot returns the output so far and a channel closed by the next
// Write.
func (b *logBuffer) snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String(), b.changed
}

// gateway is one running gatehouse process.
type gateway struct {
	t         *testing.T
	cfgPath   string
	killed    bool   // ended by kill: no clean exit expected
	httpAddr  string // 127.0.0.1:port of listen.http
	httpsAddr string // 127.0.0.1:port of listen.https; "" without tls
	adminAddr string // 127.0.0.1:port of admin.listen
	cmd       *exec.Cmd
	cancel    context.CancelFunc // kills the process
	stderr    *logBuffer         // the gateway's own log
	stdout    *logBuffer         // the access log, unless log.access_file is set
	client    *http.Client

	exited  chan struct{} // closed when the process has exited
	exitErr error         // cmd.Wait's result; read after exited is closed
}

var listeningLine = regexp.MustCompile(`msg=listening listener=(http|https|admin) addr=(\S+)`)

// startGateway writes yaml to a config file in a fresh temporary directory,
// runs `gatehouse serve -c FILE --watch 0` (then args; as root without
// --user, --allow-root too) and returns once the gateway has
// logged both listening addresses and its /readyz answers 200. The process
// is stopped with SIGTERM when the test ends; it must then exit with 0, and
// its log is shown if the test failed.
func startGateway(t *testing.T, yaml string, args ...string) *gateway {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return startGatewayIn(t, "", cfgPath, args...)
}

// startGatewayIn is startGateway for a config file already written, with
// workDir as the process's working directory ("" for the test's), against
// which the config's relative paths resolve.
func startGatewayIn(t *testing.T, workDir, cfgPath string, args ...string) *gateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{
		t:       t,
		cfgPath: cfgPath,
		cancel:  cancel,
		stderr:  newLogBuffer(),
		stdout:  newLogBuffer(),
		client:  newClient(),
		exited:  make(chan struct{}),
	}
	args = append([]string{"serve", "-c", cfgPath, "--watch", "0"}, args...)
	if os.Geteuid() == 0 && !slices.Contains(args, "--user") {
		// gatehouse refuses to run as root without either; CI runs as root.
		args = append(args, "--allow-root")
	}
	g.cmd = exec.CommandContext(ctx, gatehouseBin, args...)
	g.cmd.Dir = workDir
	g.start(t)

	addrs := map[string]string{}
	g.waitLog(t, startTimeout, "both listening lines", func(log string) bool {
		for _, m := range listeningLine.FindAllStringSubmatch(log, -1) {
			addrs[m[1]] = m[2]
		}
		return (addrs["http"] != "" || strings.Contains(log, "msg=\"no hosts: no public listener")) && addrs["admin"] != ""
	})
	g.httpAddr, g.httpsAddr, g.adminAddr = addrs["http"], addrs["https"], addrs["admin"]

	g.waitReady(t)
	return g
}

// waitReady waits until the gateway's /readyz answers 200.
func (g *gateway) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		code, _, err := g.admin("/readyz")
		if err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz = %d, %v; want 200 within %v", code, err, startTimeout)
		}
		g.pause(t)
	}
}

// start starts g.cmd with g's output buffers and the test environment.
// When the test ends the process is stopped (see stop) and, if the test
// failed, its log shown.
func (g *gateway) start(t *testing.T) {
	t.Helper()
	g.cmd.Stdout, g.cmd.Stderr = g.stdout, g.stderr
	g.cmd.Env = gatehouseEnv()
	g.cmd.WaitDelay = 5 * time.Second // bounds the output copying after a kill
	if err := g.cmd.Start(); err != nil {
		g.cancel()
		t.Fatalf("start gatehouse: %v", err)
	}
	go func() {
		g.exitErr = g.cmd.Wait()
		close(g.exited)
	}()
	// Cleanups run last-registered first: stop the process, then show
	// its complete log.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gatehouse stderr:\n%s", g.stderr)
		}
	})
	t.Cleanup(g.stop)
}

// pause waits one poll interval, failing the test if the process exits
// meanwhile.
func (g *gateway) pause(t *testing.T) {
	t.Helper()
	timer := time.NewTimer(pollInterval)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-g.exited:
		t.Fatalf("gatehouse exited unexpectedly: %v", g.exitErr)
	}
}

// waitLog waits until match accepts the gateway's log, and returns the
// log. It fails the test at the deadline or when the process exits first.
func (g *gateway) waitLog(t *testing.T, timeout time.Duration, what string, match func(log string) bool) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		log, changed := g.stderr.snapshot()
		if match(log) {
			return log
		}
		select {
		case <-changed:
		case <-g.exited:
			if log := g.stderr.String(); match(log) {
				return log
			}
			t.Fatalf("gatehouse exited (%v) before logging %s", g.exitErr, what)
		case <-timer.C:
			t.Fatalf("gatehouse did not log %s within %v", what, timeout)
		}
	}
}

// stop sends SIGTERM unless the process has already exited, waits for it
// (killing it after stopTimeout) and checks that it exited with 0 and that
// the race detector, if on, found nothing.
func (g *gateway) stop() {
	t := g.t
	defer g.cancel()
	defer g.client.CloseIdleConnections()
	select {
	case <-g.exited:
	default:
		g.signal(syscall.SIGTERM)
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		select {
		case <-g.exited:
		case <-timer.C:
			t.Errorf("gatehouse did not exit within %v of SIGTERM; killing it", stopTimeout)
			g.cancel()
			<-g.exited
		}
	}
	if code := g.exitCode(); code != 0 && !g.killed {
		t.Errorf("gatehouse exit code = %d (%v), want 0", code, g.exitErr)
	}
	if strings.Contains(g.stderr.String(), "WARNING: DATA RACE") {
		t.Errorf("the race detector found a data race in gatehouse; see its log")
	}
}

// kill ends the gateway with SIGKILL, as a crash would, and waits for it.
func (g *gateway) kill(t *testing.T) {
	t.Helper()
	g.killed = true
	g.signal(syscall.SIGKILL)
	g.waitExit(t, stopTimeout)
}

// signal sends sig to the gateway process.
func (g *gateway) signal(sig os.Signal) {
	if err := g.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		g.t.Errorf("send %v to gatehouse: %v", sig, err)
	}
}

// exitCode is the process's exit code, -1 when a signal ended it. Call it
// after exited is closed.
func (g *gateway) exitCode() int {
	var ee *exec.ExitError
	switch {
	case g.exitErr == nil:
		return 0
	case errors.As(g.exitErr, &ee):
		return ee.ExitCode()
	}
	return -1
}

// waitExit waits up to timeout for the process to exit and returns its
// exit code.
func (g *gateway) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-g.exited:
		return g.exitCode()
	case <-timer.C:
		t.Fatalf("gatehouse did not exit within %v", timeout)
		return 0
	}
}

// newClient returns an HTTP client with its own transport (never
// http.DefaultClient): no proxy from the environment, keep-alive
// connections enough for the load tests, redirects not followed.
func newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
			DisableCompression:  true,
		},
		Timeout: clientTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// newRequest builds a request to the gateway's public listener for host
// (sent as the Host header) and path.
func (g *gateway) newRequest(ctx context.Context, method, host, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+g.httpAddr+path, body)
	if err != nil {
		return nil, err
	}
	req.Host = host
	return req, nil
}

// do sends req and returns the response with its body read and closed.
// It is safe to call from any goroutine.
func (g *gateway) do(req *http.Request) (*http.Response, []byte, error) {
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, body, fmt.Errorf("read body of %s %s: %w", req.Method, req.URL.Path, err)
	}
	return resp, body, nil
}

// mustDo is do for the test's own goroutine: any error fails the test.
func (g *gateway) mustDo(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := g.do(req)
	if err != nil {
		t.Fatalf("%s http://%s%s: %v", req.Method, req.Host, req.URL.RequestURI(), err)
	}
	return resp, body
}

// get sends GET path with the Host header host.
func (g *gateway) get(t *testing.T, host, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := g.newRequest(t.Context(), http.MethodGet, host, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g.mustDo(t, req)
}

// admin GETs path on the admin listener.
func (g *gateway) admin(path string) (int, string, error) {
	resp, err := g.client.Get("http://" + g.adminAddr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// metrics returns the admin listener's /metrics text.
func (g *gateway) metrics(t *testing.T) string {
	t.Helper()
	code, body, err := g.admin("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics = %d, %v; want 200", code, err)
	}
	return body
}

// metric returns the value of one series from /metrics, 0 when absent.
func (g *gateway) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, _ := metricValue(g.metrics(t), name, labels...)
	return v
}

// reloads returns gatehouse_config_reloads_total by result.
func (g *gateway) reloads(t *testing.T) (ok, failed float64) {
	t.Helper()
	text := g.metrics(t)
	ok, _ = metricValue(text, "gatehouse_config_reloads_total", "result", "ok")
	failed, _ = metricValue(text, "gatehouse_config_reloads_total", "result", "failed")
	return ok, failed
}

// reload replaces the config file with yaml, sends SIGHUP and waits until
// gatehouse_config_reloads_total counts the reload. It returns the result
// label that moved: "ok" or "failed".
func (g *gateway) reload(t *testing.T, yaml string) string {
	t.Helper()
	ok0, failed0 := g.reloads(t)
	if err := os.WriteFile(g.cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	g.signal(syscall.SIGHUP)
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, failed := g.reloads(t)
		switch {
		case ok+failed > ok0+failed0+1:
			t.Fatalf("reloads_total moved by %v after one SIGHUP, want 1", ok+failed-ok0-failed0)
		case ok > ok0:
			return "ok"
		case failed > failed0:
			return "failed"
		}
		if time.Now().After(deadline) {
			t.Fatalf("gatehouse_config_reloads_total did not change within %v of SIGHUP", waitTimeout)
		}
		g.pause(t)
	}
}

// metricValue finds the series name{labels} (labels as name, value pairs;
// it must carry exactly these) in a Prometheus text exposition.
func metricValue(text, name string, labels ...string) (float64, bool) {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		series, value := line[:sp], line[sp+1:]
		got := map[string]string{}
		if i := strings.IndexByte(series, '{'); i >= 0 {
			var ok bool
			if got, ok = parseLabels(series[i+1:]); !ok {
				continue
			}
			series = series[:i]
		}
		if series != name || len(got) != len(want) {
			continue
		}
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(value, 64)
		return f, err == nil
	}
	return 0, false
}

// parseLabels parses `a="x",b="y\"z"}` (the text after '{').
func parseLabels(s string) (map[string]string, bool) {
	m := map[string]string{}
	for {
		s = strings.TrimLeft(s, ", ")
		if strings.HasPrefix(s, "}") {
			return m, true
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return nil, false
		}
		key := s[:eq]
		s = s[eq+2:]
		var v strings.Builder
		for {
			if s == "" {
				return nil, false
			}
			c := s[0]
			s = s[1:]
			if c == '"' {
				break
			}
			if c == '\\' && s != "" {
				switch s[0] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(s[0])
				}
				s = s[1:]
				continue
			}
			v.WriteByte(c)
		}
		m[key] = v.String()
	}
}

// lineOf returns the 1-based line of the first line of text containing
// substr, or 0.
func lineOf(text, substr string) int {
	n := 0
	for line := range strings.Lines(text) {
		n++
		if strings.Contains(line, substr) {
			return n
		}
	}
	return 0
}

// waitFileLine polls the file at path until one of its lines satisfies
// match, and returns that line. Access log lines are flushed every 200ms.
func waitFileLine(t *testing.T, path string, match func(line string) bool) string {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var data []byte
	for {
		var err error
		data, err = os.ReadFile(path)
		if err == nil {
			for line := range strings.Lines(string(data)) {
				if line = strings.TrimSuffix(line, "\n"); match(line) {
					return line
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching line in %s within %v (err %v); file:\n%s", path, waitTimeout, err, data)
		}
		<-ticker.C
	}
}

// runGatehouse runs the binary with args (not serve with a working
// config: it must exit by itself) and returns its output and exit code.
func runGatehouse(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runGatehouseEnv(t, nil, args...)
}

// runGatehouseEnv is runGatehouse with extra environment variables.
func runGatehouseEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runGatehouseWith(t, env, nil, args...)
}

// runGatehouseWith is runGatehouse with env added to the environment
// and stdin (nil: none) as standard input.
func runGatehouseWith(t *testing.T, env []string, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), stopTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatehouseBin, args...)
	cmd.Env = append(gatehouseEnv(), env...)
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		code = ee.ExitCode()
	default:
		t.Fatalf("gatehouse %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String(), code
}

// writeFile writes data to name in a fresh temporary directory and returns
// the path.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ---- upstreams ----

// echo is what an echoUpstream answers: who it is and what it received.
type echo struct {
	Upstream string      `json:"upstream"`
	Method   string      `json:"method"`
	URI      string      `json:"uri"`
	Host     string      `json:"host"`
	Header   http.Header `json:"header"`
	Body     string      `json:"body"`
}

// echoUpstream is an httptest upstream on 127.0.0.1 that answers every
// request with an echo (JSON) and an X-Upstream header naming itself.
type echoUpstream struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64 // requests received
	// answered counts requests whose body was read whole and answered.
	answered atomic.Int64
}

func newEchoUpstream(t *testing.T, name string) *echoUpstream {
	t.Helper()
	u := &echoUpstream{name: name}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serveHTTP))
	t.Cleanup(u.srv.Close)
	return u
}

// URL is the upstream's base URL for a config.
func (u *echoUpstream) URL() string { return u.srv.URL }

func (u *echoUpstream) serveHTTP(w http.ResponseWriter, r *http.Request) {
	u.hits.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	u.answered.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Upstream", u.name)
	// The test reads the answer; a failed write shows up there.
	_ = json.NewEncoder(w).Encode(echo{
		Upstream: u.name,
		Method:   r.Method,
		URI:      r.RequestURI,
		Host:     r.Host,
		Header:   r.Header,
		Body:     string(body),
	})
}

// decodeEcho parses an echoUpstream's answer.
func decodeEcho(t *testing.T, body []byte) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("upstream answer is not an echo: %v: %q", err, body)
	}
	return e
}

// newUpstream is an httptest upstream on 127.0.0.1 serving h.
func newUpstream(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// refusingUpstream returns the URL of a 127.0.0.1 port that refuses every
// connection: a TCP socket is bound to it but never listens, so the kernel
// answers each SYN with a reset, and no other listener (of this or a
// parallel test) can take the port while the test runs.
func refusingUpstream(t *testing.T) string {
	t.Helper()
	syscall.ForkLock.RLock() // no exec may inherit fd before CloseOnExec
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind 127.0.0.1:0: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// ---- WebSocket (RFC 6455), just enough to prove the tunnel ----

// WebSocket opcodes (RFC 6455 §5.2).
const (
	wsText   = 0x1
	wsBinary = 0x2
	wsClose  = 0x8
)

// wsAccept is the Sec-WebSocket-Accept value for key (RFC 6455 §4.2.2).
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsNewKey returns a random Sec-WebSocket-Key.
func wsNewKey() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// wsWriteFrame writes one final frame. Clients mask their frames and
// servers must not (RFC 6455 §5.1).
func wsWriteFrame(w io.Writer, opcode byte, payload []byte, mask bool) error {
	hdr := []byte{0x80 | opcode, 0}
	var maskBit byte
	if mask {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr[1] = maskBit | byte(n)
	case n <= 0xffff:
		hdr[1] = maskBit | 126
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr[1] = maskBit | 127
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	data := payload
	if mask {
		var key [4]byte
		rand.Read(key[:])
		hdr = append(hdr, key[:]...)
		data = make([]byte, len(payload))
		for i, c := range payload {
			data[i] = c ^ key[i%4]
		}
	}
	_, err := w.Write(append(hdr, data...))
	return err
}

// wsReadFrame reads one frame, unmasking its payload, and reports whether
// it was final and masked. Payloads are limited to 1 MiB.
func wsReadFrame(r io.Reader) (opcode byte, payload []byte, fin, masked bool, err error) {
	var hdr [2]byte
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, false, false, err
	}
	fin, opcode, masked = hdr[0]&0x80 != 0, hdr[0]&0x0f, hdr[1]&0x80 != 0
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err = io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, false, false, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err = io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, false, false, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > 1<<20 {
		return 0, nil, false, false, fmt.Errorf("websocket frame of %d bytes is too large", n)
	}
	var key [4]byte
	if masked {
		if _, err = io.ReadFull(r, key[:]); err != nil {
			return 0, nil, false, false, err
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(r, payload); err != nil {
		return 0, nil, false, false, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return opcode, payload, fin, masked, nil
}

// wsEchoUpstream performs the RFC 6455 server handshake by hijacking the
// connection, then echoes every data frame back unmasked until a close
// frame, which it answers. It counts handshakes in hits and reports frames
// that arrive unmasked on badFrames.
type wsEchoUpstream struct {
	srv       *httptest.Server
	hits      atomic.Int64
	badFrames atomic.Int64
}

func newWSEchoUpstream(t *testing.T) *wsEchoUpstream {
	t.Helper()
	u := &wsEchoUpstream{}
	u.srv = newUpstream(t, http.HandlerFunc(u.serveHTTP))
	return u
}

func (u *wsEchoUpstream) serveHTTP(w http.ResponseWriter, r *http.Request) {
	u.hits.Add(1)
	key := r.Header.Get("Sec-WebSocket-Key")
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" ||
		r.Header.Get("Sec-WebSocket-Version") != "13" {
		http.Error(w, "not a websocket handshake", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "hijack: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	// Bounds the echo loop if the test leaves the connection open.
	if err := conn.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
		return
	}
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(key))
	if brw.Flush() != nil {
		return
	}
	for {
		op, payload, _, masked, err := wsReadFrame(brw.Reader)
		if err != nil {
			return
		}
		if !masked {
			u.badFrames.Add(1)
		}
		if wsWriteFrame(conn, op, payload, false) != nil || op == wsClose {
			return
		}
	}
}

// wsHandshake dials the gateway, sends a WebSocket upgrade request for
// host and reads the answer. The caller owns conn; frames after a 101 are
// read from br, which may already hold some.
func (g *gateway) wsHandshake(t *testing.T, host, key string) (resp *http.Response, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", g.httpAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial gateway: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	req := "GET /chat HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("write upgrade request: %v", err)
	}
	br = bufio.NewReader(conn)
	resp, err = http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	return resp, conn, br
}

// gatewayConfig returns a config binding both listeners to 127.0.0.1:0,
// followed by rest (hosts and any other sections).
func gatewayConfig(rest string) string {
	return "listen:\n  http: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n" + rest
}

// waitMetric polls /metrics until the series reaches want. Counters move
// when a request is logged, which may be just after the client has its
// answer.
func (g *gateway) waitMetric(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := g.metric(t, name, labels...)
		if got == want {
			return
		}
		if got > want || time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		g.pause(t)
	}
}
