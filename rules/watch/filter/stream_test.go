package filter

import (
	"fmt"
	"testing"
	"time"
)

// TestStreamExpiry checks that sshd's per-connection memory ends 5 minutes
// of log time after the connection's first line, however few connections
// are held: a process id reused later must not inherit the address of an
// earlier connection. Lines read from a file and lines of the journal
// (their time given) expire alike.
func TestStreamExpiry(t *testing.T) {
	t.Parallel()
	f := compileBuiltin(t, "sshd", "normal", func(cfg *Config) {
		cfg.Location = time.UTC
		cfg.Now = func() time.Time { return time.Date(2025, 12, 8, 0, 0, 0, 0, time.UTC) }
	})
	const (
		helper = "h sshd[777]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.0.5  user=root"
		fail   = "h sshd[777]: Disconnecting: Too many authentication failures [preauth]"
	)
	at := func(h, m, s int) time.Time { return time.Date(2025, 12, 7, h, m, s, 0, time.UTC) }
	for _, tc := range []struct {
		name       string
		first, end time.Time
		blamed     bool
	}{
		{"same minute", at(8, 0, 0), at(8, 0, 30), true},
		{"just within", at(8, 0, 0), at(8, 4, 59), true},
		{"five minutes", at(8, 0, 0), at(8, 5, 0), false},
		{"six hours", at(8, 0, 0), at(13, 59, 0), false},
		// a clock set back does not expire it
		{"earlier", at(8, 0, 0), at(7, 59, 0), true},
	} {
		for _, journal := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/journal=%v", tc.name, journal), func(t *testing.T) {
				st := f.NewStream()
				var r1, r2 Result
				if journal {
					r1, r2 = st.MatchAt(helper, tc.first), st.MatchAt(fail, tc.end)
				} else {
					r1 = st.Match(tc.first.Format(time.Stamp) + " " + helper)
					r2 = st.Match(tc.end.Format(time.Stamp) + " " + fail)
				}
				if r1.Kind != NoMatch {
					t.Fatalf("helper line: %v, want nomatch", r1.Kind)
				}
				if got := r2.Kind == Fail && r2.Host.String() == "10.0.0.5"; got != tc.blamed {
					t.Errorf("failure %v after the helper line: %v %v, want blamed on 10.0.0.5 %v", tc.end.Sub(tc.first), r2.Kind, r2.Host, tc.blamed)
				}
				if !tc.blamed && r2.Kind != NoMatch {
					t.Errorf("failure without a remembered address: %v, want nomatch", r2.Kind)
				}
			})
		}
	}
}

// TestStreamExpiryKeepsOthers checks that expiring one connection leaves a
// recent one of another process alone.
func TestStreamExpiryKeepsOthers(t *testing.T) {
	t.Parallel()
	f := compileBuiltin(t, "sshd", "normal", nil)
	t0 := time.Date(2025, 12, 7, 8, 0, 0, 0, time.UTC)
	st := f.NewStream()
	st.MatchAt("h sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.0.1  user=root", t0)
	st.MatchAt("h sshd[2]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.0.2  user=root", t0.Add(4*time.Minute))
	if r := st.MatchAt("h sshd[1]: Disconnecting: Too many authentication failures [preauth]", t0.Add(6*time.Minute)); r.Kind != NoMatch {
		t.Errorf("expired connection: %v %v, want nomatch", r.Kind, r.Host)
	}
	if r := st.MatchAt("h sshd[2]: Disconnecting: Too many authentication failures [preauth]", t0.Add(6*time.Minute)); r.Kind != Fail || r.Host.String() != "10.0.0.2" {
		t.Errorf("recent connection: %v %v, want fail 10.0.0.2", r.Kind, r.Host)
	}
}
