package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// feedServer serves one list at /list, in whatever state the test puts
// it: a body, or a failure status.
type feedServer struct {
	srv    *httptest.Server
	body   atomic.Pointer[string]
	status atomic.Int32 // 0: 200 with body
	hits   atomic.Int64
	// apiKey, when set, is the X-Api-Key the server asks for (401
	// without it), as CrowdSec's LAPI does.
	apiKey string
}

func newFeedServer(t *testing.T, body, apiKey string) *feedServer {
	t.Helper()
	fs := &feedServer{apiKey: apiKey}
	fs.body.Store(&body)
	fs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.hits.Add(1)
		if fs.apiKey != "" && r.Header.Get("X-Api-Key") != fs.apiKey {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if s := fs.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, *fs.body.Load())
	}))
	t.Cleanup(fs.srv.Close)
	return fs
}

func (fs *feedServer) set(body string) { fs.body.Store(&body) }

// fireholList is a list in FireHOL's netset layout: a commented header,
// then one prefix or address per line.
func fireholList(entries ...string) string {
	var b strings.Builder
	b.WriteString(`#
# firehol_level1
#
# ipv4 hash:net ipset
#
# A firewall blacklist composed from IP lists, providing
# maximum protection with minimum false positives.
#
# Source File Date: Mon Dec  7 12:00:00 UTC 2026
#
0.0.0.0/8
224.0.0.0/3
`)
	for _, e := range entries {
		b.WriteString(e + "\n")
	}
	return b.String()
}

// spamhausList is Spamhaus' DROP in its JSON lines layout.
func spamhausList(cidrs ...string) string {
	var b strings.Builder
	for i, c := range cidrs {
		fmt.Fprintf(&b, `{"cidr":"%s","sblid":"SBL%d","rir":"ripencc"}`+"\n", c, 600000+i)
	}
	fmt.Fprintf(&b, `{"type":"metadata","timestamp":1765108800,"size":%d,"records":%d,"copyright":"(c) 2026 The Spamhaus Project SLU","terms":"https://www.spamhaus.org/drop/terms/"}`+"\n", b.Len(), len(cidrs))
	return b.String()
}

