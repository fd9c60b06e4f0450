package watch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// JournalConfig configures a JournalSource.
type JournalConfig struct {
	// Name is the source's name: Line.Source and the position key.
	// Required.
	Name string
	// Units select entries by _SYSTEMD_UNIT (e.g. "ssh.service"), and
	// Identifiers by SYSLOG_IDENTIFIER (e.g. "sshd"); an entry matching
	// any of them is read. At least one of the two.
	Units       []string
	Identifiers []string
	// Positions keeps the cursor of the last entry handed over; nil keeps
	// it in memory only.
	Positions Positions
	// Journalctl is the program's path. Default: journalctl on PATH.
	Journalctl string
	// Directory reads the journal files of this directory
	// (journalctl --directory) instead of the system journal. Default
	// "": the system journal.
	Directory string
	// Since is how far back the first start (no saved cursor) reads.
	// Default 0: only entries logged after the start.
	Since time.Duration
	// SaveInterval is the least time between two saves of the cursor
	// while entries flow. Default 1s.
	SaveInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait before journalctl is
	// started again after it exited: doubled at each exit, back to
	// MinBackoff after it ran for MaxBackoff. Defaults 1s and 1m.
	MinBackoff, MaxBackoff time.Duration
}

// JournalSource reads the systemd journal through a supervised
// `journalctl --follow --output=json`. One Run at a time.
type JournalSource struct {
	cfg JournalConfig
	log *slog.Logger
	now func() time.Time
}

