package watch

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// judgedPositions keeps positions as gatehouse serve's checkpoint does
// (proxy/checkpoint.go): the consumer records each line's Pos once the
// line is judged (advance); the source's own saves are taken unless they
// would move a file back from a judged line's position. snapshot is the
// checkpoint a crash leaves.
type judgedPositions struct {
	mu     sync.Mutex
	pos    map[string]Position
	judged map[string]bool
}

func newJudgedPositions(pos map[string]Position) *judgedPositions {
	if pos == nil {
		pos = map[string]Position{}
	}
	return &judgedPositions{pos: pos, judged: map[string]bool{}}
}

func (j *judgedPositions) Position(key string) (Position, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	p, ok := j.pos[key]
	return p, ok
}

func (j *judgedPositions) SetPosition(key string, p Position) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if old, ok := j.pos[key]; ok && j.judged[key] && old.Dev == p.Dev && old.Ino == p.Ino && p.Offset <= old.Offset {
		return nil
	}
	if old, ok := j.pos[key]; !ok || old != p {
		j.pos[key], j.judged[key] = p, false
	}
	return nil
}

func (j *judgedPositions) advance(l Line) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.pos[l.Key], j.judged[l.Key] = l.Pos, true
}

func (j *judgedPositions) snapshot() map[string]Position {
	j.mu.Lock()
	defer j.mu.Unlock()
	return maps.Clone(j.pos)
}

// consumer runs a FileSource on an unbuffered channel (as serve does)
// and judges its lines one by one in the test's goroutine.
type consumer struct {
	pos    *judgedPositions
	cancel context.CancelFunc
	done   chan error
	lines  chan Line
	seen   map[string]int
	n      int // lines judged
}

func startConsumer(t *testing.T, cfg FileConfig, pos *judgedPositions) *consumer {
	t.Helper()
	cfg.Positions = pos
	s, err := NewFileSource(cfg, nil)
	if err != nil {
		t.Fatalf("NewFileSource: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	c := &consumer{pos: pos, cancel: cancel, done: make(chan error, 1), lines: make(chan Line), seen: map[string]int{}}
	go func() { c.done <- s.Run(ctx, c.lines) }()
	t.Cleanup(func() { c.crash(t) })
	return c
}

// next judges one line.
func (c *consumer) next(t *testing.T) Line {
	t.Helper()
	select {
	case l := <-c.lines:
		c.seen[l.Text]++
		c.n++
		c.pos.advance(l)
		return l
	case <-time.After(20 * time.Second):
		t.Fatalf("no line in 20s after %d", c.n)
		return Line{}
	}
}

// until judges lines until every one of want was judged.
func (c *consumer) until(t *testing.T, want ...string) {
	t.Helper()
	for {
		all := true
		for _, w := range want {
			all = all && c.seen[w] > 0
		}
		if all {
			return
		}
		c.next(t)
	}
}

// crash stops the source without judging what it still sends; what it
// saves from then on is not in a snapshot taken before.
func (c *consumer) crash(t *testing.T) {
	t.Helper()
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.cancel = nil
	for {
		select {
		case <-c.lines:
		case <-c.done:
			return
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return 10s after cancel")
		}
	}
}

// settle lets the source run past every grace period, judging what
// comes, so that a late second read of a line is seen: it waits until a
// line written after the wait comes through.
func (c *consumer) settle(t *testing.T, f *os.File, grace time.Duration) {
	t.Helper()
	deadline := time.Now().Add(3 * grace)
	for time.Now().Before(deadline) {
		select {
		case l := <-c.lines:
			c.seen[l.Text]++
			c.n++
			c.pos.advance(l)
		case <-time.After(grace / 4):
		}
	}
	writeLines(t, f, "end", 0, 1)
	c.until(t, "end-000000")
}

// checkOnce fails unless the lines judged before the crash (before) and
// after the restart (after) hold each of want exactly once, and nothing
// else.
func checkOnce(t *testing.T, crashAt int, before, after map[string]int, want []string) {
	t.Helper()
	total := maps.Clone(before)
	for l, n := range after {
		total[l] += n
	}
	bad := 0
	for _, w := range want {
		if total[w] != 1 {
			bad++
			if bad <= 5 {
				t.Errorf("crash after %d lines: %q judged %d times (%d before the crash), want 1", crashAt, w, total[w], before[w])
			}
		}
		delete(total, w)
	}
	for l, n := range total {
		t.Errorf("crash after %d lines: unexpected line %q judged %d times", crashAt, l, n)
	}
	if bad > 5 {
		t.Errorf("crash after %d lines: %d lines not judged exactly once", crashAt, bad)
	}
}

// TestFileCrashAcrossRenameRotation: a consumer that saves each judged
// line's position, crashing at any point of a rename rotation during
// which the old file is still written (also while gatehouse is down and
// after the restart), judges every line exactly once. It pins two bugs:
// the old file found at the restart was read to its end and closed, so
// what its writer appended after the restart was lost; and the lines of
// a file's first read carried no head hash (crashes in the copytruncate
// test). A crash before any line was judged is not covered: nothing
// tells the restart about a file rotated away in between.
func TestFileCrashAcrossRenameRotation(t *testing.T) {
	t.Parallel()
	const grace = 200 * time.Millisecond
	for _, crashAt := range []int{1, 30, 50, 51, 80, 120, 121, 150, 199, 200, 201, 230, 231, 260} {
		t.Run(fmt.Sprint(crashAt), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "auth.log")
			cfg := testConfig(nil, path)
			cfg.SaveInterval = 0 // the default: the source saves as it goes
			cfg.RotateGrace = grace
			f := appendFile(t, path)
			var g *os.File
			// What the writers do, each after so many lines are judged
			// (or while gatehouse is down, once it crashed before).
			events := []struct {
				after int
				do    func()
			}{
				{50, func() {
					if err := os.Rename(path, path+".1"); err != nil {
						t.Fatal(err)
					}
					writeLines(t, f, "a", 100, 150) // the writer has not reopened
					g = appendFile(t, path)
					writeLines(t, g, "b", 0, 50)
				}},
				{120, func() { writeLines(t, f, "a", 150, 200) }},
				{230, func() { writeLines(t, g, "b", 50, 100) }},
			}
			writeLines(t, f, "a", 0, 100)
			want := names("a", 0, 200)
			want = append(want, names("b", 0, 100)...)

			pos := newJudgedPositions(nil)
			c := startConsumer(t, cfg, pos)
			next := 0
			for c.n < crashAt {
				for next < len(events) && events[next].after <= c.n {
					events[next].do()
					next++
				}
				c.next(t)
			}
			saved := pos.snapshot()
			before := c.seen
			c.crash(t)
			for ; next < len(events); next++ {
				events[next].do()
			}
			stillOld := crashAt < 199 // the old file was not done before the crash
			if stillOld {
				writeLines(t, f, "a", 200, 210) // before the restart
			}

			c = startConsumer(t, cfg, newJudgedPositions(saved))
			if stillOld {
				writeLines(t, f, "a", 210, 220) // after it, still the old file
				want = append(want, names("a", 200, 220)...)
			}
			writeLines(t, g, "b", 100, 110)
			want = append(want, names("b", 100, 110)...)
			c.until(t, want[len(want)-1])
			c.settle(t, g, grace)
			checkOnce(t, crashAt, before, c.seen, append(want, "end-000000"))
		})
	}
}

