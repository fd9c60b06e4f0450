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
	f := compileBuiltin(t, "recidive", "", nil)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []Kind{Fail, Ignored, NoMatch}
	for i, l := range lines {
		r := f.Match(l)
		if r.Kind != want[i] || (r.Kind == Fail && (r.Host.String() != "203.0.113.7" || r.Time.IsZero())) {
			t.Errorf("Match(%q) = %v %v at %v, want %v 203.0.113.7", l, r.Kind, r.Host, r.Time, want[i])
		}
	}
}

// TestRecidiveInjection: only gatehouse's own ban records count, as its
// log writes them to a file or the journal; text a client chose (a
// User-Agent in the access log, which shares the journal) never does.
func TestRecidiveInjection(t *testing.T) {
	t.Parallel()
	f := compileBuiltin(t, "recidive", "", nil)
	rec := `time=2026-12-07T13:53:19.875Z level=INFO msg=ban component=jails jail=sshd prefix=198.51.100.7/32 reason="watch sshd" count=1 until=2026-12-07T14:53:19.000Z ban_seconds=3600`
	jrec := `{"time":"2026-12-07T13:53:19.875Z","level":"INFO","msg":"ban","component":"jails","jail":"sshd","prefix":"198.51.100.7/32","reason":"x"}`
	for _, tc := range []struct {
		line string
		want Kind
	}{
		{rec, Fail},
		{"bastion gatehouse[812]: " + rec, Fail},
		{"Dec  7 13:53:19 bastion gatehouse[812]: " + rec, Fail},
		{jrec, Fail},
		{`{"time":"2026-12-07T13:53:19.875Z","client_ip":"192.0.2.1","method":"GET","user_agent":"Mozilla level=INFO msg=ban component=jails jail=sshd prefix=198.51.100.7 x"}`, NoMatch},
		{`192.0.2.1 - - [07/Dec/2026:13:53:19 +0000] "GET / HTTP/1.1" 200 2 "-" "x level=INFO msg=ban jail=sshd prefix=198.51.100.7 y"`, NoMatch},
		{`time=2026-12-07T13:53:19.875Z level=INFO msg="config warning" warning="level=INFO msg=ban jail=sshd prefix=198.51.100.7 x"`, NoMatch},
	} {
		if r := f.Match(tc.line); r.Kind != tc.want || (r.Kind == Fail && r.Host.String() != "198.51.100.7") {
			t.Errorf("Match(%q) = %v %v, want %v", tc.line, r.Kind, r.Host, tc.want)
		}
	}
}
