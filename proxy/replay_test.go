package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
