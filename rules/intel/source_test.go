package intel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// feedServer serves whatever its handler is set to, on 127.0.0.1.
type feedServer struct {
	*httptest.Server
	mu      sync.Mutex
	handler http.HandlerFunc
	reqs    []*http.Request
}

func newFeedServer(t *testing.T) *feedServer {
	t.Helper()
	fs := &feedServer{}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		h := fs.handler
		fs.reqs = append(fs.reqs, r.Clone(context.Background()))
		fs.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *feedServer) set(h http.HandlerFunc) {
	fs.mu.Lock()
	fs.handler = h
	fs.mu.Unlock()
}

func (fs *feedServer) lastRequest() *http.Request {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.reqs[len(fs.reqs)-1]
}

// serve answers body with status 200 and an ETag; a request carrying that
// ETag gets 304.
func serve(body, etag string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if etag != "" && r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		fmt.Fprint(w, body)
	}
}

// netset is a plain list of n /32s in 198.51.100.0/24 and 203.0.113.0/24,
// starting at the first address of base.
func netset(n int, base string) string {
	var b strings.Builder
	b.WriteString("# test list\n")
	a := netip.MustParseAddr(base)
	for range n {
		b.WriteString(a.String() + "\n")
		a = a.Next()
	}
	return b.String()
}

func newTestSource(t *testing.T, cfg SourceConfig) *Source {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatalf("NewSource: %v", err)
	}
	return s
}

func TestNewSourceErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     SourceConfig
		wantErr string
	}{
		{"no name", SourceConfig{File: "x"}, "no name"},
		{"neither", SourceConfig{Name: "a"}, "exactly one of urls and file"},
		{"both", SourceConfig{Name: "a", File: "x", URLs: []string{"https://example.com/"}}, "exactly one of urls and file"},
		{"ftp", SourceConfig{Name: "a", URLs: []string{"ftp://example.com/list"}}, `url "ftp://example.com/list" is not http or https`},
		{"format", SourceConfig{Name: "a", File: "x", Format: "csv"}, `unknown list format "csv"`},
	}
	for _, tc := range tests {
		if _, err := NewSource(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: NewSource error = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

// TestSourceRefresh walks one feed through the answers a publisher can
// give: each keeps or replaces the set as it should, and the last good
// copy follows the accepted lists only.
func TestSourceRefresh(t *testing.T) {
	t.Parallel()
	fs := newFeedServer(t)
	state := filepath.Join(t.TempDir(), "intel", "test.txt")
	s := newTestSource(t, SourceConfig{
		URLs: []string{fs.URL + "/list?key=secret"}, StatePath: state,
		Limits:  Limits{MaxBytes: 16 << 10},
		Timeout: 200 * time.Millisecond,
	})
	ctx := t.Context()

	set, m, err := s.Load()
	if !errors.Is(err, ErrNoCopy) || set.Len() != 0 || m.Origin != "" {
		t.Fatalf("Load() with no copy = %d entries, origin %q, %v; want empty, ErrNoCopy", set.Len(), m.Origin, err)
	}

	fs.set(serve(netset(200, "198.51.100.0"), `"v1"`))
	set, ok := s.Refresh(ctx)
	if !ok || set.Len() != 200 || !set.Contains(netip.MustParseAddr("198.51.100.199")) {
		t.Fatalf("first Refresh = %d entries, %v; want 200, true", set.Len(), ok)
	}
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("last good copy %s: %v, mode %v; want 0600", state, err, fi)
	}

	// Unchanged: conditional GET, 304, nothing new.
	if _, ok := s.Refresh(ctx); ok {
		t.Errorf("Refresh after 304 reported a new set")
	}
	if got := fs.lastRequest().Header.Get("If-None-Match"); got != `"v1"` {
		t.Errorf("If-None-Match = %q, want %q", got, `"v1"`)
	}

	steps := []struct {
		name    string
		h       http.HandlerFunc
		wantErr string
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", 500) }, "unexpected HTTP status 500"},
		{"empty 200", serve("", ""), "empty answer"},
		{"HTML with 200", serve("<html>\n<body>maintenance</body>\n</html>\n", ""), "malformed list"},
		{"too big, announced", serve(netset(5000, "10.0.0.0"), ""), "list larger than its size cap"},
		{"too big, chunked", func(w http.ResponseWriter, r *http.Request) {
			for range 5000 {
				fmt.Fprint(w, "10.0.0.1\n")
				w.(http.Flusher).Flush()
			}
		}, "list larger than its size cap"},
		{"slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, "context deadline exceeded"},
		{"shrink to a tenth", serve(netset(20, "203.0.113.0"), `"v2"`), "refresh would drop more than half of the list: 200 entries to 20"},
	}
	for i, st := range steps {
		fs.set(st.h)
		set, ok := s.Refresh(ctx)
		m := s.Meta()
		if ok || set.Len() != 200 || !set.Contains(netip.MustParseAddr("198.51.100.0")) {
			t.Errorf("%s: Refresh = %d entries, %v; want the last good 200, false", st.name, set.Len(), ok)
		}
		if m.Failures != uint64(i+1) || !strings.Contains(m.LastError, st.wantErr) {
			t.Errorf("%s: Meta = %d failures, error %q; want %d, %q", st.name, m.Failures, m.LastError, i+1, st.wantErr)
		}
		if strings.Contains(m.LastError, "secret") {
			t.Errorf("%s: LastError %q shows the URL's query", st.name, m.LastError)
		}
	}

	// The same shrink again is confirmed and accepted.
	set, ok = s.Refresh(ctx)
	if !ok || set.Len() != 20 || set.Contains(netip.MustParseAddr("198.51.100.0")) {
		t.Fatalf("confirmed shrink: Refresh = %d entries, %v; want 20, true", set.Len(), ok)
	}
	if m := s.Meta(); m.LastError != "" || m.Origin != "url" || m.Entries != 20 {
		t.Errorf("after success Meta = %+v", m)
	}

	copyText, err := os.ReadFile(state)
	if err != nil || !strings.HasPrefix(string(copyText), "# gatehouse: last good copy of list test\n") || strings.Contains(string(copyText), "secret") {
		t.Errorf("last good copy starts %.120q, %v; want the header without the URL's query", copyText, err)
	}

	// A restart starts from the last good copy.
	s2 := newTestSource(t, SourceConfig{URLs: []string{fs.URL + "/list"}, StatePath: state})
	set, m, err = s2.Load()
	if err != nil || set.Len() != 20 || m.Origin != "state" || !set.Contains(netip.MustParseAddr("203.0.113.19")) {
		t.Fatalf("Load after restart = %d entries, origin %q, %v; want 20 from state", set.Len(), m.Origin, err)
	}
}

// TestSourceTruncatedSpamhaus: a download cut short is refused by the
// metadata record count and the set stays.
func TestSourceTruncatedSpamhaus(t *testing.T) {
	t.Parallel()
	full, err := os.ReadFile("testdata/spamhaus_drop_v4.json")
	if err != nil {
		t.Fatal(err)
	}
	fs := newFeedServer(t)
	s := newTestSource(t, SourceConfig{URLs: []string{fs.URL}, Format: FormatSpamhausDropJSON})
	fs.set(serve(string(full), ""))
	if set, ok := s.Refresh(t.Context()); !ok || set.Len() != 300 {
		t.Fatalf("Refresh(full) = %d, %v; want 300, true", set.Len(), ok)
	}
	lines := strings.SplitAfter(string(full), "\n")
	fs.set(serve(strings.Join(lines[:150], "")+lines[len(lines)-2], ""))
	set, ok := s.Refresh(t.Context())
	if ok || set.Len() != 300 || !strings.Contains(s.Meta().LastError, "metadata says 300 records, the list holds 150") {
		t.Errorf("Refresh(truncated) = %d, %v, %q; want the last 300 kept", set.Len(), ok, s.Meta().LastError)
	}
}

// TestSourceSeveralURLs: a provider's list is the union of its URLs, and
// one failing URL fails the refresh.
func TestSourceSeveralURLs(t *testing.T) {
	t.Parallel()
	v4, v6 := newFeedServer(t), newFeedServer(t)
	v4.set(serve("203.0.113.0/24\n", `"a"`))
	v6.set(serve("2001:db8::/32\n", `"b"`))
	s := newTestSource(t, SourceConfig{URLs: []string{v4.URL, v6.URL}, Fallback: mustPrefixes(t, "198.51.100.0/24"), FallbackDate: time.Date(2026, 8, 22, 0, 0, 0, 0, time.UTC)})
	set, m, err := s.Load()
	if err != nil || m.Origin != "snapshot" || !set.Contains(netip.MustParseAddr("198.51.100.1")) || m.Updated.Year() != 2026 {
		t.Fatalf("Load() = %d entries, %+v, %v; want the fallback", set.Len(), m, err)
	}
	set, ok := s.Refresh(t.Context())
	if !ok || set.Len() != 2 || !set.Contains(netip.MustParseAddr("2001:db8::1")) || set.Contains(netip.MustParseAddr("198.51.100.1")) {
		t.Fatalf("Refresh = %d entries, %v; want the union of both URLs", set.Len(), ok)
	}
	// One URL changes, the other answers 304: the union is rebuilt
	// from the remembered part.
	v4.set(serve("203.0.112.0/24\n", `"c"`))
	set, ok = s.Refresh(t.Context())
	if !ok || !set.Contains(netip.MustParseAddr("203.0.112.1")) || set.Contains(netip.MustParseAddr("203.0.113.1")) || !set.Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Errorf("Refresh with one 304 = %v, %v", prefixStrings(collect(set)), ok)
	}
	v6.set(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "gone", 404) })
	if set, ok := s.Refresh(t.Context()); ok || !set.Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Errorf("Refresh with one 404 = %v, %v; want the last good set", prefixStrings(collect(set)), ok)
	}
}

