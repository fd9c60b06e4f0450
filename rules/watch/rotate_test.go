package watch

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stepSource is a FileSource driven scan by scan from the test's
// goroutine, on a fake clock: interleavings with the files' writers are
// chosen, not raced for.
type stepSource struct {
	*FileSource
	clock time.Time
	out   chan Line
}

func newStepSource(t *testing.T, cfg FileConfig) *stepSource {
	t.Helper()
	s, err := NewFileSource(cfg, nil)
	if err != nil {
		t.Fatalf("NewFileSource: %v", err)
	}
	ss := &stepSource{FileSource: s, clock: time.Unix(1_700_000_000, 0), out: make(chan Line, 100_000)}
	s.now = func() time.Time { return ss.clock }
	s.reset()
	t.Cleanup(s.closeAll)
	return ss
}

// step scans once (from v if given), lets d pass and returns the lines
// handed over.
func (ss *stepSource) step(t *testing.T, v *view, d time.Duration) []Line {
	t.Helper()
	var err error
	if v != nil {
		err = ss.place(t.Context(), ss.out, *v)
	} else {
		err = ss.scan(t.Context(), ss.out)
	}
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	ss.first = false
	ss.clock = ss.clock.Add(d)
	var got []Line
	for {
		select {
		case l := <-ss.out:
			got = append(got, l)
		default:
			return got
		}
	}
}

func statID(t *testing.T, path string) fileID {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return idOf(st)
}

// TestFileRenameAcrossLook pins a double-read bug: a look that globbed
// before a rotation within the globs (log → log.1, new log) and took the
// stats after it saw the new file under the old name and no log.1. The
// renamed file was retired as rotated away; once quiet it was closed and,
// matched again as log.1 and no longer followed, opened as a new file
// and read again from its first byte (TestFileRotateRenameWithinGlob,
// a few runs in 150).
func TestFileRenameAcrossLook(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	ss := newStepSource(t, testConfig(nil, path+"*"))
	f := appendFile(t, path)
	writeLines(t, f, "a", 0, 100)
	got := ss.step(t, nil, time.Millisecond)

	// The look's glob: auth.log alone. Then logrotate renames, the
	// writer appends to the old file and reopens; then the look's stat.
	paths, _ := ss.expand()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	writeLines(t, f, "a-old", 0, 10)
	g := appendFile(t, path)
	writeLines(t, g, "b", 0, 100)
	got = append(got, ss.step(t, &view{paths: paths, ids: map[string]fileID{path: statID(t, path)}}, time.Millisecond)...)

	// Later looks see both files; time passes well beyond RotateGrace.
	for range 5 {
		got = append(got, ss.step(t, nil, time.Second)...)
	}
	writeLines(t, f, "a-late", 0, 10) // still followed as auth.log.1
	got = append(got, ss.step(t, nil, time.Second)...)
	checkExactlyOnce(t, got, concat(names("a", 0, 100), names("a-old", 0, 10), names("b", 0, 100), names("a-late", 0, 10)))
	checkBefore(t, got, "a-old-000009", "b-000000")
}

// TestFileRotateWithinGlobOrder pins an order bug: after a rotation
// within the globs (log → log.1, new log) seen by one look, the new file
// (sorted first) was read before the lines the old one got before it
// appeared, so the old file's lines could come after the new file's.
func TestFileRotateWithinGlobOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	ss := newStepSource(t, testConfig(nil, path+"*"))
	f := appendFile(t, path)
	writeLines(t, f, "a", 0, 100)
	got := ss.step(t, nil, time.Millisecond)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	writeLines(t, f, "a-old", 0, 10)
	g := appendFile(t, path)
	writeLines(t, g, "b", 0, 100)
	got = append(got, ss.step(t, nil, time.Millisecond)...)
	checkExactlyOnce(t, got, concat(names("a", 0, 100), names("a-old", 0, 10), names("b", 0, 100)))
	checkBefore(t, got, "a-old-000009", "b-000000")
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// checkBefore fails unless first is handed over before second.
func checkBefore(t *testing.T, lines []Line, first, second string) {
	t.Helper()
	i, j := -1, -1
	for k, l := range lines {
		if l.Text == first && i < 0 {
			i = k
		}
		if l.Text == second && j < 0 {
			j = k
		}
	}
	if i < 0 || j < 0 || i > j {
		t.Errorf("%q handed over at %d, %q at %d: want the first before the second", first, i, second, j)
	}
}

