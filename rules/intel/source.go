package intel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gatehouse/rules/filever"
)

// Defaults of SourceConfig.
const (
	// DefaultRefresh is how often a url source is fetched again when
	// SourceConfig.Refresh is zero.
	DefaultRefresh = time.Hour
	// DefaultPoll is how often a file source's file is checked for a
	// change.
	DefaultPoll = 5 * time.Second
	// DefaultTimeout bounds one fetch of all of a source's URLs.
	DefaultTimeout = 30 * time.Second
	// shrinkFloor is the size from which the shrink guard watches a
	// list: small lists (a CDN's 20 ranges) change by large fractions
	// legitimately.
	shrinkFloor = 100
)

// Errors a Source returns or records.
var (
	// ErrNoCopy: a url source has neither a last good copy nor a
	// snapshot to start from; its set is empty until a fetch succeeds.
	ErrNoCopy = errors.New("no last good copy yet")
	// ErrShrink: a refresh would drop more than half of a list of at
	// least 100 entries; it is refused until the next refresh confirms
	// it.
	ErrShrink = errors.New("refresh would drop more than half of the list")
	// ErrEmptyBody: the server answered 200 with no body at all.
	ErrEmptyBody = errors.New("empty answer")
	// ErrStatus: the server answered with a status other than 200 (or
	// 304 to a conditional request).
	ErrStatus = errors.New("unexpected HTTP status")
)

// SourceConfig describes one list and where it comes from.
type SourceConfig struct {
	// Name names the list in logs and Meta (a feed's name, a provider's
	// name). Required.
	Name string
	// URLs are fetched on each refresh (http or https); the list is
	// the union of their contents, and a refresh succeeds only when
	// every URL does. One of URLs and File is required.
	URLs []string
	// File is a local list, read at Load and again whenever it changes
	// (it is polled every Poll; editors and deploy tools replace files
	// by rename, which the poll sees as a new file).
	File string
	// Format is the list's format. Default FormatPlain.
	Format Format
	// Refresh is the interval between fetches of URLs; each wait is
	// jittered by ±10 % so that fleets do not fetch in step. Default
	// DefaultRefresh.
	Refresh time.Duration
	// Poll is the interval between checks of File. Default DefaultPoll.
	Poll time.Duration
	// Timeout bounds one refresh (all URLs, body included). Default
	// DefaultTimeout.
	Timeout time.Duration
	// StatePath is the file the last good copy of a url list is kept
	// in (plain format, mode 0600, replaced atomically), read at Load
	// so that a restart does not depend on the publisher. Default "":
	// none kept.
	StatePath string
	// Fallback is the list used at Load when a url source has no last
	// good copy: a provider's snapshot embedded in the binary. nil:
	// none, Load then returns an empty set and ErrNoCopy.
	Fallback []netip.Prefix
	// FallbackDate is when Fallback was published, reported as
	// Meta.Updated while it is in use.
	FallbackDate time.Time
	// Vet, when set, judges every list before it is used (a fetch, a
	// file read, the last good copy): an error refuses it as a parse
	// error does, and the last good set stays. Callers refuse lists no
	// publisher would serve, such as one covering a whole family.
	Vet func(*Set) error
	// AllowShrink turns the shrink guard off: a refresh that drops
	// more than half of a list of 100 entries or more is then accepted
	// at once instead of on its confirmation by the next refresh.
	AllowShrink bool
	// Limits bound each download and file. Default: Limits' defaults.
	Limits Limits
	// Client makes the requests. Default: a client with no timeout of
	// its own (Timeout bounds each refresh) and Go's default transport.
	Client *http.Client
	// UserAgent is sent with each request. Default "gatehouse".
	UserAgent string
	// Header is sent with each request besides User-Agent: an API key
	// (CrowdSec's X-Api-Key). Never logged. Default none.
	Header http.Header
	// Log receives one line per failed refresh and per accepted change.
	// nil: discard.
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Meta describes a source's current list and its refreshes: what the
// dashboard and metrics show.
type Meta struct {
	// Name is SourceConfig.Name.
	Name string
	// Entries is the current set's Len.
	Entries int
	// Origin says where the current set came from: "url", "file",
	// "state" (the last good copy), "snapshot" (the embedded fallback)
	// or "" (none yet).
	Origin string
	// Updated is when the current set's content was obtained: the
	// fetch or file read, the last good copy's write, the snapshot's
	// date.
	Updated time.Time
	// LastSuccess is the last refresh that succeeded, a 304 included;
	// zero when none has in this process.
	LastSuccess time.Time
	// LastAttempt is the last refresh tried.
	LastAttempt time.Time
	// Failures counts failed refreshes since start.
	Failures uint64
	// LastError is the last failure's message; "" after a success.
	LastError string
	// Skipped is the number of malformed lines tolerated in the
	// current list.
	Skipped int
}

// urlState is what a source remembers of one URL between refreshes, for
// conditional requests.
type urlState struct {
	etag, lastModified string
	prefixes           []netip.Prefix
}

// Source keeps one list current: Load gives the list to start with, Run
// refreshes it. A failed refresh (network error, status other than 200,
// a body over the size cap, a parse error, a suspicious shrink) keeps the
// last good set; it is logged once and counted in Meta. Source is safe
// for concurrent use; Run must not be called twice at once.
type Source struct {
	cfg SourceConfig
	log *slog.Logger

	mu      sync.Mutex
	meta    Meta
	cur     *Set
	urls    []urlState
	pending int // entries of a shrink refused last time, -1 when none
	file    filever.Version
}

// NewSource checks cfg and applies its defaults.
func NewSource(cfg SourceConfig) (*Source, error) {
	if cfg.Name == "" {
		return nil, errors.New("intel source: no name")
	}
	if (len(cfg.URLs) == 0) == (cfg.File == "") {
		return nil, fmt.Errorf("intel source %s: exactly one of urls and file is required", cfg.Name)
	}
	for _, u := range cfg.URLs {
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return nil, fmt.Errorf("intel source %s: url %q is not http or https", cfg.Name, u)
		}
	}
	if cfg.Format == "" {
		cfg.Format = FormatPlain
	}
	if _, err := ParseFormat(string(cfg.Format)); err != nil {
		return nil, fmt.Errorf("intel source %s: %w", cfg.Name, err)
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "gatehouse"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		cfg:     cfg,
		log:     log.With("component", "intel", "list", cfg.Name),
		urls:    make([]urlState, len(cfg.URLs)),
		pending: -1,
	}
	s.meta.Name = cfg.Name
	return s, nil
}

