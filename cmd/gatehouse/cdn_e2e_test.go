//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/rules/testenv"
)

// TestCDNClientIP runs gatehouse in a network namespace behind a "CDN"
// whose address (103.21.244.5) is inside Cloudflare's published ranges
// as shipped in the binary, and a direct client beside it: the CDN's
// CF-Connecting-IP names the client, the same header from the direct
// client is ignored. A url: list served inside the namespace makes a
// third address a trusted proxy when its content changes, keeps it when
// a download fails, and after a restart from its last good copy.
func TestCDNClientIP(t *testing.T) {
	testenv.Netns(t)
	p := newNetnsPair(t, 61)
	const cdnIP = "103.21.244.5"
	for _, args := range [][]string{
		{"-n", p.cli, "addr", "add", cdnIP + "/32", "dev", p.cliDev},
		{"-n", p.srv, "route", "add", cdnIP + "/32", "dev", p.srvDev},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}

	// The upstream and the list's server listen inside the server's
	// namespace, on its loopback.
	listen := func() net.Listener {
		var ln net.Listener
		if err := inNetns(p.srv, func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
			t.Fatal(err)
		}
		return ln
	}
	upLn, listLn := listen(), listen()
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "real=%s xff=%s cf=%q", r.Header.Get("X-Real-IP"), r.Header.Get("X-Forwarded-For"), r.Header.Get("Cf-Connecting-Ip"))
	})}
	var mu sync.Mutex
	list, listStatus := "10.231.61.200\n", http.StatusOK
	setList := func(body string, status int) {
		mu.Lock()
		list, listStatus = body, status
		mu.Unlock()
	}
	lists := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		body, status := list, listStatus
		mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, body)
	})}
	go up.Serve(upLn)
	go lists.Serve(listLn)
	t.Cleanup(func() { up.Close(); lists.Close() })

	listURL := "http://" + listLn.Addr().String() + "/lb.txt"
	state := filepath.Join(t.TempDir(), "state")
	cfg := writeFile(t, "gatehouse.yaml", fmt.Sprintf(`listen: {http: "%s:8080"}
state_dir: %s
trusted_proxies: [cloudflare, "url:%s"]
intel: {refresh: 1s}
hosts:
  - match: ["%s"]
    upstreams: [http://%s]
admin: {listen: "127.0.0.1:9901"}
log: {level: debug}
`, p.srvIP, state, listURL, p.srvIP, upLn.Addr()))

	out, err := exec.Command(gatehouseBin, "check", "-c", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v: %s", err, out)
	}
	for _, want := range []string{"cloudflare is trusted but listen.http", "trusted: cloudflare (snapshot 20"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	_, stop := serveInNetns(t, p.srv, cfg)
	waitFor(t, "gateway up", func() bool { return connects(p, p.cliIP) })

	cf := map[string]string{"CF-Connecting-IP": "198.51.100.77"}
	if got := getBodyFrom(t, p, cdnIP, cf); !strings.HasPrefix(got, "real=198.51.100.77 xff="+cdnIP+` cf=""`) {
		t.Errorf("through the CDN: upstream saw %q, want the client of CF-Connecting-IP, the CDN in X-Forwarded-For, no CF-Connecting-IP", got)
	}
	if got := getBodyFrom(t, p, p.cliIP, cf); !strings.HasPrefix(got, "real="+p.cliIP+" ") {
		t.Errorf("direct client sending CF-Connecting-IP: upstream saw %q, want the client itself", got)
	}

	// p.other is not on the list yet: its X-Forwarded-For is not
	// believed. The list changes: it is.
	xff := map[string]string{"X-Forwarded-For": "198.51.100.88"}
	if got := getBodyFrom(t, p, p.other, xff); !strings.HasPrefix(got, "real="+p.other+" ") {
		t.Errorf("proxy not on the url: list: upstream saw %q, want the proxy itself", got)
	}
	setList("10.231.61.200\n"+p.other+"\n", http.StatusOK)
	waitFor(t, "url: list refreshed", func() bool { return strings.HasPrefix(getBodyFrom(t, p, p.other, xff), "real=198.51.100.88 ") })

	// A failed download keeps the set.
	failures := func() float64 { return nsMetric(t, p, `gatehouse_intel_list_failures_total{list="url:`+listURL+`"}`) }
	before := failures()
	setList("<html>oops</html>", http.StatusInternalServerError)
	waitFor(t, "a failed refresh", func() bool { return failures() > before })
	if got := getBodyFrom(t, p, p.other, xff); !strings.HasPrefix(got, "real=198.51.100.88 ") {
		t.Errorf("after a failed download: upstream saw %q, want the list kept", got)
	}
	if n := nsMetric(t, p, `gatehouse_intel_list_entries{list="url:`+listURL+`"}`); n != 2 {
		t.Errorf("entries of the url: list = %v, want 2", n)
	}

	// A restart while the list's server still fails starts from the
	// last good copy.
	stop()
	serveInNetns(t, p.srv, cfg)
	waitFor(t, "gateway up again", func() bool { return connects(p, p.cliIP) })
	if got := getBodyFrom(t, p, p.other, xff); !strings.HasPrefix(got, "real=198.51.100.88 ") {
		t.Errorf("after a restart: upstream saw %q, want the last good copy in use", got)
	}
}

// getBodyFrom sends one GET / from src in the client namespace with
// headers h and returns the answer's body.
func getBodyFrom(t *testing.T, p *netnsPair, src string, h map[string]string) string {
	t.Helper()
	conn, err := dialFrom(p.cli, src, p.srvIP+":8080", 2*time.Second)
	if err != nil {
		t.Fatalf("GET from %s: %v", src, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", p.srvIP)
	for k, v := range h {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	io.WriteString(conn, b.String())
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET from %s: %v", src, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET from %s: %d %s", src, resp.StatusCode, body)
	}
	return string(body)
}

// nsMetric reads one sample from the admin listener inside the server's
// namespace; a missing sample is -1.
func nsMetric(t *testing.T, p *netnsPair, series string) float64 {
	t.Helper()
	// net/http would dial from a goroutine outside the namespace: the
	// request is written by hand on a connection made inside it.
	conn, err := dialFrom(p.srv, "", "127.0.0.1:9901", 2*time.Second)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9901\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	text := string(b)
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}
