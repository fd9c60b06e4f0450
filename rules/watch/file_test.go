package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testRun is a FileSource running in the background for a test.
type testRun struct {
	cancel context.CancelFunc
	done   chan error
	lines  chan Line
}

func testConfig(pos Positions, paths ...string) FileConfig {
	return FileConfig{
		Name:         "test",
		Paths:        paths,
		Positions:    pos,
		PollInterval: 20 * time.Millisecond,
		SaveInterval: time.Hour, // saved at the stop: the tests see exact positions
		RotateGrace:  100 * time.Millisecond,
	}
}

func startFile(t *testing.T, cfg FileConfig) *testRun {
	t.Helper()
	s, err := NewFileSource(cfg, nil)
	if err != nil {
		t.Fatalf("NewFileSource: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &testRun{cancel: cancel, done: make(chan error, 1), lines: make(chan Line, 64)}
	go func() { r.done <- s.Run(ctx, r.lines) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop stops the source and returns the lines it had sent but the test
// had not received.
func (r *testRun) stop(t *testing.T) []Line {
	t.Helper()
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	var rest []Line
	for {
		select {
		case l := <-r.lines:
			rest = append(rest, l)
		case err := <-r.done:
			for {
				select {
				case l := <-r.lines:
					rest = append(rest, l)
				default:
					if err != nil {
						t.Errorf("Run = %v, want nil", err)
					}
					return rest
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return 10s after cancel")
		}
	}
}

// until receives lines up to and including the one whose text is last.
func (r *testRun) until(t *testing.T, last string) []Line {
	t.Helper()
	var got []Line
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l := <-r.lines:
			got = append(got, l)
			if l.Text == last {
				return got
			}
		case <-deadline:
			t.Fatalf("line %q not received in 20s; got %d lines", last, len(got))
		}
	}
}

// writeLines appends lines prefix-from … prefix-(to-1) to f.
func writeLines(t *testing.T, f *os.File, prefix string, from, to int) {
	t.Helper()
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s-%06d\n", prefix, i)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// checkExactlyOnce fails unless lines hold each of want exactly once
// and nothing else.
func checkExactlyOnce(t *testing.T, lines []Line, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, l := range lines {
		seen[l.Text]++
	}
	for _, w := range want {
		if seen[w] != 1 {
			t.Errorf("line %q read %d times, want 1", w, seen[w])
		}
		delete(seen, w)
	}
	for text, n := range seen {
		t.Errorf("unexpected line %q read %d times", text, n)
	}
	if len(lines) != len(want) {
		t.Errorf("read %d lines, want %d", len(lines), len(want))
	}
}

func names(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%06d", prefix, i))
	}
	return out
}

func TestFileRotateRename(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	f := appendFile(t, path)
	writeLines(t, f, "a", 0, 1000)
	r := startFile(t, testConfig(nil, path))
	got := r.until(t, "a-000999")

	// logrotate: rename, create; the writer appends to the old file
	// until it reopens.
	writeLines(t, f, "a", 1000, 1500)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	writeLines(t, f, "a", 1500, 2000)
	g := appendFile(t, path)
	writeLines(t, f, "a", 2000, 2100)
	writeLines(t, g, "b", 0, 1000)
	got = append(got, r.until(t, "b-000999")...)
	// The old file is read on beside the new one: its last line may
	// come after the new file's.
	if !slices.ContainsFunc(got, func(l Line) bool { return l.Text == "a-002099" }) {
		got = append(got, r.until(t, "a-002099")...)
	}
	got = append(got, r.stop(t)...)
	checkExactlyOnce(t, got, append(names("a", 0, 2100), names("b", 0, 1000)...))
}

func TestFileRotateRenameWithinGlob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	f := appendFile(t, path)
	writeLines(t, f, "a", 0, 100)
	r := startFile(t, testConfig(nil, path+"*"))
	got := r.until(t, "a-000099")
	for gen, p := range []string{"b", "c"} {
		// auth.log.1 → auth.log.2.gz (compressed, never read), auth.log → auth.log.1.
		if gen > 0 {
			if err := os.Rename(path+".1", path+".2.gz"); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		writeLines(t, f, p+"-old", 0, 10)
		f = appendFile(t, path)
		writeLines(t, f, p, 0, 100)
		got = append(got, r.until(t, p+"-000099")...)
	}
	got = append(got, r.stop(t)...)
	want := names("a", 0, 100)
	for _, p := range []string{"b", "c"} {
		want = append(want, names(p+"-old", 0, 10)...)
		want = append(want, names(p, 0, 100)...)
	}
	checkExactlyOnce(t, got, want)
}

func copyTruncate(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".1", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

func TestFileCopyTruncate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f := appendFile(t, path)
	writeLines(t, f, "a", 0, 1000)
	r := startFile(t, testConfig(nil, path))
	got := r.until(t, "a-000999")
	writeLines(t, f, "a", 1000, 2000) // read or not before the copy: either way once
	copyTruncate(t, path)
	writeLines(t, f, "b", 0, 500) // O_APPEND: from offset 0
	got = append(got, r.until(t, "b-000499")...)
	got = append(got, r.stop(t)...)
	checkExactlyOnce(t, got, append(names("a", 0, 2000), names("b", 0, 500)...))
}

// TestFileCopyTruncateWhileHandingOver pins a lost-lines bug: the head
// hash was taken from the file after the lines read were handed over,
// so a copytruncate while the reader waited on a slow consumer made the
// hash describe the new content. The copy was then not found (the lines
// written before the truncation were lost) and, when the new content
// outgrew the read offset, the truncation was not even noticed (the
// new file was read on from the old offset). A file resumed at a saved
// offset must hash the bytes before the offset too.
func TestFileCopyTruncateWhileHandingOver(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		saved bool // resume after 10 older lines, at a position without hash
		newB  int  // lines written after the truncation, 9 bytes each
	}{
		{name: "new content shorter than the read offset", newB: 500},
		{name: "new content longer than the read offset", newB: 2000},
		{name: "resumed at a saved offset", saved: true, newB: 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			f := appendFile(t, path)
			pos := newMemPositions()
			if tc.saved {
				// As a consumer saves Line.Pos of a first read: the hash
				// is only taken once the read is handed over.
				writeLines(t, f, "x", 0, 10)
				st, err := f.Stat()
				if err != nil {
					t.Fatal(err)
				}
				id := idOf(st)
				if err := pos.SetPosition(fileKey("test", path), Position{Dev: id.dev, Ino: id.ino, Offset: st.Size()}); err != nil {
					t.Fatal(err)
				}
			}
			writeLines(t, f, "a", 0, 1000)
			r := startFile(t, testConfig(pos, path))
			// The first read took the a lines at once; the source now
			// waits to hand over lines 1…999 (more than the channel holds)
			// while the file is appended to, copied and truncated.
			got := r.until(t, "a-000000")
			writeLines(t, f, "a", 1000, 2000)
			copyTruncate(t, path)
			writeLines(t, f, "b", 0, tc.newB) // more than the 1 KiB head
			got = append(got, r.until(t, fmt.Sprintf("b-%06d", tc.newB-1))...)
			got = append(got, r.stop(t)...)
			checkExactlyOnce(t, got, append(names("a", 0, 2000), names("b", 0, tc.newB)...))
		})
	}
}

func TestFileRestartMidFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	pos, err := OpenPositionFile(filepath.Join(dir, "positions.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := appendFile(t, path)
	writeLines(t, f, "a", 0, 500)
	if _, err := f.WriteString("partial"); err != nil {
		t.Fatal(err)
	}
	r := startFile(t, testConfig(pos, path))
	got := r.until(t, "a-000499")
	got = append(got, r.stop(t)...)

	writeLines(t, f, "-rest", 0, 1) // completes "partial-rest-000000"
	writeLines(t, f, "b", 0, 500)
	// A new process: positions from the file.
	pos, err = OpenPositionFile(filepath.Join(dir, "positions.json"))
	if err != nil {
		t.Fatal(err)
	}
	r = startFile(t, testConfig(pos, path))
	got = append(got, r.until(t, "b-000499")...)
	got = append(got, r.stop(t)...)
	checkExactlyOnce(t, got, append(append(names("a", 0, 500), "partial-rest-000000"), names("b", 0, 500)...))
}

func TestFileRestartAfterRotation(t *testing.T) {
	t.Parallel()
	for _, rotate := range []string{"rename", "copytruncate"} {
		t.Run(rotate, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "auth.log")
			pos := newMemPositions()
			f := appendFile(t, path)
			writeLines(t, f, "a", 0, 500)
			r := startFile(t, testConfig(pos, path))
			got := r.until(t, "a-000499")
			got = append(got, r.stop(t)...)

			// While gatehouse is down: more lines, a rotation, more lines.
			writeLines(t, f, "a", 500, 1000)
			switch rotate {
			case "rename":
				if err := os.Rename(path, path+".1"); err != nil {
					t.Fatal(err)
				}
				f = appendFile(t, path)
			case "copytruncate":
				copyTruncate(t, path)
			}
			writeLines(t, f, "b", 0, 500)
			r = startFile(t, testConfig(pos, path))
			got = append(got, r.until(t, "b-000499")...)
			got = append(got, r.stop(t)...)
			checkExactlyOnce(t, got, append(names("a", 0, 1000), names("b", 0, 500)...))
		})
	}
}

func TestFileReusedInode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	pos := newMemPositions()
	f := appendFile(t, path)
	writeLines(t, f, "a", 0, 100)
	r := startFile(t, testConfig(pos, path))
	r.until(t, "a-000099")
	r.stop(t)
	// Truncated and rewritten past the old offset while down: the head
	// hash tells it is not the file that was read.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, f, "b", 0, 200)
	r = startFile(t, testConfig(pos, path))
	got := r.until(t, "b-000199")
	got = append(got, r.stop(t)...)
	checkExactlyOnce(t, got, names("b", 0, 200))
}