// Meta returns the current Meta.
func (s *Source) Meta() Meta {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meta
}

// Set returns the current set: empty (not nil) before Load.
func (s *Source) Set() *Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return &Set{}
	}
	return s.cur
}

// Load returns the list to start with. A file source reads its file; an
// error leaves the set empty and is returned. A url source reads its last
// good copy (StatePath), else takes Fallback, else returns an empty set
// and ErrNoCopy: the caller decides whether to start without the list. A
// last good copy that cannot be read is returned as an error beside the
// fallback (or empty) set. Load makes no network request.
func (s *Source) Load() (*Set, Meta, error) {
	if s.cfg.File != "" {
		fi, err := os.Stat(s.cfg.File)
		if err == nil {
			err = s.readFile(fi)
		}
		if err != nil {
			s.fail(err)
		}
		return s.Set(), s.Meta(), err
	}
	var stateErr error
	if s.cfg.StatePath != "" {
		set, skipped, updated, err := s.readState()
		switch {
		case err == nil:
			s.install(set, "state", updated, skipped)
			return set, s.Meta(), nil
		case !errors.Is(err, os.ErrNotExist):
			stateErr = fmt.Errorf("intel list %s: last good copy: %w", s.cfg.Name, err)
		}
	}
	if s.cfg.Fallback != nil {
		s.install(NewSet(s.cfg.Fallback), "snapshot", s.cfg.FallbackDate, 0)
		return s.Set(), s.Meta(), stateErr
	}
	if stateErr != nil {
		return s.Set(), s.Meta(), stateErr
	}
	return s.Set(), s.Meta(), fmt.Errorf("intel list %s: %w", s.cfg.Name, ErrNoCopy)
}