// TestFileCrashAcrossCopyTruncate: a consumer that saves each judged
// line's position, crashing at any point of a copytruncate (before it,
// while the copy is read by rescue, after), judges every line exactly
// once. It pins a lost-lines bug: the lines handed over by a file's first
// read carried a position without head hash, so a restart on one took
// the truncated file for the one read (when it had grown past the
// offset) or did not look for the copy by its hash.
func TestFileCrashAcrossCopyTruncate(t *testing.T) {
	t.Parallel()
	const grace = 200 * time.Millisecond
	for _, crashAt := range []int{1, 50, 99, 100, 101, 150, 199, 200, 201, 250, 300} {
		t.Run(fmt.Sprint(crashAt), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			cfg := testConfig(nil, path)
			cfg.SaveInterval = 0
			cfg.RotateGrace = grace
			f := appendFile(t, path)
			events := []struct {
				after int
				do    func()
			}{
				{100, func() {
					writeLines(t, f, "a", 100, 200) // read or not before the copy
					copyTruncate(t, path)
					writeLines(t, f, "b", 0, 50)
				}},
				{250, func() { writeLines(t, f, "b", 50, 100) }},
			}
			writeLines(t, f, "a", 0, 100)
			want := append(names("a", 0, 200), names("b", 0, 100)...)

			pos := newJudgedPositions(nil)
			c := startConsumer(t, cfg, pos)
			next := 0
			for c.n < crashAt {
				for next < len(events) && events[next].after <= c.n {
					events[next].do()
					next++
				}
				c.next(t)
			}
			saved := pos.snapshot()
			before := c.seen
			c.crash(t)
			for ; next < len(events); next++ {
				events[next].do()
			}
			c = startConsumer(t, cfg, newJudgedPositions(saved))
			writeLines(t, f, "b", 100, 110)
			want = append(want, names("b", 100, 110)...)
			c.until(t, want[len(want)-1])
			c.settle(t, f, grace)
			checkOnce(t, crashAt, before, c.seen, append(want, "end-000000"))
		})
	}
}
