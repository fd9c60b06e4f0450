package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/testenv"
)

func TestParseJournalEntry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		want    journalEntry
		wantErr string
	}{
		{"string", `{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1700000000000001","MESSAGE":"Failed password for root from 203.0.113.5 port 22 ssh2","_HOSTNAME":"h","SYSLOG_IDENTIFIER":"sshd","_PID":"42"}`,
			journalEntry{Cursor: "s=1", Time: time.UnixMicro(1700000000000001), Message: "Failed password for root from 203.0.113.5 port 22 ssh2", Host: "h", Identifier: "sshd", PID: 42}, ""},
		{"byte array", `{"__CURSOR":"s=2","MESSAGE":[105,110,118,97,108,105,100,32,255]}`,
			journalEntry{Cursor: "s=2", Message: "invalid \xff"}, ""},
		{"null message", `{"__CURSOR":"s=3","MESSAGE":null}`, journalEntry{Cursor: "s=3"}, ""},
		{"repeated field", `{"__CURSOR":"s=4","MESSAGE":["first","second"]}`, journalEntry{Cursor: "s=4", Message: "first"}, ""},
		{"trailing newline", `{"__CURSOR":"s=5","MESSAGE":"line\n"}`, journalEntry{Cursor: "s=5", Message: "line"}, ""},
		{"no cursor", `{"MESSAGE":"x"}`, journalEntry{}, "no __CURSOR"},
		{"bad time", `{"__CURSOR":"s","__REALTIME_TIMESTAMP":"x"}`, journalEntry{}, "__REALTIME_TIMESTAMP"},
		{"bad pid", `{"__CURSOR":"s","_PID":"x"}`, journalEntry{}, "_PID"},
		{"bad byte", `{"__CURSOR":"s","MESSAGE":[300]}`, journalEntry{}, "MESSAGE"},
		{"number", `{"__CURSOR":"s","MESSAGE":5}`, journalEntry{}, "unexpected value"},
		{"not json", `Failed password`, journalEntry{}, "parse journal entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseJournalEntry([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("parseJournalEntry(%q) = %v, want error %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseJournalEntry(%q) = %+v, %v, want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzParseJournalEntry(f *testing.F) {
	// A full entry, a byte-array message, a repeated field, junk.
	f.Add([]byte(`{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1","MESSAGE":"m","_PID":"1"}`))
	f.Add([]byte(`{"__CURSOR":"s=2","MESSAGE":[104,105]}`))
	f.Add([]byte(`{"__CURSOR":"s=4","MESSAGE":["a",[98]]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseJournalEntry(b)
		if err == nil && e.Cursor == "" {
			t.Errorf("parseJournalEntry(%q) accepted an entry without a cursor", b)
		}
	})
}

func TestJournalArgs(t *testing.T) {
	t.Parallel()
	s, err := NewJournalSource(JournalConfig{Name: "sshd", Units: []string{"ssh.service", "sshd.service"}, Identifiers: []string{"sshd"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(s.args("s=9"), " ")
	for _, want := range []string{"--after-cursor=s=9", "--lines=all", "_SYSTEMD_UNIT=ssh.service + _SYSTEMD_UNIT=sshd.service + SYSLOG_IDENTIFIER=sshd", "--follow", "--output=json"} {
		if !strings.Contains(got, want) {
			t.Errorf("args = %q, want %q in it", got, want)
		}
	}
	if got := strings.Join(s.args(""), " "); !strings.Contains(got, "--lines=0") {
		t.Errorf("args without a cursor = %q, want --lines=0", got)
	}
	for _, cfg := range []JournalConfig{{Units: []string{"a"}}, {Name: "x"}, {Name: "x", Units: []string{"a=b"}}} {
		if _, err := NewJournalSource(cfg, nil); err == nil {
			t.Errorf("NewJournalSource(%+v) = nil error", cfg)
		}
	}
}

// TestJournalSupervised runs a fake journalctl that dies after five
// entries: Run restarts it after the last cursor it handed over, so the
// entries come in order, none twice.
func TestJournalSupervised(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "fakejournalctl")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/fakejournalctl").CombinedOutput(); err != nil {
		t.Fatalf("build fake journalctl: %v\n%s", err, out)
	}
	pos := newMemPositions()
	s, err := NewJournalSource(JournalConfig{Name: "j", Identifiers: []string{"sshd"}, Journalctl: bin, Positions: pos,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan Line)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	for i := range 23 {
		select {
		case l := <-out:
			want := fmt.Sprintf("entry %d", i)
			if l.Text != want || l.PID != 100+i || l.SyslogIdentifier != "sshd" || !l.Time.Equal(time.UnixMicro(1700000000000000+int64(i))) {
				t.Fatalf("line %d = %+v, want text %q pid %d", i, l, want, 100+i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("line %d not received in 10s", i)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if p, _ := pos.Position(journalKey("j")); p.Cursor != "c=22" {
		t.Errorf("saved cursor = %q, want %q", p.Cursor, "c=22")
	}
}

func TestJournalMissing(t *testing.T) {
	t.Parallel()
	s, err := NewJournalSource(JournalConfig{Name: "j", Units: []string{"ssh.service"}, Journalctl: "/nonexistent/journalctl"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context()); !errors.Is(err, ErrNoJournal) {
		t.Errorf("Check() = %v, want ErrNoJournal", err)
	}
	if err := s.Run(t.Context(), make(chan Line)); !errors.Is(err, ErrNoJournal) {
		t.Errorf("Run() = %v, want ErrNoJournal", err)
	}
}

// journalRemote returns systemd-journal-remote, which writes journal
// files from the export format: the test's own journal.
func journalRemote(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testenv.Missing(t, "systemd-journal-remote not installed (Debian package systemd-journal-remote)")
	return ""
}

// writeJournal appends entries to dir/test.journal through
// systemd-journal-remote.
func writeJournal(t *testing.T, remote, dir string, from, to int) {
	t.Helper()
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "__CURSOR=x\n__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=host1\nSYSLOG_IDENTIFIER=%s\n_PID=%d\n_SYSTEMD_UNIT=ssh.service\nMESSAGE=Failed password for root from 203.0.113.5 port %d ssh2\n\n",
			1700000000000000+i, 1+i, map[bool]string{true: "sshd", false: "cron"}[i%4 != 3], 100+i, i)
	}
	cmd := exec.Command(remote, "-o", filepath.Join(dir, "test.journal"), "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-journal-remote: %v\n%s", err, out)
	}
}

// TestJournalReal reads a journal written by systemd-journal-remote
// with the real journalctl, stops, and resumes from the saved cursor.
func TestJournalReal(t *testing.T) {
	t.Parallel()
	jc := testenv.Tool(t, "journalctl")
	remote := journalRemote(t)
	dir := t.TempDir()
	writeJournal(t, remote, dir, 0, 20)
	pos := newMemPositions()
	cfg := JournalConfig{Name: "sshd", Identifiers: []string{"sshd"}, Journalctl: jc, Directory: dir, Positions: pos,
		Since: 10 * 365 * 24 * time.Hour, SaveInterval: time.Hour}
	s, err := NewJournalSource(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context()); err != nil {
		t.Errorf("Check() = %v, want nil", err)
	}
	// Entries i%4 == 3 are cron's: not selected.
	var want []int
	for i := range 40 {
		if i%4 != 3 {
			want = append(want, i)
		}
	}
	got := runJournal(t, s, want[:15], func() {})
	got = append(got, runJournal(t, s, want[15:], func() { writeJournal(t, remote, dir, 20, 40) })...)
	if len(got) != len(want) {
		t.Errorf("read %d entries, want %d", len(got), len(want))
	}
}

// runJournal runs s, calls then, receives the entries want (by port) in
// order, and stops s.
func runJournal(t *testing.T, s *JournalSource, want []int, then func()) []Line {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := make(chan Line)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	then()
	var got []Line
	for _, i := range want {
		select {
		case l := <-out:
			wantText := fmt.Sprintf("Failed password for root from 203.0.113.5 port %d ssh2", i)
			if l.Text != wantText || l.PID != 100+i || l.Host != "host1" {
				t.Fatalf("entry = %+v, want text %q pid %d", l, wantText, 100+i)
			}
			got = append(got, l)
		case <-time.After(20 * time.Second):
			t.Fatalf("entry %d not received in 20s", i)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	return got
}
