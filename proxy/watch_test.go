package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/watch"
)

// newWatchServer is a Server with one sshd watch source on a file that
// stays empty: its watcher judges the lines a test hands it.
func newWatchServer(tb testing.TB, jail string) *Server {
	tb.Helper()
	log := filepath.Join(tb.TempDir(), "auth.log")
	if err := os.WriteFile(log, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	s, err := New(Options{Config: mustConfig(tb, fmt.Sprintf("admin: {listen: off}\nwatch:\n  - {name: sshd, filter: sshd, files: [%s]}\njails:\n  sshd: %s\n", log, jail))})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestWatchJudge: a line's verdict, its own time and the jail's findtime
// decide what is counted.
func TestWatchJudge(t *testing.T) {
	t.Parallel()
	s := newWatchServer(t, "{maxretry: 2, findtime: 10m, bantime: 1h}")
	line := func(at time.Time, ip string) watch.Line {
		return watch.Line{Source: "sshd", Origin: "/var/log/auth.log",
			Text: at.Format("Jan _2 15:04:05") + " h sshd[1]: Failed password for root from " + ip + " port 1 ssh2"}
	}
	now := time.Now()
	s.watcher.judge(line(now.Add(-time.Hour), "198.51.100.1"))     // old
	s.watcher.judge(line(now.Add(-5*time.Minute), "198.51.100.1")) // counts
	s.watcher.judge(line(now, "198.51.100.1"))                     // bans
	if _, ok := s.bans.Lookup(netip.MustParseAddr("198.51.100.1")); !ok {
		t.Fatal("not banned after maxretry lines within findtime")
	}
	// A journal entry: the time is the entry's, the text the message.
	j := watch.Line{Source: "sshd", Origin: "journal", Time: now, Host: "h", SyslogIdentifier: "sshd", PID: 7,
		Text: "Failed password for root from 198.51.100.2 port 1 ssh2"}
	s.watcher.judge(j)
	s.watcher.judge(j)
	if _, ok := s.bans.Lookup(netip.MustParseAddr("198.51.100.2")); !ok {
		t.Fatal("journal entries did not ban")
	}
	// Addresses that are no client, and a line cut at the source's
	// limit (what was cut off may have named another address), count
	// for nobody.
	for _, ip := range []string{"127.0.0.1", "::1", "fe80::1", "0.0.0.0", "255.255.255.255", "ff02::1", "::", "::10.0.0.5"} {
		s.watcher.judge(line(now, ip))
	}
	long := line(now, "198.51.100.3")
	long.Text = strings.Replace(long.Text, "root", strings.Repeat("x", 64<<10), 1)
	s.watcher.judge(long)
	if got := s.current.Load().jails.Offences("sshd"); got != 4 {
		t.Errorf("offences = %d, want 4 (the old line, special addresses and a cut line are none)", got)
	}
}

// BenchmarkWatchJudge: lines through the whole judging path (filter,
// time check, jail), 1 in 10 a failed login from one of 1,000 addresses.
func BenchmarkWatchJudge(b *testing.B) {
	s := newWatchServer(b, "{maxretry: 1000, findtime: 1h, bantime: 1h}")
	stamp := time.Now().Format("Jan _2 15:04:05")
	lines := make([]watch.Line, 1000)
	for i := range lines {
		text := stamp + " bastion sshd[" + fmt.Sprint(1000+i) + "]: "
		if i%10 == 0 {
			text += fmt.Sprintf("Failed password for invalid user admin from 198.51.%d.%d port 4000 ssh2", i/250, i%250)
		} else {
			text += "pam_unix(sshd:session): session closed for user deploy"
		}
		lines[i] = watch.Line{Source: "sshd", Origin: "/var/log/auth.log", Text: text}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.watcher.judge(lines[i%len(lines)])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestHostResolver: answers are cached, bounded in number of addresses
// and folded like a line's own; new names over the rate are not looked
// up.
func TestHostResolver(t *testing.T) {
	t.Parallel()
	r := newHostResolver()
	calls := 0
	r.lookup = func(_ context.Context, _, host string) ([]netip.Addr, error) {
		calls++
		var out []netip.Addr
		for i := range 20 {
			out = append(out, netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: byte(i)}))
		}
		return out, nil
	}
	got, err := r.resolve(t.Context(), "a.example")
	if err != nil || len(got) != maxResolvedAddrs || !got[0].Is4() {
		t.Fatalf("resolve = %v, %v; want %d IPv4 addresses", got, err, maxResolvedAddrs)
	}
	if _, _ = r.resolve(t.Context(), "a.example"); calls != 1 {
		t.Errorf("%d lookups of one name, want 1 (cached)", calls)
	}
	busy := false
	for i := range 2 * resolveBurst {
		if _, err := r.resolve(t.Context(), fmt.Sprintf("n%d.example", i)); err == errResolveBusy {
			busy = true
		}
	}
	if !busy || calls > resolveBurst+1 {
		t.Errorf("%d lookups of %d new names at once, want at most %d", calls, 2*resolveBurst, resolveBurst+1)
	}
}
