package filter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/watch/filter/corpus"
)

// corpusLogLines returns the log lines (not comments, not blank) of the
// fail2ban sample log name.
func corpusLogLines(tb testing.TB, name string) []string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// BenchmarkSSHD judges every line of fail2ban's sshd sample log (most of
// them match) with each mode of the built-in sshd filter, and a syslog line
// from another daemon that no failregex can match.
func BenchmarkSSHD(b *testing.B) {
	lines := corpusLogLines(b, "sshd")
	now := func() time.Time { return time.Unix(corpus.Now, 0) }
	for _, mode := range []string{"normal", "aggressive"} {
		cfg, err := Builtin("sshd", mode)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Location, cfg.Now = time.UTC, now
		f, err := Compile(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("corpus/mode="+mode, func(b *testing.B) {
			b.ReportAllocs()
			st := f.NewStream()
			n := 0
			for b.Loop() {
				for _, l := range lines {
					st.Match(l)
				}
				n += len(lines)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
		})
		b.Run("miss/mode="+mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Match(missLine)
			}
		})
	}
}

// missLine is a syslog line of another daemon: the common case on a host.
const missLine = "Jun 21 16:47:48 host CRON[31602]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