// NewJournalSource checks cfg and applies the defaults; it does not
// look for journalctl (Check and Run do).
func NewJournalSource(cfg JournalConfig, log *slog.Logger) (*JournalSource, error) {
	if cfg.Name == "" {
		return nil, errors.New("journal source: no name")
	}
	if len(cfg.Units) == 0 && len(cfg.Identifiers) == 0 {
		return nil, fmt.Errorf("journal source %s: no units nor identifiers", cfg.Name)
	}
	for _, v := range append(append([]string(nil), cfg.Units...), cfg.Identifiers...) {
		if v == "" || strings.ContainsAny(v, "=+\n") {
			return nil, fmt.Errorf("journal source %s: %q is not a unit or identifier", cfg.Name, v)
		}
	}
	if cfg.Since < 0 || cfg.SaveInterval < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 {
		return nil, fmt.Errorf("journal source %s: negative duration", cfg.Name)
	}
	cfg.Journalctl = orDefault(cfg.Journalctl, "journalctl")
	cfg.SaveInterval = orDefault(cfg.SaveInterval, defaultSave)
	cfg.MinBackoff = orDefault(cfg.MinBackoff, time.Second)
	cfg.MaxBackoff = max(orDefault(cfg.MaxBackoff, time.Minute), cfg.MinBackoff)
	if cfg.Positions == nil {
		cfg.Positions = newMemPositions()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &JournalSource{cfg: cfg, log: log.With("component", "watch", "source", cfg.Name), now: time.Now}, nil
}

// matches returns journalctl's match arguments: every unit and
// identifier, ORed with "+".
func (s *JournalSource) matches() []string {
	var m []string
	add := func(field string, vals []string) {
		for _, v := range vals {
			if len(m) > 0 {
				m = append(m, "+")
			}
			m = append(m, field+"="+v)
		}
	}
	add("_SYSTEMD_UNIT", s.cfg.Units)
	add("SYSLOG_IDENTIFIER", s.cfg.Identifiers)
	return m
}

func (s *JournalSource) args(cursor string) []string {
	// No --all: journalctl then writes a field over 4096 bytes as null,
	// so an entry is never longer than the scanner's buffer (a local
	// user can log a 5 MiB message), and no message that long is a
	// login failure.
	a := []string{"--follow", "--output=json", "--no-pager", "--quiet",
		"--output-fields=MESSAGE,_HOSTNAME,SYSLOG_IDENTIFIER,_PID"}
	if s.cfg.Directory != "" {
		a = append(a, "--directory="+s.cfg.Directory)
	}
	switch {
	case cursor != "":
		// --follow alone shows 10 entries: every entry after the
		// cursor is wanted, however many came while gatehouse was down.
		a = append(a, "--lines=all", "--after-cursor="+cursor)
	case s.cfg.Since > 0:
		a = append(a, "--lines=all", fmt.Sprintf("--since=@%d", s.now().Add(-s.cfg.Since).Unix()))
	default:
		a = append(a, "--lines=0")
	}
	return append(a, s.matches()...)
}

// Check says why the journal cannot be read now, without failing:
// journalctl missing, no journal files, or no permission to read them
// (all wrap ErrNoJournal; the last also ErrPermission).
func (s *JournalSource) Check(ctx context.Context) error {
	path, err := exec.LookPath(s.cfg.Journalctl)
	if err != nil {
		return fmt.Errorf("watch %s: %w: %w", s.cfg.Name, ErrNoJournal, err)
	}
	a := []string{"--lines=1", "--output=json", "--no-pager"}
	if s.cfg.Directory != "" {
		a = append(a, "--directory="+s.cfg.Directory)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, a...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	msg := strings.TrimSpace(stderr.String())
	switch {
	case err != nil:
		return fmt.Errorf("watch %s: %w: journalctl: %w: %s", s.cfg.Name, ErrNoJournal, err, msg)
	case strings.Contains(msg, "No journal files"):
		return fmt.Errorf("watch %s: %w: journalctl: %s", s.cfg.Name, ErrNoJournal, msg)
	case strings.Contains(msg, "not seeing messages") || strings.Contains(msg, "ermission denied"):
		return fmt.Errorf("watch %s: %w: %w: journalctl: %s", s.cfg.Name, ErrNoJournal, ErrPermission, msg)
	case len(bytes.TrimSpace(out)) == 0:
		return fmt.Errorf("watch %s: %w: journalctl found no entries", s.cfg.Name, ErrNoJournal)
	}
	return nil
}

// Run reads the journal until ctx is done, sending each entry on out,
// and starts journalctl again with backoff whenever it exits, logging
// each restart. It returns an error wrapping ErrNoJournal if journalctl
// is not found, else nil when ctx is done (after saving the cursor of the
// last entry handed over) or the error of that save.
func (s *JournalSource) Run(ctx context.Context, out chan<- Line) error {
	path, err := exec.LookPath(s.cfg.Journalctl)
	if err != nil {
		return fmt.Errorf("watch %s: %w: %w", s.cfg.Name, ErrNoJournal, err)
	}
	backoff := s.cfg.MinBackoff
	for {
		started := s.now()
		err := s.runOnce(ctx, path, out)
		if ctx.Err() != nil {
			return err
		}
		if s.now().Sub(started) >= s.cfg.MaxBackoff {
			backoff = s.cfg.MinBackoff
		}
		s.log.Warn("journalctl exited, restarting", "err", err, "retry_seconds", backoff.Seconds())
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// runOnce runs one journalctl until it exits or ctx is done. When ctx
// is done it returns the error of the last cursor save.
func (s *JournalSource) runOnce(ctx context.Context, path string, out chan<- Line) error {
	key := journalKey(s.cfg.Name)
	saved, _ := s.cfg.Positions.Position(key)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(cctx, path, s.args(saved.Cursor)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("journalctl: %w", err)
	}
	stderr := &tailBuffer{max: 1024}
	cmd.Stderr = stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start journalctl: %w", err)
	}
	cursor, lastSave := saved.Cursor, s.now()
	save := func(force bool) error {
		if cursor == saved.Cursor || (!force && s.now().Sub(lastSave) < s.cfg.SaveInterval) {
			return nil
		}
		saved.Cursor, lastSave = cursor, s.now()
		return s.cfg.Positions.SetPosition(key, saved)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var sendErr error
	for sc.Scan() {
		e, err := parseJournalEntry(sc.Bytes())
		if err != nil {
			s.log.Warn("journal entry not understood", "err", err)
			continue
		}
		pos := saved
		pos.Cursor = e.Cursor
		l := Line{Source: s.cfg.Name, Origin: "journal", Text: e.Message, Time: e.Time,
			Host: e.Host, SyslogIdentifier: e.Identifier, PID: e.PID, Key: key, Pos: pos}
		select {
		case out <- l:
		case <-ctx.Done():
			sendErr = ctx.Err()
		}
		if sendErr != nil {
			break
		}
		cursor = e.Cursor
		if err := save(false); err != nil {
			s.log.Warn("journal cursor not saved", "err", err)
		}
	}
	scanErr := sc.Err()
	cancel()
	waitErr := cmd.Wait()
	if err := save(true); err != nil {
		if ctx.Err() != nil {
			return err
		}
		s.log.Warn("journal cursor not saved", "err", err)
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(scanErr, waitErr, stderr.err())
}

// journalEntry is what Run takes from one line of journalctl's JSON.
type journalEntry struct {
	Cursor     string
	Time       time.Time
	Message    string
	Host       string
	Identifier string
	PID        int
}

// parseJournalEntry reads one line of `journalctl --output=json`. A
// field is a string, an array of byte values (a value that is not valid
// UTF-8 or has control characters), null (too large, without --all), or
// an array of those when the entry has the field more than once (the
// first is taken). A MESSAGE's trailing newline is dropped.
func parseJournalEntry(b []byte) (journalEntry, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return journalEntry{}, fmt.Errorf("parse journal entry: %w", err)
	}
	var e journalEntry
	var err error
	field := func(name string) string {
		v, ok := raw[name]
		if !ok || err != nil {
			return ""
		}
		var s string
		s, err = journalValue(v)
		if err != nil {
			err = fmt.Errorf("parse journal entry: %s: %w", name, err)
		}
		return s
	}
	e.Cursor = field("__CURSOR")
	ts := field("__REALTIME_TIMESTAMP")
	e.Message = strings.TrimSuffix(field("MESSAGE"), "\n")
	e.Host = field("_HOSTNAME")
	e.Identifier = field("SYSLOG_IDENTIFIER")
	pid := field("_PID")
	if err != nil {
		return journalEntry{}, err
	}
	if e.Cursor == "" {
		return journalEntry{}, errors.New("parse journal entry: no __CURSOR")
	}
	if ts != "" {
		us, perr := strconv.ParseInt(ts, 10, 64)
		if perr != nil {
			return journalEntry{}, fmt.Errorf("parse journal entry: __REALTIME_TIMESTAMP %q: %w", ts, perr)
		}
		e.Time = time.UnixMicro(us)
	}
	if pid != "" {
		if e.PID, err = strconv.Atoi(pid); err != nil {
			return journalEntry{}, fmt.Errorf("parse journal entry: _PID %q: %w", pid, err)
		}
	}
	return e, nil
}

func journalValue(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0 || bytes.Equal(v, []byte("null")):
		return "", nil
	case v[0] == '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case v[0] == '[':
		var arr []json.RawMessage
		if err := json.Unmarshal(v, &arr); err != nil {
			return "", err
		}
		if len(arr) == 0 {
			return "", nil
		}
		if a := bytes.TrimSpace(arr[0]); len(a) > 0 && (a[0] == '"' || a[0] == '[') {
			return journalValue(arr[0]) // a repeated field: the first value
		}
		var bs []byte
		for _, x := range arr {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(x)), 10, 8)
			if err != nil {
				return "", fmt.Errorf("byte array: %w", err)
			}
			bs = append(bs, byte(n))
		}
		return string(bs), nil
	}
	return "", fmt.Errorf("unexpected value %.20q", v)
}

// tailBuffer keeps the last max bytes written to it: journalctl's
// stderr for the restart log line.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) err() error {
	if s := strings.TrimSpace(string(t.b)); s != "" {
		return fmt.Errorf("journalctl: %s", s)
	}
	return nil
}

// ParseJournalJSON reads one line of `journalctl --output=json` as a
// journal source hands the entry over (Origin "journal", Text, Time,
// Host, SyslogIdentifier, PID; no Source, Key or Pos): for replaying a
// saved `journalctl -o json` through a filter exactly as serve judges it.
func ParseJournalJSON(b []byte) (Line, error) {
	e, err := parseJournalEntry(b)
	if err != nil {
		return Line{}, err
	}
	return Line{Origin: "journal", Text: e.Message, Time: e.Time, Host: e.Host, SyslogIdentifier: e.Identifier, PID: e.PID}, nil
}
