//go:build !race

package filter

import "testing"

// TestMatchMissAllocs pins that a line no failregex can match costs no
// allocation: most lines of a system log are such lines.
func TestMatchMissAllocs(t *testing.T) {
	f := compileBuiltin(t, "sshd", "aggressive", nil)
	st := f.NewStream()
	if got := testing.AllocsPerRun(100, func() { st.Match(missLine) }); got != 0 {
		t.Errorf("Stream.Match(%q) allocates %v times, want 0", missLine, got)
	}
	if r := f.Match(missLine); r.Kind != NoMatch {
		t.Errorf("Match(%q) = %v, want nomatch", missLine, r.Kind)
	}
}