// TestFeeds: blocklist feeds from a local feed server (FireHOL and
// Spamhaus layouts) and a file refuse the clients they list, as resolved
// through a trusted proxy; allow wins; a changed list takes over; a
// broken download or an error page keeps the last good list, also
// across a restart without the feed server.
func TestFeeds(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	firehol := newFeedServer(t, fireholList("198.51.100.0/24", "100.127.0.0/16"), "")
	crowdsec := newFeedServer(t, `[{"duration":"3h59m","id":7,"origin":"crowdsec","scenario":"crowdsecurity/http-probing","scope":"Ip","type":"ban","value":"198.18.7.7"},`+
		`{"duration":"-1m","id":8,"origin":"crowdsec","scenario":"crowdsecurity/http-probing","scope":"Ip","type":"ban","value":"198.18.8.8"}]`, "bouncer-key-1")
	key := writeFile(t, "lapi.key", "bouncer-key-1\n")
	drop := newFeedServer(t, spamhausList("203.0.113.0/24", "2001:db8:dead::/48"), "")
	local := writeFile(t, "blocked.txt", "# ours\n198.51.101.5\n")
	state := t.TempDir()
	yaml := fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
state_dir: %s
trusted_proxies: [127.0.0.1]
allow: [198.51.100.77]
hosts:
  - match: [app.example.com]
    upstreams: [%s]
intel:
  feeds:
    - {name: firehol1, url: "%s/list", refresh: 1s}
    - {name: drop, url: "%s/list", format: spamhaus-drop-json, refresh: 1s, action: "403"}
    - {name: local, file: %s, action: 403}
    - {name: lapi, url: "%s/v1/decisions", format: crowdsec, api_key: "file:%s", refresh: 1s}
`, state, up.URL(), firehol.srv.URL, drop.srv.URL, local, crowdsec.srv.URL, key)
	g := startGateway(t, yaml)
	waitFor(t, "both url feeds loaded", func() bool {
		return g.metric(t, "gatehouse_feed_entries", "feed", "firehol1") == 4 && g.metric(t, "gatehouse_feed_entries", "feed", "drop") == 2 &&
			g.metric(t, "gatehouse_feed_entries", "feed", "lapi") == 1
	})
	status := func(client string) int {
		t.Helper()
		req, err := g.newRequest(t.Context(), http.MethodGet, "app.example.com", "/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", client)
		resp, _ := g.mustDo(t, req)
		return resp.StatusCode
	}
	for client, want := range map[string]int{
		"198.51.100.9":     403, // firehol1 drops; through a proxy that is a 403
		"100.127.3.4":      403,
		"203.0.113.5":      403, // drop
		"2001:db8:dead::1": 403,
		"198.51.101.5":     403, // local
		"198.18.7.7":       403, // lapi, fetched with its API key
		"198.18.8.8":       200, // lapi: a decision that has run out
		"198.51.100.77":    200, // listed, but in allow
		"198.51.101.6":     200,
		"2001:db8:beef::1": 200,
	} {
		if got := status(client); got != want {
			t.Errorf("client %s: %d, want %d", client, got, want)
		}
	}
	if n := g.metric(t, "gatehouse_feed_blocks_total", "feed", "firehol1"); n != 2 {
		t.Errorf("gatehouse_feed_blocks_total{feed=firehol1} = %v, want 2", n)
	}

	// A changed list replaces the old one.
	firehol.set(fireholList("100.64.0.0/10"))
	waitFor(t, "the changed firehol1 list in use", func() bool { return status("100.64.1.1") == 403 })
	if got := status("198.51.100.9"); got != 200 {
		t.Errorf("client 198.51.100.9 after it left the list: %d, want 200", got)
	}
	// The file feed follows its file.
	if err := os.WriteFile(local, []byte("198.51.101.6/32\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the changed file feed in use", func() bool { return status("198.51.101.6") == 403 })

	// A failing server and an error page served with 200 each keep the
	// last good list.
	for _, broken := range []func(){
		func() { firehol.status.Store(http.StatusInternalServerError) },
		func() { firehol.status.Store(0); firehol.set("<html><body>502 Bad Gateway</body></html>\n") },
	} {
		failures := g.metric(t, "gatehouse_feed_refresh_failures_total", "feed", "firehol1")
		broken()
		waitFor(t, "a failed refresh", func() bool {
			return g.metric(t, "gatehouse_feed_refresh_failures_total", "feed", "firehol1") > failures
		})
		if got := status("100.64.1.1"); got != 403 {
			t.Fatalf("after a broken download: client 100.64.1.1 gets %d, want 403 (the last good list)", got)
		}
	}
	if n := g.metric(t, "gatehouse_feed_entries", "feed", "firehol1"); n != 3 {
		t.Errorf("gatehouse_feed_entries{feed=firehol1} = %v after broken downloads, want 3", n)
	}

	// A restart with the feed server gone starts from the last good
	// copy in state_dir.
	g.stop()
	firehol.srv.Close()
	g = startGateway(t, yaml)
	if got := status("100.64.1.1"); got != 403 {
		t.Errorf("after a restart without the feed server: client 100.64.1.1 gets %d, want 403", got)
	}
	if copies, _ := filepath.Glob(filepath.Join(state, "feeds", "firehol1-*.txt")); len(copies) != 1 {
		t.Errorf("last good copies in state_dir: %v, want one", copies)
	}
}

// TestFeedsCheck: gatehouse check names a feed's mistakes with file and
// line, and exits 2.
func TestFeedsCheck(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "gatehouse.yaml", `hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:3000]
intel:
  feeds:
    - {name: FireHOL, url: "https://iplists.firehol.org/files/firehol_level1.netset"}
    - {name: local, file: /nonexistent/blocked.txt}
`)
	_, stderr, code := runGatehouse(t, "check", "-c", cfg)
	if code != 2 {
		t.Fatalf("check exit %d, want 2:\n%s", code, stderr)
	}
	for _, want := range []string{
		`gatehouse.yaml:6: intel.feeds[0].name: "FireHOL": write 1 to 16 characters`,
		`gatehouse.yaml:7: intel.feeds[1].file: open /nonexistent/blocked.txt: no such file or directory`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check output lacks %q:\n%s", want, stderr)
		}
	}
}
