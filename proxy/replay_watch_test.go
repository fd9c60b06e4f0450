package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/watch/filter"
)

const watchReplayConfig = `watch:
  - name: sshd
    filter: sshd
    files: [/nonexistent/auth.log]
  - name: app
    filter:
      failregex: ['app: login failed for \S+ from <HOST>$']
      ignoreregex: ['from 198\.51\.100\.']
    files: [/nonexistent/app.log]
    jail: sshd
jails:
  sshd: {maxretry: 3, findtime: 10m, bantime: 1h}
`

// sshdLine is an sshd failure as Debian's rsyslog writes it (RFC 3339).
func sshdLine(at time.Time, ip string) string {
	return fmt.Sprintf("%s web1 sshd[1201]: Failed password for root from %s port 50122 ssh2\n",
		at.Format("2006-01-02T15:04:05.000000Z07:00"), ip)
}

func replayWatch(t *testing.T, p *WatchReplay, logs ...string) *WatchReplayReport {
	t.Helper()
	for i, log := range logs {
		in, err := p.Input(fmt.Sprintf("log%d", i), strings.NewReader(log))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.Read(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	return p.Report()
}

// TestWatchReplayClock: the findtime check ("old") is taken against the
// newest line read before, not the wall clock, so a log from months ago
// shows the bans it would have made; a line older than findtime before
// it is old; a line without a time counts at the newest time.
func TestWatchReplayClock(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	var log strings.Builder
	log.WriteString(sshdLine(t0, "203.0.113.1"))
	for i := range 3 {
		log.WriteString(sshdLine(t0.Add(30*time.Minute+time.Duration(i)*time.Second), "203.0.113.2"))
	}
	// Out of order by 29 minutes: older than findtime when read.
	log.WriteString(sshdLine(t0.Add(time.Minute), "203.0.113.1"))
	log.WriteString(sshdLine(t0.Add(2*time.Minute), "203.0.113.1"))
	// No time: judged at 10:30:02, with the last banned client's.
	log.WriteString("web1 sshd[1300]: Failed password for root from 203.0.113.2 port 1 ssh2\n")
	log.WriteString("# a comment, skipped\n\n")

	p, err := NewWatchReplay(mustConfig(t, watchReplayConfig), "sshd", WatchReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep := replayWatch(t, p, log.String())
	if rep.Lines != 7 || rep.Comments != 1 || rep.NoTime != 1 {
		t.Errorf("lines %d, comments %d, no time %d; want 7, 1, 1", rep.Lines, rep.Comments, rep.NoTime)
	}
	if rep.Old != 2 || rep.Failed != 5 || rep.WhileBanned != 1 || rep.Offences != 5 {
		t.Errorf("old %d, failed %d, while banned %d, offences %d; want 2, 5, 1, 5", rep.Old, rep.Failed, rep.WhileBanned, rep.Offences)
	}
	want := ReplayBan{Prefix: netip.MustParsePrefix("203.0.113.2/32"), Jail: "sshd", At: t0.Add(30*time.Minute + 2*time.Second),
		Until: t0.Add(90*time.Minute + 2*time.Second), Count: 1}
	if len(rep.Bans) != 1 || rep.Bans[0] != want {
		t.Errorf("bans = %+v, want [%+v]", rep.Bans, want)
	}
	if n := rep.FailRegex[6].Lines; n != 7-0 {
		t.Errorf("failregex[6] decided %d lines, want 7", n)
	}
	if !rep.FirstTime.Equal(t0) || !rep.LastTime.Equal(t0.Add(30*time.Minute+2*time.Second)) {
		t.Errorf("time span %v to %v", rep.FirstTime, rep.LastTime)
	}
}

// TestWatchReplayLogsInOrder: logs are ordered by their first time as the
// filter reads it (gzip ones too), and counts carry across them.
func TestWatchReplayLogsInOrder(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("no time on this line\n" + sshdLine(t0, "203.0.113.1") + sshdLine(t0.Add(time.Second), "203.0.113.1")))
	zw.Close()
	p, err := NewWatchReplay(mustConfig(t, watchReplayConfig), "sshd", WatchReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newer, err := p.Input("auth.log", strings.NewReader(sshdLine(t0.Add(5*time.Minute), "203.0.113.1")))
	if err != nil {
		t.Fatal(err)
	}
	older, err := p.Input("auth.log.2.gz", &gz)
	if err != nil {
		t.Fatal(err)
	}
	if !older.Gzip || !older.Start.Equal(t0) || !newer.Start.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("inputs: gzip %v, starts %v and %v", older.Gzip, older.Start, newer.Start)
	}
	ins := []*ReplayInput{newer, older}
	SortReplayInputs(ins)
	for _, in := range ins {
		if _, _, err := p.Read(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	rep := p.Report()
	if ins[0] != older || len(rep.Bans) != 1 || !rep.Bans[0].At.Equal(t0.Add(5*time.Minute)) || rep.Old != 0 {
		t.Errorf("first %s, bans %+v, old %d; want the gzip log first and a ban at the third failure", ins[0].Name, rep.Bans, rep.Old)
	}
}

// TestWatchReplayCustomFilter: a custom filter's ignoreregex, a host name
// not resolved, and the missed lines kept up to MaxMissed.
func TestWatchReplayCustomFilter(t *testing.T) {
	t.Parallel()
	var matches bytes.Buffer
	p, err := NewWatchReplay(mustConfig(t, watchReplayConfig), "app", WatchReplayOptions{Matches: &matches, MaxMissed: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep := replayWatch(t, p, `2026-03-14T10:00:00Z app: login failed for bob from 192.0.2.1
2026-03-14T10:00:01Z app: login failed for bob from 198.51.100.1
2026-03-14T10:00:02Z app: login failed for bob from evil.example.com
2026-03-14T10:00:03Z app: login ok for bob from 192.0.2.1
2026-03-14T10:00:04Z app: started
`)
	if rep.Failed != 1 || rep.Ignored != 1 || rep.IgnoreRegex[0].Lines != 1 || rep.Unresolved != 1 || rep.Missed != 2 {
		t.Errorf("failed %d, ignored %d (%+v), unresolved %d, missed %d; want 1, 1, 1, 2", rep.Failed, rep.Ignored,
			rep.IgnoreRegex, rep.Unresolved, rep.Missed)
	}
	if rep.FailRegex[0].Lines != 2 {
		t.Errorf("failregex[0] decided %d lines, want 2 (the ignored line is the ignoreregex's)", rep.FailRegex[0].Lines)
	}
	if len(rep.MissedLines) != 1 || !strings.Contains(rep.MissedLines[0], "login ok") {
		t.Errorf("missed lines %q, want the first one only", rep.MissedLines)
	}
	for _, want := range []string{"fail failregex[0] 192.0.2.1\t", "ignored ignoreregex[0]\t", "unresolved failregex[0] evil.example.com\t"} {
		if !strings.Contains(matches.String(), want) {
			t.Errorf("matches lack %q:\n%s", want, matches.String())
		}
	}
}

// TestWatchReplayJournal: entries of journalctl --output=json are judged
// as a journal source hands them to the filter: the syslog line they
// stand for, at __REALTIME_TIMESTAMP.
func TestWatchReplayJournal(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	var log strings.Builder
	for i := range 3 {
		msg := `"Failed password for root from 203.0.113.9 port 50122 ssh2"`
		if i == 1 {
			// Not valid UTF-8 somewhere: journalctl writes bytes.
			msg = "[" + strings.Trim(strings.Join(strings.Fields(fmt.Sprint([]byte("Failed password for r\xffot from 203.0.113.9 port 1 ssh2"))), ","), "[]") + "]"
		}
		fmt.Fprintf(&log, `{"__CURSOR":"s=1;i=%d","__REALTIME_TIMESTAMP":"%d","_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"sshd","_PID":"1201","MESSAGE":%s}`+"\n",
			i, t0.Add(time.Duration(i)*time.Second).UnixMicro(), msg)
	}
	p, err := NewWatchReplay(mustConfig(t, watchReplayConfig), "sshd", WatchReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep := replayWatch(t, p, log.String())
	if rep.Failed != 3 || rep.NoTime != 0 || len(rep.Bans) != 1 || !rep.Bans[0].At.Equal(t0.Add(2*time.Second)) {
		t.Errorf("failed %d, no time %d, bans %+v; want 3, 0 and a ban at %v", rep.Failed, rep.NoTime, rep.Bans, t0.Add(2*time.Second))
	}
}

// TestFilterReplay: a built-in filter alone counts what it blames and
// bans nobody.
func TestFilterReplay(t *testing.T) {
	t.Parallel()
	fc, err := filter.Builtin("sshd", "aggressive")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewFilterReplay(fc, "sshd (aggressive)", WatchReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	var log strings.Builder
	for i := range 6 {
		log.WriteString(sshdLine(t0.Add(time.Duration(i)*time.Hour), "203.0.113.1"))
	}
	rep := replayWatch(t, p, log.String())
	if rep.Failed != 6 || len(rep.Bans) != 0 || rep.Jail != "" || rep.Old != 0 {
		t.Errorf("failed %d, bans %d, jail %q, old %d; want 6, 0, none, 0", rep.Failed, len(rep.Bans), rep.Jail, rep.Old)
	}
}

func TestNewWatchReplayErrors(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, watchReplayConfig)
	for _, tc := range []struct{ name, wantErr string }{
		{"nginx", `watch nginx: no such watch source (the config has [sshd app])`},
	} {
		if _, err := NewWatchReplay(cfg, tc.name, WatchReplayOptions{}); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("NewWatchReplay(%q) = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	if _, err := NewWatchReplay(mustConfig(t, "hosts: [{match: [example.com], upstreams: [\"http://127.0.0.1:1\"]}]\n"), "sshd", WatchReplayOptions{}); err == nil ||
		!strings.Contains(err.Error(), "the config has no watch sources") {
		t.Errorf("NewWatchReplay without watch = %v", err)
	}
}

func FuzzParseJournalJSON(f *testing.F) {
	// journalctl's forms: strings, byte arrays, null, repeated fields.
	f.Add([]byte(`{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1700000000000000","MESSAGE":"Failed password for root from 192.0.2.1","_PID":"12"}`))
	f.Add([]byte(`{"__CURSOR":"s=2","__REALTIME_TIMESTAMP":"1","MESSAGE":[70,97,105,108,255],"_HOSTNAME":null}`))
	f.Add([]byte(`{"__CURSOR":"s=3","__REALTIME_TIMESTAMP":"1","MESSAGE":["a","b"],"SYSLOG_IDENTIFIER":[[115]]}`))
	// Not entries: plain lines and broken JSON.
	f.Add([]byte(`Dec  7 10:00:00 web1 sshd[1]: {"x":1}`))
	f.Add([]byte(`{"MESSAGE":"no time"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		l, ok := parseJournalJSON(line)
		if !ok {
			return
		}
		if strings.HasSuffix(l.Text, "\n") {
			t.Errorf("parseJournalJSON(%q).Text = %q ends in a newline", line, l.Text)
		}
		if !strings.HasSuffix(l.SyslogText(), l.Text) {
			t.Errorf("SyslogText %q does not end with the message %q", l.SyslogText(), l.Text)
		}
	})
}

func BenchmarkWatchReplay(b *testing.B) {
	t0 := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	var log strings.Builder
	for i := range 10000 {
		at := t0.Add(time.Duration(i) * time.Second)
		switch i % 4 {
		case 0:
			log.WriteString(sshdLine(at, fmt.Sprintf("203.0.%d.%d", i/256%256, i%256)))
		case 1:
			fmt.Fprintf(&log, "%s web1 CRON[1300]: pam_unix(cron:session): session closed for user root\n", at.Format(time.RFC3339))
		default:
			fmt.Fprintf(&log, "%s web1 sshd[1210]: Connection closed by 198.51.100.4 port 41000 [preauth]\n", at.Format(time.RFC3339))
		}
	}
	cfg := mustConfig(b, watchReplayConfig)
	b.ReportAllocs()
	b.SetBytes(int64(log.Len()))
	for b.Loop() {
		p, err := NewWatchReplay(cfg, "sshd", WatchReplayOptions{})
		if err != nil {
			b.Fatal(err)
		}
		in, err := p.Input("auth.log", strings.NewReader(log.String()))
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := p.Read(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "lines/s")
}