func collect(s *Set) []netip.Prefix {
	var out []netip.Prefix
	for p := range s.Prefixes() {
		out = append(out, p)
	}
	return out
}

// TestSourceFile: a file list is re-read when it is replaced by rename or
// rewritten, and a broken version keeps the last good set.
func TestSourceFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "blocked.txt")
	write := func(content string, mtime time.Time) {
		t.Helper()
		tmp := filepath.Join(dir, "blocked.txt.new")
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write("203.0.113.0/24\n", t0)
	s := newTestSource(t, SourceConfig{File: path})
	set, m, err := s.Load()
	if err != nil || set.Len() != 1 || m.Origin != "file" {
		t.Fatalf("Load() = %d, %+v, %v", set.Len(), m, err)
	}
	if _, ok := s.Refresh(t.Context()); ok {
		t.Errorf("Refresh of an unchanged file reported a new set")
	}
	write("198.51.100.0/24\n198.51.100.7\n", t0) // same mtime, new inode
	if set, ok := s.Refresh(t.Context()); !ok || set.Len() != 2 {
		t.Errorf("Refresh after rename = %d, %v; want 2, true", set.Len(), ok)
	}
	write("<html>oops</html>\n", t0.Add(time.Second))
	if set, ok := s.Refresh(t.Context()); ok || set.Len() != 2 || s.Meta().Failures != 1 {
		t.Errorf("Refresh of a broken file = %d, %v, %d failures; want the last 2 kept, 1 failure", set.Len(), ok, s.Meta().Failures)
	}
	if _, ok := s.Refresh(t.Context()); ok || s.Meta().Failures != 1 {
		t.Errorf("a broken file was counted again without a change: %d failures", s.Meta().Failures)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if set, ok := s.Refresh(t.Context()); ok || set.Len() != 2 || !strings.Contains(s.Meta().LastError, "no such file") {
		t.Errorf("Refresh of a removed file = %d, %v, %q", set.Len(), ok, s.Meta().LastError)
	}
}

// TestSourceRun: Run fetches at once when there is no fresh copy, hands
// each new set to update, and stops with its context.
func TestSourceRun(t *testing.T) {
	t.Parallel()
	fs := newFeedServer(t)
	fs.set(serve("203.0.113.0/24\n", ""))
	s := newTestSource(t, SourceConfig{URLs: []string{fs.URL}, Refresh: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan Meta, 16)
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(set *Set, m Meta) {
			select {
			case got <- m:
			default:
			}
		})
	}()
	m := <-got
	if m.Entries != 1 || m.Origin != "url" {
		t.Errorf("update Meta = %+v; want 1 entry from url", m)
	}
	fs.set(serve("203.0.113.0/24\n198.51.100.0/24\n", ""))
	for m.Entries != 2 {
		m = <-got
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run() = %v, want context.Canceled", err)
	}
}