func (s *Source) readState() (*Set, int, time.Time, error) {
	f, err := os.Open(s.cfg.StatePath)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	l, err := Parse(f, FormatPlain, s.cfg.Limits)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	set := NewSet(l.Prefixes)
	if err := s.vet(set); err != nil {
		return nil, 0, time.Time{}, err
	}
	return set, l.Skipped, fi.ModTime(), nil
}

// install makes set the current list.
func (s *Source) install(set *Set, origin string, updated time.Time, skipped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = set
	s.meta.Entries = set.Len()
	s.meta.Origin = origin
	s.meta.Updated = updated
	s.meta.Skipped = skipped
}

// fail records a failed refresh.
func (s *Source) fail(err error) {
	s.mu.Lock()
	s.meta.Failures++
	s.meta.LastError = err.Error()
	n := s.meta.Failures
	s.mu.Unlock()
	s.log.Warn("intel list refresh failed, keeping the last good list", "error", err.Error(), "failures", n)
}

// Run keeps the list current until ctx is done, calling update with each
// new set, from Run's goroutine, after the last good copy is written. A
// url source fetches every Refresh (jittered); its first fetch is at once
// unless the last good copy is younger than Refresh. A file source polls
// its file every Poll. Run returns ctx's error.
func (s *Source) Run(ctx context.Context, update func(*Set, Meta)) error {
	if s.cfg.File != "" {
		return s.runFile(ctx, update)
	}
	t := time.NewTimer(s.firstWait())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if set, ok := s.Refresh(ctx); ok {
			update(set, s.Meta())
		}
		t.Reset(jitter(s.cfg.Refresh))
	}
}

// firstWait is how long Run waits before its first fetch: none, unless
// the list came from a last good copy younger than Refresh, so that a
// restart (or a crash loop) does not fetch again what it fetched minutes
// ago.
func (s *Source) firstWait() time.Duration {
	m := s.Meta()
	if m.Origin != "state" {
		return 0
	}
	if age := s.cfg.Now().Sub(m.Updated); age >= 0 && age < s.cfg.Refresh {
		return s.cfg.Refresh - age
	}
	return 0
}

// jitter spreads d by ±10 %.
func jitter(d time.Duration) time.Duration {
	j := d / 10
	if j <= 0 {
		return d
	}
	return d - j + rand.N(2*j+1)
}

// Refresh fetches the list once. It returns the new set and true when the
// list changed and was accepted (the last good copy is written by then);
// the current set and false when nothing changed (every URL answered 304)
// or the refresh failed, which Meta records. Run calls it on its
// schedule; it is exported for a refresh on demand.
func (s *Source) Refresh(ctx context.Context) (*Set, bool) {
	if s.cfg.File != "" {
		return s.pollFile()
	}
	now := s.cfg.Now()
	s.mu.Lock()
	s.meta.LastAttempt = now
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	next := make([]urlState, len(s.cfg.URLs))
	changed := false
	skipped := 0
	for i, u := range s.cfg.URLs {
		s.mu.Lock()
		prev := s.urls[i]
		s.mu.Unlock()
		st, notModified, sk, err := s.fetch(ctx, u, prev)
		if err != nil {
			s.fail(err)
			return s.Set(), false
		}
		next[i] = st
		skipped += sk
		changed = changed || !notModified
	}
	if !changed {
		s.mu.Lock()
		s.meta.LastSuccess = now
		s.meta.LastError = ""
		s.mu.Unlock()
		return s.Set(), false
	}
	var listed []netip.Prefix
	for _, st := range next {
		listed = append(listed, st.prefixes...)
	}
	set := NewSet(listed)
	if err := s.vet(set); err != nil {
		s.fail(err)
		return s.Set(), false
	}
	if err := s.checkShrink(set); err != nil {
		s.fail(err)
		return s.Set(), false
	}
	if err := s.writeState(listed, now); err != nil {
		// The list is good; only its copy failed. Serve it, and say
		// that a restart will fall back to an older copy.
		s.log.Warn("intel list: cannot keep the last good copy", "path", s.cfg.StatePath, "error", err.Error())
	}
	s.mu.Lock()
	s.urls = next
	s.meta.LastSuccess = now
	s.meta.LastError = ""
	s.mu.Unlock()
	s.install(set, "url", now, skipped)
	s.log.Info("intel list updated", "entries", set.Len(), "skipped", skipped)
	return set, true
}

