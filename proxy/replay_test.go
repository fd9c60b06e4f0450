package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"gatehouse/proxy/config"
)

const replayConfig = `listen: {http: "127.0.0.1:0"}
hosts:
  - match: [media.example.com]
    upstreams: [http://127.0.0.1:1]
    hotlink: {paths: ["/videos/"], allow: [none, example.com], jail: hotlink}
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
probes: {presets: [wordpress, secrets, vcs]}
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: 1h}
  hotlink: {maxretry: 2, findtime: 1m, bantime: 10m}
admin: {listen: "off"}
`

func mustConfig(t testing.TB, yaml string) *config.File {
	t.Helper()
	cfg, err := config.Parse("replay.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func combined(ip string, at time.Time, target, referer string) string {
	if referer == "" {
		referer = "-"
	}
	return fmt.Sprintf("%s - - [%s] \"GET %s HTTP/1.1\" 200 10 \"%s\" \"test\"\n", ip, at.Format("02/Jan/2006:15:04:05 -0700"), target, referer)
}

func TestReplayLog(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var log strings.Builder
	// 203.0.113.1 probes three times within findtime: banned at the
	// third; its next request falls in the ban.
	log.WriteString(combined("203.0.113.1", t0, "/wp-login.php", ""))
	log.WriteString(combined("203.0.113.1", t0.Add(time.Minute), "/.env", ""))
	log.WriteString(combined("203.0.113.1", t0.Add(2*time.Minute), "/.git/config", ""))
	log.WriteString(combined("203.0.113.1", t0.Add(3*time.Minute), "/index.html", ""))
	// 203.0.113.2 probes three times, but spread beyond findtime.
	log.WriteString(combined("203.0.113.2", t0, "/wp-login.php", ""))
	log.WriteString(combined("203.0.113.2", t0.Add(11*time.Minute), "/wp-login.php", ""))
	log.WriteString(combined("203.0.113.2", t0.Add(22*time.Minute), "/wp-login.php", ""))
	// Hotlinks (combined has no host: the first host with hotlink rules).
	log.WriteString(combined("198.51.100.7", t0, "/videos/a.mp4", "https://evil.test/"))
	log.WriteString(combined("198.51.100.7", t0.Add(time.Second), "/videos/b.mp4", "https://example.com/"))
	log.WriteString(combined("198.51.100.7", t0.Add(2*time.Second), "/videos/c.mp4", "https://evil.test/x"))
	// An unsafe path, garbage, a blank line, a JSON line for www (no
	// hotlink rules there).
	log.WriteString(combined("192.0.2.1", t0, "/%2e%2e/etc/passwd", ""))
	log.WriteString("not a log line\n\n")
	log.WriteString(`{"time":"2026-11-25T10:00:00Z","client_ip":"192.0.2.9","host":"www.example.com","method":"GET","path":"/videos/x.mp4","status":200,"referer":"https://evil.test/"}` + "\n")

	var matches bytes.Buffer
	rep, err := ReplayLog(t.Context(), mustConfig(t, replayConfig), strings.NewReader(log.String()), ReplayOptions{Matches: &matches})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lines != 13 || rep.Unparsed != 1 || rep.Unsafe != 1 || rep.WhileBan != 1 {
		t.Errorf("lines %d, unparsed %d, unsafe %d, while banned %d, want 13, 1, 1, 1", rep.Lines, rep.Unparsed, rep.Unsafe, rep.WhileBan)
	}
	probes := 0
	for _, n := range rep.Probes {
		probes += n
	}
	// The unsafe path is an offence too, as the gateway's Hygiene reports
	// it.
	if probes != 6 || rep.Offences["probes"] != 7 {
		t.Errorf("probe matches %d (%v), offences %d, want 6 and 7 (the unsafe path too)", probes, rep.Probes, rep.Offences["probes"])
	}
	if rep.Hotlinks["media.example.com /videos/"] != 2 || len(rep.Hotlinks) != 1 {
		t.Errorf("hotlinks = %v, want 2 for media.example.com /videos/", rep.Hotlinks)
	}
	if len(rep.Bans) != 2 {
		t.Fatalf("bans = %+v, want 2", rep.Bans)
	}
	if b := rep.Bans[0]; b.Prefix.String() != "203.0.113.1/32" || b.Jail != "probes" || !b.At.Equal(t0.Add(2*time.Minute)) ||
		!b.Until.Equal(t0.Add(2*time.Minute+time.Hour)) {
		t.Errorf("first ban = %+v, want 203.0.113.1 by probes at 10:02 for 1h", b)
	}
	if b := rep.Bans[1]; b.Prefix.String() != "198.51.100.7/32" || b.Jail != "hotlink" {
		t.Errorf("second ban = %+v, want 198.51.100.7 by hotlink", b)
	}
	if n := strings.Count(matches.String(), "\n"); n != 9 {
		t.Errorf("matches listed %d lines, want 9 (6 probes, 2 hotlinks, 1 unsafe):\n%s", n, matches.String())
	}
}

// logGenerator streams n access log lines without holding them: every
// 10th line is a probe from one of 1000 scanners, the rest are clean
// requests from 50,000 clients.
type logGenerator struct {
	n, i int
	t0   time.Time
	buf  []byte
}

func (g *logGenerator) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.i < g.n {
		at := g.t0.Add(time.Duration(g.i) * time.Millisecond)
		if g.i%10 == 0 {
			s := g.i / 10 % 1000
			g.buf = append(g.buf, combined(fmt.Sprintf("10.9.%d.%d", s/256, s%256), at, "/wp-login.php", "")...)
		} else {
			c := g.i % 50000
			g.buf = append(g.buf, combined(fmt.Sprintf("10.1.%d.%d", c/256, c%256), at, "/static/app.js", "")...)
		}
		g.i++
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[:copy(g.buf, g.buf[n:])]
	return n, nil
}

// TestReplayMillionLines: counts are exact and memory stays flat while a
// 1,000,000-line log streams through.
func TestReplayMillionLines(t *testing.T) {
	t.Parallel()
	const lines = 1_000_000
	cfg := mustConfig(t, replayConfig)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var peak uint64
	gen := &logGenerator{n: lines, t0: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}
	rep, err := ReplayLog(context.Background(), cfg, gen, ReplayOptions{Progress: func(int64) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if rep.Lines != lines || rep.Unparsed != 0 {
		t.Errorf("lines %d, unparsed %d, want %d, 0", rep.Lines, rep.Unparsed, lines)
	}
	// Each scanner probes every 10 s of log time (1000 scanners, one probe
	// per 10 lines, 1 ms per line): three probes within findtime ban it
	// for an hour, longer than the log; its later probes fall in the ban.
	if len(rep.Bans) != 1000 {
		t.Errorf("bans = %d, want one per scanner (1000)", len(rep.Bans))
	}
	probes := 0
	for _, n := range rep.Probes {
		probes += n
	}
	if probes != 3000 || probes+rep.WhileBan != lines/10 {
		t.Errorf("probe matches %d, lines while banned %d, want 3000 and %d in all", probes, rep.WhileBan, lines/10)
	}
	// Flat: the heap stays within a small bound however long the log.
	if peak > before.HeapInuse+64<<20 {
		t.Errorf("heap in use peaked at %d MiB (from %d MiB), want it flat", peak>>20, before.HeapInuse>>20)
	}
}

func BenchmarkReplay(b *testing.B) {
	cfg := mustConfig(b, replayConfig)
	const lines = 100_000
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReplayLog(context.Background(), cfg, &logGenerator{n: lines, t0: time.Unix(0, 0)}, ReplayOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// combinedStatus is combined with a status of its own.
func combinedStatus(ip string, at time.Time, target string, status int) string {
	return fmt.Sprintf("%s - - [%s] \"GET %s HTTP/1.1\" %d 10 \"-\" \"test\"\n", ip, at.Format("02/Jan/2006:15:04:05 -0700"), target, status)
}

// TestReplayRuleLabels: a probes.paths pattern and a hotlink pattern are
// named by their text, never by their index.
func TestReplayRuleLabels(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, `listen: {http: "127.0.0.1:0"}
hosts:
  - match: [media.example.com]
    upstreams: [http://127.0.0.1:1]
    hotlink: {paths: ["/videos/", "*.jpg"], allow: [none]}
probes: {presets: [vcs], paths: ["/old-admin/", "re:^/cgi-[0-9]+"]}
admin: {listen: "off"}
`)
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	log := combined("192.0.2.1", t0, "/old-admin/x", "") +
		combined("192.0.2.1", t0, "/cgi-12/run", "") +
		combined("192.0.2.1", t0, "/.git/HEAD", "") +
		combined("192.0.2.2", t0, "/img/a.JPG", "https://evil.test/") +
		combined("192.0.2.2", t0, "/videos/a.mp4", "https://evil.test/")
	rep, err := ReplayLog(t.Context(), cfg, strings.NewReader(log), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"paths:/old-admin/", "paths:re:^/cgi-[0-9]+", "vcs:**/.git"} {
		if rep.Probes[want] != 1 {
			t.Errorf("probe matches = %v, want 1 for %q", rep.Probes, want)
		}
	}
	for _, want := range []string{"media.example.com *.jpg", "media.example.com /videos/"} {
		if rep.Hotlinks[want] != 1 {
			t.Errorf("hotlinks = %v, want 1 for %q", rep.Hotlinks, want)
		}
	}
}

// TestReplayAuthJail: a 401 in the log on a path under a host's basic
// auth is an offence for the auth jail, as the gateway counts a failed
// login; a 401 elsewhere (the upstream's own) is not.
func TestReplayAuthJail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := dir + "/users"
	if err := os.WriteFile(users, []byte("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := mustConfig(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:1]
    basic_auth: {htpasswd: %s, paths: [/admin/]}
jails:
  auth: {maxretry: 3, findtime: 1m, bantime: 1h}
admin: {listen: "off"}
`, users))
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var log strings.Builder
	for i := range 3 {
		log.WriteString(combinedStatus("198.51.100.1", t0.Add(time.Duration(i)*time.Second), "/admin/", 401))
	}
	log.WriteString(combinedStatus("198.51.100.1", t0.Add(5*time.Second), "/", 200))
	// The upstream's own 401s, outside basic_auth.paths: not counted.
	for i := range 3 {
		log.WriteString(combinedStatus("198.51.100.2", t0.Add(time.Duration(i)*time.Second), "/api/me", 401))
	}
	rep, err := ReplayLog(t.Context(), cfg, strings.NewReader(log.String()), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Auth["app.example.com"] != 3 || rep.Offences["auth"] != 3 {
		t.Errorf("auth = %v, offences %v, want 3 for app.example.com", rep.Auth, rep.Offences)
	}
	if len(rep.Bans) != 1 || rep.Bans[0].Jail != "auth" || rep.Bans[0].Prefix.String() != "198.51.100.1/32" || rep.WhileBan != 1 {
		t.Errorf("bans = %+v, while banned %d, want 198.51.100.1 banned by auth, then one line refused", rep.Bans, rep.WhileBan)
	}
}

// TestReplayFlood: a flood jail's token bucket runs on the log's clock:
// a burst over it is refused with 429 and the refusals ban.
func TestReplayFlood(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, `listen: {http: "127.0.0.1:0"}
hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
allow: [192.0.2.0/24]
jails:
  flood: {rate: 1, burst: 5, maxretry: 3, findtime: 1m, bantime: 1h}
admin: {listen: "off"}
`)
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var log strings.Builder
	// 12 requests in one second: 5 pass, the 6th, 7th and 8th are
	// refused and ban, the other 4 fall in the ban.
	for range 12 {
		log.WriteString(combined("203.0.113.5", t0, "/style.css", ""))
	}
	// One request a second for a minute stays within the rate.
	for i := range 60 {
		log.WriteString(combined("203.0.113.6", t0.Add(time.Duration(i)*time.Second), "/", ""))
	}
	// An allowed client is never limited.
	for range 12 {
		log.WriteString(combined("192.0.2.7", t0, "/", ""))
	}
	rep, err := ReplayLog(t.Context(), cfg, strings.NewReader(log.String()), ReplayOptions{Top: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Flood["flood"] != 3 || rep.WhileBan != 4 || len(rep.Bans) != 1 || rep.Bans[0].Prefix.String() != "203.0.113.5/32" {
		t.Errorf("flood %v, while banned %d, bans %+v, want 3 refusals, 4 while banned, 203.0.113.5 banned", rep.Flood, rep.WhileBan, rep.Bans)
	}
	if len(rep.TopClients) != 1 || rep.TopClients[0].Refused != 7 || rep.TopClients[0].Offences != 3 {
		t.Errorf("top clients = %+v, want 203.0.113.5 alone with 7 refused, 3 offences", rep.TopClients)
	}
}

// TestReplayTopOverflow: the top table stays within its capacity and
// keeps the heavy hitters when more clients are refused than it holds.
func TestReplayTopOverflow(t *testing.T) {
	t.Parallel()
	top := newClientTop(10)
	heavy := netip.MustParsePrefix("203.0.113.1/32")
	for i := range 1000 {
		top.add(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32), 1, 0)
		if i%10 == 0 {
			top.add(heavy, 1, 1)
		}
	}
	list, full := top.list(3)
	if !full || len(top.index) != 10 || len(top.entries.items) != 10 {
		t.Fatalf("full %v, %d indexed, %d entries, want a full table of 10", full, len(top.index), len(top.entries.items))
	}
	if list[0].Prefix != heavy || list[0].Refused-list[0].Over > 100 || list[0].Refused < 100 {
		t.Errorf("top = %+v, want %s first with 100 refusals within its bound", list, heavy)
	}
	for i, e := range top.entries.items {
		if top.index[e.Prefix] != i {
			t.Fatalf("index of %s = %d, want %d", e.Prefix, top.index[e.Prefix], i)
		}
	}
}

// TestReplayInputs: a gzip log is read by its magic bytes whatever its
// name, logs are sorted by their first line, and Read carries bans
// from one log into the next.
func TestReplayInputs(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(combined("203.0.113.1", t0, "/.env", "") + combined("203.0.113.1", t0.Add(time.Second), "/.git/config", "")))
	zw.Close()
	older, err := NewReplayInput("access.log.2", bytes.NewReader(gz.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	newer, err := NewReplayInput("access.log", strings.NewReader("garbage\n"+
		combined("203.0.113.1", t0.Add(time.Minute), "/.env", "")+combined("203.0.113.1", t0.Add(2*time.Minute), "/", "")))
	if err != nil {
		t.Fatal(err)
	}
	ins := []*ReplayInput{newer, older}
	SortReplayInputs(ins)
	if ins[0] != older || !older.Gzip || newer.Gzip || !newer.Start.Equal(t0.Add(time.Minute)) {
		t.Fatalf("sorted %s, %s (gzip %v, %v; start of the newer %v), want access.log.2 (gzip) first", ins[0].Name, ins[1].Name, ins[0].Gzip, ins[1].Gzip, newer.Start)
	}
	p, err := NewReplay(mustConfig(t, replayConfig), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][2]int{{2, 0}, {3, 1}} {
		lines, unparsed, err := p.Read(t.Context(), ins[i])
		if err != nil || lines != want[0] || unparsed != want[1] {
			t.Errorf("Read(%s) = %d, %d, %v, want %d lines, %d unparsed", ins[i].Name, lines, unparsed, err, want[0], want[1])
		}
	}
	rep := p.Report()
	if len(rep.Bans) != 1 || rep.WhileBan != 1 || rep.Lines != 5 {
		t.Errorf("bans %+v, while banned %d, lines %d, want the third probe (second log) to ban and the next line refused", rep.Bans, rep.WhileBan, rep.Lines)
	}
}

// browserLog is a browser's visit: pages 10 s apart, each a page and 12
// stylesheets in the same second, and a login at the end.
func browserLog(ip string, t0 time.Time, pages int) string {
	var b strings.Builder
	for i := range pages {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		b.WriteString(combined(ip, at, fmt.Sprintf("/page/%d", i), ""))
		for j := range 12 {
			b.WriteString(combined(ip, at, fmt.Sprintf("/css/%d.css", j), ""))
		}
	}
	b.WriteString(combined(ip, t0.Add(time.Duration(pages)*10*time.Second), "/login", ""))
	return b.String()
}

// TestReplayLimitScope: a login limit (1r/s, burst 5) on the /login
// route refuses none of a browser's page loads; the same limit on the
// whole host refuses 7 of every 13 requests and its jail bans the
// browser at once: the replay shows the widened rule before it goes
// live.
func TestReplayLimitScope(t *testing.T) {
	t.Parallel()
	const base = `listen: {http: "127.0.0.1:0"}
limits:
  rates:
    login: {rate: 1r/s, burst: 5, jail: login}
jails:
  login: {maxretry: 5, findtime: 1m, bantime: 1h}
admin: {listen: "off"}
hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:1]
`
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	log := browserLog("198.51.100.20", t0, 20)
	for _, tc := range []struct {
		name              string
		yaml              string
		refused, delayed  int
		bans, whileBanned int
	}{
		{name: "on the login route", yaml: base + "    routes:\n      - {paths: [/login], limit: login}\n"},
		// Page 1: 13 requests in one second; 6 pass (5 of them late),
		// the 7th to the 11th are refused, the fifth refusal bans and
		// the rest of the visit is refused from memory.
		{name: "on the whole host", yaml: base + "    limit: login\n", refused: 5, delayed: 5, bans: 1, whileBanned: 20*13 + 1 - 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, err := ReplayLog(t.Context(), mustConfig(t, tc.yaml), strings.NewReader(log), ReplayOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Limits["login"] != tc.refused || rep.Delayed["login"] != tc.delayed || len(rep.Bans) != tc.bans || rep.WhileBan != tc.whileBanned {
				t.Errorf("refused %v, delayed %v, bans %+v, while banned %d; want %d, %d, %d bans, %d",
					rep.Limits, rep.Delayed, rep.Bans, rep.WhileBan, tc.refused, tc.delayed, tc.bans, tc.whileBanned)
			}
		})
	}
}

// TestReplayRoutes: routes choose their policy as the gateway does:
// access lists, fixed answers, basic auth switched off, a route's own
// limit, a host's own probes, and a path whose readings disagree.
func TestReplayRoutes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := dir + "/users"
	if err := os.WriteFile(users, []byte("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := mustConfig(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
limits:
  rates:
    api: {rate: 2r/s, burst: 1, delay: nodelay}
jails:
  admin: {maxretry: 2, findtime: 1m, bantime: 1h}
probes: {presets: [wordpress]}
admin: {listen: "off"}
hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:1]
    basic_auth: {htpasswd: %s}
    jail: admin # for access; the respond route below does not count
    routes:
      - {paths: [/admin/], access: ["allow 10.0.0.0/8", "deny all"], jail: admin}
      - {paths: [/old/], respond: {status: 410}}
      - {paths: [/healthz], basic_auth: off}
      - {paths: [/api/], limit: api}
  - match: [blog.example.com]
    upstreams: [http://127.0.0.1:1]
    probes: off
`, users))
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	json := func(ip, host, path string, status int, at time.Time) string {
		return fmt.Sprintf(`{"time":%q,"client_ip":%q,"host":%q,"method":"GET","path":%q,"status":%d}`+"\n", at.Format(time.RFC3339Nano), ip, host, path, status)
	}
	var log strings.Builder
	log.WriteString(json("10.1.2.3", "app.example.com", "/admin/", 200, t0))                      // allowed
	log.WriteString(json("203.0.113.4", "app.example.com", "/admin/x", 200, t0))                  // denied, offence
	log.WriteString(json("203.0.113.4", "app.example.com", "/admin/y", 200, t0))                  // denied, offence: banned
	log.WriteString(json("203.0.113.4", "app.example.com", "/", 200, t0))                         // while banned
	log.WriteString(json("192.0.2.5", "app.example.com", "/old/page", 404, t0))                   // respond
	log.WriteString(json("192.0.2.5", "app.example.com", "/healthz", 401, t0))                    // no auth there
	log.WriteString(json("192.0.2.5", "app.example.com", "/private", 401, t0))                    // the host's auth
	log.WriteString(json("192.0.2.6", "app.example.com", "/api/a", 200, t0))                      // passes
	log.WriteString(json("192.0.2.6", "app.example.com", "/api/b", 200, t0))                      // burst, at once
	log.WriteString(json("192.0.2.6", "app.example.com", "/api/c", 200, t0))                      // refused
	log.WriteString(json("192.0.2.6", "app.example.com", "/api/d", 200, t0.Add(time.Second)))     // 2 r/s drained it
	log.WriteString(json("192.0.2.6", "app.example.com", "/%61pi/x", 200, t0.Add(2*time.Second))) // readings disagree
	log.WriteString(json("192.0.2.7", "blog.example.com", "/wp-login.php", 200, t0))              // probes off there
	log.WriteString(json("192.0.2.7", "app.example.com", "/wp-login.php", 200, t0))               // the global probes
	log.WriteString(json("192.0.2.7", "other.example.com", "/", 200, t0))                         // 421
	rep, err := ReplayLog(t.Context(), cfg, strings.NewReader(log.String()), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("access", rep.Access, map[string]int{"app.example.com /admin/": 2})
	check("bans", len(rep.Bans), 1)
	check("while banned", rep.WhileBan, 1)
	check("responds", rep.Responds, map[string]int{"app.example.com /old/": 1})
	check("auth", rep.Auth, map[string]int{"app.example.com": 1})
	check("limits", rep.Limits, map[string]int{"api": 1})
	check("delayed", rep.Delayed, map[string]int{})
	check("probes", rep.Probes, map[string]int{"wordpress:**/wp-login.php": 1})
	check("unknown host", rep.UnknownHost, 1)
	check("ambiguous", rep.Ambiguous, 1)
	check("offences", rep.Offences, map[string]uint64{"admin": 2, "auth": 1, "probes": 1})
	check("unparsed", rep.Unparsed, 0)
}

// A jail with escalate bans the network in a replay as it would live:
// after its third client, listed after them and marked; a fourth client
// of the network is then refused as banned, with no ban of its own; a
// network holding an allowed address is never banned.
func TestReplayEscalates(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var log strings.Builder
	for i, ip := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		log.WriteString(combined(ip, t0.Add(time.Duration(i)*time.Second), "/.env", ""))
	}
	cfg := mustConfig(t, `listen: {http: "127.0.0.1:0"}
allow: [198.51.100.200/32]
hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
probes: {presets: [secrets]}
jails:
  probes: {maxretry: 1, findtime: 10m, bantime: 1h, escalate: {ipv4: 24, after: 3}}
admin: {listen: "off"}
`)
	rep, err := ReplayLog(t.Context(), cfg, strings.NewReader(log.String()), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range rep.Bans {
		got = append(got, fmt.Sprintf("%s %v", b.Prefix, b.Escalated))
	}
	want := []string{"203.0.113.1/32 false", "203.0.113.2/32 false", "203.0.113.3/32 false", "203.0.113.0/24 true",
		"198.51.100.1/32 false", "198.51.100.2/32 false", "198.51.100.3/32 false"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("bans %q, want %q", got, want)
	}
	if rep.WhileBan != 1 {
		t.Errorf("lines while banned = %d, want 1 (203.0.113.4, inside the banned network)", rep.WhileBan)
	}
}

// An attacker that rotates before maxretry is banned as a network in a
// replay as it would live: at after × maxretry offences, with no client
// ban before it; the next client of the network is refused as banned.
func TestReplayEscalatesByOffences(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var log strings.Builder
	// 203.0.113.0/24: the documentation network least likely to hold
	// an address of the host that runs the test, which is never escalated.
	for i := range 8 { // 203.0.113.1-4, twice each
		log.WriteString(combined(fmt.Sprintf("203.0.113.%d", 1+i/2), t0.Add(time.Duration(i)*time.Second), "/.env", ""))
	}
	cfg := mustConfig(t, `listen: {http: "127.0.0.1:0"}
hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
probes: {presets: [secrets]}
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: 1h, escalate: {ipv4: 24, after: 2}}
admin: {listen: "off"}
`)
	rep, err := ReplayLog(t.Context(), cfg, strings.NewReader(log.String()), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range rep.Bans {
		got = append(got, fmt.Sprintf("%s %v %s", b.Prefix, b.Escalated, b.At.Sub(t0)))
	}
	if want := []string{"203.0.113.0/24 true 5s"}; strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("bans %q, want %q (the sixth offence, from the third client)", got, want)
	}
	if rep.WhileBan != 2 {
		t.Errorf("lines while banned = %d, want 2 (203.0.113.4's, inside the banned network)", rep.WhileBan)
	}
}