// TestSourceFirstWait: a restart with a fresh last good copy waits for
// the rest of the interval; a stale or missing copy fetches at once.
func TestSourceFirstWait(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(state, []byte("203.0.113.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	written := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := os.Chtimes(state, written, written); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		now   time.Time
		state string
		want  time.Duration
	}{
		{"fresh copy", written.Add(20 * time.Minute), state, 40 * time.Minute},
		{"stale copy", written.Add(2 * time.Hour), state, 0},
		{"copy from the future", written.Add(-time.Minute), state, 0},
		{"no copy", written, filepath.Join(t.TempDir(), "none.txt"), 0},
	}
	for _, tc := range tests {
		s := newTestSource(t, SourceConfig{URLs: []string{"https://lists.example.com/l"}, StatePath: tc.state,
			Refresh: time.Hour, Now: func() time.Time { return tc.now }})
		s.Load()
		if got := s.firstWait(); got != tc.want {
			t.Errorf("%s: firstWait() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	for range 1000 {
		if d := jitter(time.Hour); d < 54*time.Minute || d > 66*time.Minute {
			t.Fatalf("jitter(1h) = %v, want within ±10 %%", d)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://lists.example.com/feed?key=secret", "https://lists.example.com/feed"},
		{"https://user:pass@lists.example.com/feed", "https://lists.example.com/feed"},
		{"https://lists.example.com/a@b", "https://lists.example.com/a@b"},
		{"http://lists.example.com/feed#frag", "http://lists.example.com/feed"},
	}
	for _, tc := range tests {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSourceRunFile: Run polls a file source and hands a replaced file's
// list to update.
func TestSourceRunFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "blocked.txt")
	if err := os.WriteFile(path, []byte("203.0.113.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newTestSource(t, SourceConfig{File: path, Poll: 5 * time.Millisecond})
	if _, _, err := s.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan *Set, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(set *Set, m Meta) {
			select {
			case got <- set:
			default:
			}
		})
	}()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte("198.51.100.0/24\n198.51.100.7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if set := <-got; set.Len() != 2 || !set.Contains(netip.MustParseAddr("198.51.100.1")) {
		t.Errorf("update after rename got %d entries", set.Len())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run() = %v, want context.Canceled", err)
	}
}

// TestSourceEmptied: a small list that comes back empty (a header of
// comments only) keeps the last good set until a second refresh confirms
// it; a small list that shrinks without emptying is accepted at once.
func TestSourceEmptied(t *testing.T) {
	t.Parallel()
	fs := newFeedServer(t)
	s := newTestSource(t, SourceConfig{URLs: []string{fs.URL + "/list"}})
	ctx := t.Context()
	fs.set(serve("198.51.100.0/24\n203.0.113.0/24\n", ""))
	if set, ok := s.Refresh(ctx); !ok || set.Len() != 2 {
		t.Fatalf("first Refresh = %d entries, %v; want 2, true", set.Len(), ok)
	}
	fs.set(serve("# firehol_level1\n# nothing today\n", ""))
	if set, ok := s.Refresh(ctx); ok || set.Len() != 2 {
		t.Fatalf("emptied: Refresh = %d entries, %v; want the last good 2, false", set.Len(), ok)
	}
	if m := s.Meta(); m.Failures != 1 || !strings.Contains(m.LastError, "2 entries to 0") {
		t.Errorf("emptied: Meta = %d failures, %q", m.Failures, m.LastError)
	}
	if set, ok := s.Refresh(ctx); !ok || set.Len() != 0 {
		t.Fatalf("confirmed empty: Refresh = %d entries, %v; want 0, true", set.Len(), ok)
	}
	fs.set(serve("198.51.100.0/24\n203.0.113.0/24\n192.0.2.0/24\n", ""))
	s.Refresh(ctx)
	fs.set(serve("198.51.100.0/24\n", ""))
	if set, ok := s.Refresh(ctx); !ok || set.Len() != 1 {
		t.Errorf("small shrink: Refresh = %d entries, %v; want 1, true", set.Len(), ok)
	}
}

// TestSourceFileEmptied: a file emptied (or caught half written) is
// refused by the first poll that sees it and taken by the next that finds
// it the same; a file that grows is taken at once.
func TestSourceFileEmptied(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "blocked.txt")
	if err := os.WriteFile(path, []byte(netset(200, "198.51.100.0")), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newTestSource(t, SourceConfig{File: path})
	if set, _, err := s.Load(); err != nil || set.Len() != 200 {
		t.Fatalf("Load() = %d, %v", set.Len(), err)
	}
	if err := os.WriteFile(path, []byte("# list\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if set, ok := s.Refresh(t.Context()); ok || set.Len() != 200 || !strings.Contains(s.Meta().LastError, "200 entries to 0") {
		t.Fatalf("emptied file: Refresh = %d, %v, %q; want the last 200 kept", set.Len(), ok, s.Meta().LastError)
	}
	if set, ok := s.Refresh(t.Context()); !ok || set.Len() != 0 {
		t.Fatalf("emptied file, polled again: Refresh = %d, %v; want 0, true", set.Len(), ok)
	}
	if err := os.WriteFile(path, []byte(netset(10, "203.0.113.0")), 0o644); err != nil {
		t.Fatal(err)
	}
	if set, ok := s.Refresh(t.Context()); !ok || set.Len() != 10 {
		t.Errorf("refilled file: Refresh = %d, %v; want 10, true", set.Len(), ok)
	}
}

// TestSourceVet: a list Vet refuses is never used, whether fetched, read
// from a file or from the last good copy.
func TestSourceVet(t *testing.T) {
	t.Parallel()
	vet := func(s *Set) error {
		if s.Contains(netip.MustParseAddr("8.8.8.8")) {
			return errors.New("covers 8.8.8.8")
		}
		return nil
	}
	fs := newFeedServer(t)
	state := filepath.Join(t.TempDir(), "copy.txt")
	s := newTestSource(t, SourceConfig{URLs: []string{fs.URL}, StatePath: state, Vet: vet})
	fs.set(serve("198.51.100.0/24\n", ""))
	if set, ok := s.Refresh(t.Context()); !ok || set.Len() != 1 {
		t.Fatalf("Refresh = %d, %v", set.Len(), ok)
	}
	fs.set(serve("0.0.0.0/1\n", ""))
	if set, ok := s.Refresh(t.Context()); ok || set.Len() != 1 || !strings.Contains(s.Meta().LastError, "covers 8.8.8.8") {
		t.Errorf("vetted fetch: Refresh = %d, %v, %q; want the last good 1", set.Len(), ok, s.Meta().LastError)
	}
	if err := os.WriteFile(state, []byte("0.0.0.0/1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := newTestSource(t, SourceConfig{URLs: []string{fs.URL}, StatePath: state, Vet: vet})
	if set, _, err := s2.Load(); err == nil || set.Len() != 0 {
		t.Errorf("vetted copy: Load = %d, %v; want refused", set.Len(), err)
	}
	file := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(file, []byte("0.0.0.0/1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s3 := newTestSource(t, SourceConfig{File: file, Vet: vet})
	if set, _, err := s3.Load(); err == nil || set.Len() != 0 {
		t.Errorf("vetted file: Load = %d, %v; want refused", set.Len(), err)
	}
}