// vet applies SourceConfig.Vet.
func (s *Source) vet(set *Set) error {
	if s.cfg.Vet == nil {
		return nil
	}
	if err := s.cfg.Vet(set); err != nil {
		return fmt.Errorf("intel list %s: %w", s.cfg.Name, err)
	}
	return nil
}

// checkShrink applies the shrink guard: a list of at least shrinkFloor
// entries that would lose more than half of them, or a list of any size
// that would become empty, is refused once; the
// same count on the next refresh confirms it (a publisher does shrink
// lists; a truncated or half-generated one rarely repeats exactly).
func (s *Source) checkShrink(set *Set) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, n := s.cur.Len(), set.Len()
	// A list that comes back empty is suspect at any size: a
	// publisher's broken export serves only its header comments.
	emptied := n == 0 && old > 0
	if s.cfg.AllowShrink || (old < shrinkFloor && !emptied) || n*2 >= old || (s.meta.Origin == "snapshot" && !emptied) {
		s.pending = -1
		return nil
	}
	if s.pending == n {
		s.pending = -1
		s.log.Info("intel list shrink confirmed by a second refresh, accepting it", "entries", n, "previous", old)
		return nil
	}
	s.pending = n
	return fmt.Errorf("intel list %s: %w: %d entries to %d", s.cfg.Name, ErrShrink, old, n)
}

// fetch GETs u, conditionally when prev has validators, and parses a 200
// answer. It returns prev itself and notModified on 304.
func (s *Source) fetch(ctx context.Context, u string, prev urlState) (st urlState, notModified bool, skipped int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return urlState{}, false, 0, fmt.Errorf("intel list %s: %w", s.cfg.Name, err)
	}
	for k, v := range s.cfg.Header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	if prev.prefixes != nil {
		if prev.etag != "" {
			req.Header.Set("If-None-Match", prev.etag)
		}
		if prev.lastModified != "" {
			req.Header.Set("If-Modified-Since", prev.lastModified)
		}
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL, query included; name it
		// without the query, which may hold an API key.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return urlState{}, false, 0, fmt.Errorf("intel list %s: fetch %s: %w", s.cfg.Name, RedactURL(u), err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && prev.prefixes != nil:
		return prev, true, 0, nil
	case resp.StatusCode != http.StatusOK:
		return urlState{}, false, 0, fmt.Errorf("intel list %s: fetch %s: %w %d", s.cfg.Name, RedactURL(u), ErrStatus, resp.StatusCode)
	case resp.ContentLength > s.cfg.Limits.MaxBytes:
		return urlState{}, false, 0, fmt.Errorf("intel list %s: fetch %s: %w: %d bytes announced, cap %d", s.cfg.Name, RedactURL(u), ErrTooLarge, resp.ContentLength, s.cfg.Limits.MaxBytes)
	}
	body := &countReader{r: resp.Body}
	l, err := Parse(body, s.cfg.Format, s.cfg.Limits)
	if err == nil && body.n == 0 {
		// A list, even an empty one, has at least a header line; an
		// empty 200 is a publisher or CDN glitch, not a list.
		err = ErrEmptyBody
	}
	if err != nil {
		return urlState{}, false, 0, fmt.Errorf("intel list %s: fetch %s: %w", s.cfg.Name, RedactURL(u), err)
	}
	if l.FirstSkipped != nil {
		s.log.Warn("intel list: malformed lines skipped", "skipped", l.Skipped, "first", l.FirstSkipped.Error())
	}
	ps := l.Prefixes
	if ps == nil {
		ps = []netip.Prefix{}
	}
	return urlState{
		etag:         resp.Header.Get("ETag"),
		lastModified: resp.Header.Get("Last-Modified"),
		prefixes:     ps,
	}, false, l.Skipped, nil
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// redactURL drops a URL's query and user info, where feed URLs carry API
// keys, before it is logged.
// RedactURL returns u without its query, fragment and user info, which
// may carry a feed's API key: for logs, metrics and the dashboard.
func RedactURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '@'); j >= 0 && !strings.Contains(u[i+3:i+3+j], "/") {
			u = u[:i+3] + u[i+3+j+1:]
		}
	}
	return u
}