func TestFileAppearsLater(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sub := filepath.Join(dir, "later")
	r := startFile(t, testConfig(nil, filepath.Join(sub, "*.log")))
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	f := appendFile(t, filepath.Join(sub, "new.log"))
	writeLines(t, f, "a", 0, 100)
	got := r.until(t, "a-000099")
	g := appendFile(t, filepath.Join(sub, "other.log"))
	writeLines(t, g, "b", 0, 100)
	got = append(got, r.until(t, "b-000099")...)
	got = append(got, r.stop(t)...)
	checkExactlyOnce(t, got, append(names("a", 0, 100), names("b", 0, 100)...))
}

func TestFileGlobSeveral(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var files []*os.File
	var want []string
	for i := range 4 {
		files = append(files, appendFile(t, filepath.Join(dir, fmt.Sprintf("f%d.log", i))))
	}
	if err := os.WriteFile(filepath.Join(dir, "skip.txt"), []byte("not matched\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startFile(t, testConfig(nil, filepath.Join(dir, "*.log")))
	for round := range 5 {
		for i, f := range files {
			p := fmt.Sprintf("f%d", i)
			writeLines(t, f, p, round*100, round*100+100)
			want = append(want, names(p, round*100, round*100+100)...)
		}
	}
	writeLines(t, files[0], "end", 0, 1)
	got := r.until(t, "end-000000")
	// The other files may still be in flight: wait for their last lines.
	seen := map[string]bool{}
	for _, l := range got {
		seen[l.Text] = true
	}
	for i := 1; i < len(files); i++ {
		if last := fmt.Sprintf("f%d-%06d", i, 499); !seen[last] {
			got = append(got, r.until(t, last)...)
		}
	}
	got = append(got, r.stop(t)...)
	checkExactlyOnce(t, got, append(want, "end-000000"))
	for _, l := range got {
		if !strings.HasPrefix(filepath.Base(l.Origin), l.Text[:2]) && l.Text != "end-000000" {
			t.Errorf("line %q has origin %q", l.Text, l.Origin)
		}
	}
}

func TestFilePartialLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f := appendFile(t, path)
	r := startFile(t, testConfig(nil, path))
	for _, chunk := range []string{"ab", "c", "def\r\nghi", "\n", "end\n"} {
		if _, err := f.WriteString(chunk); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond) // let the source see each chunk alone
	}
	got := r.until(t, "end")
	got = append(got, r.stop(t)...)
	checkExactlyOnce(t, got, []string{"abcdef", "ghi", "end"})
}

func TestFileLongLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	long := strings.Repeat("x", 300)
	if err := os.WriteFile(path, []byte(long+"\nshort\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(nil, path)
	cfg.MaxLineBytes = 100
	r := startFile(t, cfg)
	got := r.until(t, "short")
	checkExactlyOnce(t, got, []string{long[:100], "short"})
}

func TestFileTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f := appendFile(t, path)
	writeLines(t, f, "old", 0, 100)
	if _, err := f.WriteString("being-"); err != nil {
		t.Fatal(err)
	}
	pos := &signalPositions{Positions: newMemPositions(), saved: make(chan string, 16)}
	cfg := testConfig(pos, path)
	cfg.Tail = true
	r := startFile(t, cfg)
	<-pos.saved // the first scan has placed the file at its end
	if _, err := f.WriteString("written\n"); err != nil {
		t.Fatal(err)
	}
	writeLines(t, f, "new", 0, 10)
	got := r.until(t, "new-000009")
	got = append(got, r.stop(t)...)
	checkExactlyOnce(t, got, append([]string{"being-written"}, names("new", 0, 10)...))
}

func TestFileCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := NewFileSource(FileConfig{Name: "x", Paths: []string{filepath.Join(dir, "*.log")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); !errors.Is(err, ErrNoFile) {
		t.Errorf("Check() with no file = %v, want ErrNoFile", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check() with a readable file = %v, want nil", err)
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(filepath.Join(dir, "a.log"), 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Check(); !errors.Is(err, ErrPermission) {
			t.Errorf("Check() with an unreadable file = %v, want ErrPermission", err)
		}
	}
}

func TestNewFileSourceErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     FileConfig
		wantErr string
	}{
		{"no name", FileConfig{Paths: []string{"/x"}}, "no name"},
		{"no paths", FileConfig{Name: "a"}, "no paths"},
		{"bad glob", FileConfig{Name: "a", Paths: []string{"/var/log/["}}, "syntax error"},
		{"negative", FileConfig{Name: "a", Paths: []string{"/x"}, PollInterval: -1}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewFileSource(tc.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NewFileSource(%+v) = %v, want %q", tc.cfg, err, tc.wantErr)
			}
		})
	}
}

func TestPositionFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "positions.json")
	pf, err := OpenPositionFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Position{Dev: 1, Ino: 2, Offset: 3, HeadLen: 4, HeadHash: 5}
	if err := pf.SetPosition(fileKey("a", "/x"), want); err != nil {
		t.Fatal(err)
	}
	if err := pf.SetPosition(journalKey("j"), Position{Cursor: "s=1"}); err != nil {
		t.Fatal(err)
	}
	pf, err = OpenPositionFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := pf.Position(fileKey("a", "/x")); !ok || got != want {
		t.Errorf("Position = %+v, %v, want %+v, true", got, ok, want)
	}
	if got, _ := pf.Position(journalKey("j")); got.Cursor != "s=1" {
		t.Errorf("journal cursor = %q, want %q", got.Cursor, "s=1")
	}
	if err := os.WriteFile(path, []byte(`{"version":2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPositionFile(path); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("OpenPositionFile(version 2) = %v, want a version error", err)
	}
}

// signalPositions tells the test when a position is saved.
type signalPositions struct {
	Positions
	saved chan string
}

func (p *signalPositions) SetPosition(key string, pos Position) error {
	err := p.Positions.SetPosition(key, pos)
	select {
	case p.saved <- key:
	default:
	}
	return err
}