// TestFileMaxFiles: of more matching files than MaxFiles, the first in
// path order are followed (one descriptor each), the others are not
// opened; the excess is logged once, not at every look, and Check names
// it.
func TestFileMaxFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	for i := range 10 {
		p := filepath.Join(dir, fmt.Sprintf("f%02d.log", i))
		f := appendFile(t, p)
		writeLines(t, f, fmt.Sprintf("f%02d", i), 0, 3)
		// f00 is the newest: the live log sorts first here, as
		// "auth.log" does after "auth-2026-….log".
		if err := os.Chtimes(p, base, base.Add(time.Duration(10-i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(nil, filepath.Join(dir, "*.log"))
	cfg.MaxFiles = 4
	ss := newStepSource(t, cfg)
	var logs strings.Builder
	ss.log = slog.New(slog.NewTextHandler(&logs, nil))
	var got []Line
	for range 5 {
		got = append(got, ss.step(t, nil, time.Second)...)
	}
	var want []string
	for i := range 4 {
		want = append(want, names(fmt.Sprintf("f%02d", i), 0, 3)...)
	}
	checkExactlyOnce(t, got, want)
	if n := len(ss.current) + len(ss.retired); n != 4 {
		t.Errorf("%d files open, want 4", n)
	}
	if n := strings.Count(logs.String(), "more match than max_files"); n != 1 {
		t.Errorf("the excess logged %d times in 5 looks, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "not_followed=6") {
		t.Errorf("log %q does not give the count not followed (6)", logs.String())
	}
	err := ss.Check()
	if !errors.Is(err, ErrTooManyFiles) || !strings.Contains(err.Error(), "10 files match") {
		t.Errorf("Check() = %v, want ErrTooManyFiles naming 10 files", err)
	}

	// Fewer files than the bound: the others are followed, no warning.
	for i := 4; i < 10; i++ {
		if err := os.Remove(filepath.Join(dir, fmt.Sprintf("f%02d.log", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.Check(); err != nil {
		t.Errorf("Check() with 4 files = %v, want nil", err)
	}
}

// TestFileMaxFilesDefault: 600 matching files, the default bound (512)
// is followed.
func TestFileMaxFilesDefault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 600 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.log", i)), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ss := newStepSource(t, FileConfig{Name: "test", Paths: []string{filepath.Join(dir, "*.log")}})
	got := ss.step(t, nil, time.Second)
	if len(got) != 512 || len(ss.current) != 512 {
		t.Errorf("read %d lines from %d files, want 512 and 512", len(got), len(ss.current))
	}
	// The newest is followed (written last).
	if _, ok := ss.current[filepath.Join(dir, "f599.log")]; !ok {
		t.Error("the most recently written file is not followed")
	}
}

// TestFileRestartAfterRenameWithinGlob: a file renamed to another name
// the globs match while the reader was down (auth.log → auth-1.log,
// which sorts first) goes on where it was read to, and the new file at
// the old name is read from its start: nothing is read twice.
func TestFileRestartAfterRenameWithinGlob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	pos, err := OpenPositionFile(filepath.Join(dir, "positions.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := appendFile(t, path)
	writeLines(t, f, "a", 0, 100)
	r := startFile(t, testConfig(pos, filepath.Join(dir, "*.log")))
	got := r.until(t, "a-000099")
	got = append(got, r.stop(t)...)

	writeLines(t, f, "a", 100, 110) // the writer before it reopens
	if err := os.Rename(path, filepath.Join(dir, "auth-1.log")); err != nil {
		t.Fatal(err)
	}
	writeLines(t, appendFile(t, path), "b", 0, 50)
	r = startFile(t, testConfig(pos, filepath.Join(dir, "*.log")))
	got = append(got, r.until(t, "b-000049")...)
	got = append(got, r.stop(t)...)
	checkExactlyOnce(t, got, append(names("a", 0, 110), names("b", 0, 50)...))
}

// TestFileRotateFasterThanHold: a file that replaced a rotated one, and
// is itself rotated away before the first one is quiet, is still read:
// it is followed (open) while it waits.
func TestFileRotateFasterThanHold(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f := appendFile(t, path)
	writeLines(t, f, "g0", 0, 10)
	cfg := testConfig(nil, path)
	cfg.RotateGrace = 2 * time.Second // the rotations come faster
	r := startFile(t, cfg)
	got := r.until(t, "g0-000009")
	for g := 1; g <= 4; g++ {
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, g)); err != nil {
			t.Fatal(err)
		}
		writeLines(t, f, fmt.Sprintf("g%d-old", g-1), 0, 1) // the old file still written
		f = appendFile(t, path)
		writeLines(t, f, fmt.Sprintf("g%d", g), 0, 10)
		time.Sleep(200 * time.Millisecond) // well inside RotateGrace
	}
	got = append(got, r.until(t, "g4-000009")...)
	got = append(got, r.stop(t)...)
	want := names("g0", 0, 10)
	for g := 1; g <= 4; g++ {
		want = append(want, names(fmt.Sprintf("g%d-old", g-1), 0, 1)...)
		want = append(want, names(fmt.Sprintf("g%d", g), 0, 10)...)
	}
	checkExactlyOnce(t, got, want)
}