// writeState replaces the last good copy atomically: a temporary file in
// the same directory, written, synced, renamed over the old copy.
func (s *Source) writeState(listed []netip.Prefix, now time.Time) (err error) {
	if s.cfg.StatePath == "" {
		return nil
	}
	dir := filepath.Dir(s.cfg.StatePath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.cfg.StatePath)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	from := make([]string, len(s.cfg.URLs))
	for i, u := range s.cfg.URLs {
		from[i] = RedactURL(u)
	}
	fmt.Fprintf(w, "# gatehouse: last good copy of list %s\n# fetched %s from %s\n",
		s.cfg.Name, now.UTC().Format(time.RFC3339), strings.Join(from, " "))
	for _, p := range listed {
		w.WriteString(p.String())
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), s.cfg.StatePath)
}

// runFile polls the file every Poll.
func (s *Source) runFile(ctx context.Context, update func(*Set, Meta)) error {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if set, ok := s.pollFile(); ok {
			update(set, s.Meta())
		}
	}
}

// pollFile re-reads the file when its identity, size or modification
// time changed since the last read.
func (s *Source) pollFile() (*Set, bool) {
	fi, err := os.Stat(s.cfg.File)
	if err != nil {
		s.mu.Lock()
		same := s.meta.LastError == err.Error()
		s.mu.Unlock()
		if !same {
			s.fail(err)
		}
		return s.Set(), false
	}
	s.mu.Lock()
	prev := s.file
	s.mu.Unlock()
	if prev.Same(filever.Of(fi)) {
		return s.Set(), false
	}
	if err := s.readFile(fi); err != nil {
		s.fail(err)
		return s.Set(), false
	}
	s.log.Info("intel list file re-read", "path", s.cfg.File, "entries", s.Set().Len())
	return s.Set(), true
}

// readFile parses the file and installs it; fi is its state before the
// read, remembered whatever the outcome so that a broken file is
// reported once, not on every poll.
func (s *Source) readFile(fi os.FileInfo) error {
	now := s.cfg.Now()
	s.mu.Lock()
	s.file = filever.Of(fi)
	s.meta.LastAttempt = now
	loaded := s.meta.Origin != ""
	s.mu.Unlock()
	f, err := os.Open(s.cfg.File)
	if err != nil {
		return fmt.Errorf("intel list %s: %w", s.cfg.Name, err)
	}
	defer f.Close()
	l, err := Parse(f, s.cfg.Format, s.cfg.Limits)
	if err != nil {
		return fmt.Errorf("intel list %s: %s: %w", s.cfg.Name, s.cfg.File, err)
	}
	set := NewSet(l.Prefixes)
	if err := s.vet(set); err != nil {
		return err
	}
	// A file caught half written, or emptied by "> file", is refused
	// once: the next poll reads it again (its state is forgotten), and
	// the same count confirms it.
	if loaded {
		if err := s.checkShrink(set); err != nil {
			s.mu.Lock()
			s.file = filever.Version{}
			s.mu.Unlock()
			return err
		}
	}
	if l.FirstSkipped != nil {
		s.log.Warn("intel list: malformed lines skipped", "path", s.cfg.File, "skipped", l.Skipped, "first", l.FirstSkipped.Error())
	}
	s.install(set, "file", fi.ModTime(), l.Skipped)
	s.mu.Lock()
	s.meta.LastSuccess = now
	s.meta.LastError = ""
	s.mu.Unlock()
	return nil
}
