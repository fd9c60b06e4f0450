package filter

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRecidiveGatehouseLog feeds the built-in recidive filter the lines
// log/slog writes for a ban, in the attribute order rules.Jails logs them.
func TestRecidiveGatehouseLog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	until := time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)
	for _, jail := range []string{"sshd", "recidive"} {
		log.Info("ban", "jail", jail, "prefix", "203.0.113.7/32", "reason", "failregex", "count", 5, "until", until, "ban_seconds", 3600.0)
	}
	log.Info("ban not enforced: no ban list", "jail", "sshd", "prefix", "203.0.113.8/32")
	cfg, err := Builtin("recidive", "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []Kind{Fail, Ignored, NoMatch}
	for i, l := range lines {
		r := f.Match(l)
		if r.Kind != want[i] || (r.Kind == Fail && (r.Host.String() != "203.0.113.7" || r.Time.IsZero())) {
			t.Errorf("Match(%q) = %v %v at %v, want %v 203.0.113.7", l, r.Kind, r.Host, r.Time, want[i])
		}
	}
}
