package logsink

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// flushInterval bounds how long an access log line may sit in the
// buffer: tools tailing the file (fail2ban) see it within this delay.
const flushInterval = 200 * time.Millisecond

// Sink is one access log destination: standard output or a file,
// written through one buffer under a mutex (one syscall per buffer, not
// per request). It is safe for concurrent use.
type Sink struct {
	mu     sync.Mutex
	path   string // "" for standard output
	file   *os.File
	w      *bufio.Writer
	dirty  bool
	failed bool // the last write failed; logged once until one succeeds
	log    *slog.Logger
}

// Write appends one line; it never fails the caller.
func (ls *Sink) Write(p []byte) (int, error) {
	ls.mu.Lock()
	_, err := ls.w.Write(p)
	ls.dirty = true
	ls.noteErr(err)
	ls.mu.Unlock()
	return len(p), nil
}

func (ls *Sink) noteErr(err error) {
	switch {
	case err != nil && !ls.failed:
		ls.failed = true
		ls.log.Error("access log write failed", "path", ls.pathName(), "error", err)
	case err == nil && ls.failed:
		ls.failed = false
		ls.log.Info("access log writes work again", "path", ls.pathName())
	}
}

func (ls *Sink) pathName() string {
	if ls.path == "" {
		return "stdout"
	}
	return ls.path
}

// switchTo flushes what is buffered, closes the current file and writes to
// f from now on; nil is standard output.
func (ls *Sink) switchTo(f *os.File) {
	var out io.Writer = os.Stdout
	if f != nil {
		out = f
	}
	ls.replace(f, out)
}

// close flushes what is buffered and closes the file; later lines are
// dropped.
func (ls *Sink) close() { ls.replace(nil, io.Discard) }

func (ls *Sink) replace(f *os.File, out io.Writer) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.noteErr(ls.w.Flush())
	ls.dirty = false
	if ls.file != nil {
		if err := ls.file.Close(); err != nil {
			ls.log.Warn("close access log", "path", ls.path, "error", err)
		}
	}
	ls.file = f
	ls.w.Reset(out)
}

func (ls *Sink) flush() {
	ls.mu.Lock()
	if ls.dirty {
		ls.dirty = false
		ls.noteErr(ls.w.Flush())
	}
	ls.mu.Unlock()
}

// Set holds the access logs' destinations by path ("" is standard
// output): log.access_file and the hosts' own hosts[].log.access_file.
// Hosts naming the same file share its sink, so their lines never
// interleave mid-line. It is safe for concurrent use.
type Set struct {
	mu     sync.Mutex
	byPath map[string]*Sink
	log    *slog.Logger
}

// NewSet returns an empty Set; log receives write failures (nil:
// discard).
func NewSet(log *slog.Logger) *Set {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Set{byPath: map[string]*Sink{}, log: log}
}

// sinkPath is the key of path's sink: "" for standard output ("" or
// "-"), else the absolute path, so that two spellings of one file
// ("access.log", "./access.log") share one sink and one buffer, and
// their lines never interleave mid-line. (Two links to one file are
// refused by the config check.)
func sinkPath(path string) string {
	if path == "" || path == "-" {
		return ""
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}

// Get returns the sink for path; "-" is standard output. A new one
// writes nowhere (standard output aside) until Reopen opens it: a runtime being built may name a
// file before the reload that uses it has succeeded.
func (ss *Set) Get(path string) *Sink {
	path = sinkPath(path)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ls := ss.byPath[path]; ls != nil {
		return ls
	}
	ls := &Sink{path: path, log: ss.log, w: bufio.NewWriterSize(io.Discard, 64<<10)}
	if path == "" {
		ls.w.Reset(os.Stdout)
	}
	ss.byPath[path] = ls
	return ls
}

// Reopen opens every file in paths afresh (logrotate, SIGHUP, reload) and
// points its sink at it, then closes the sinks no path names any more;
// lines that requests of the replaced runtime still write to those are
// dropped. When a file cannot be opened nothing changes.
func (ss *Set) Reopen(paths []string) error {
	files := map[string]*os.File{}
	for _, p := range paths {
		p = sinkPath(p)
		if _, done := files[p]; done {
			continue
		}
		if p == "" {
			files[p] = nil
			continue
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			for _, f := range files {
				if f != nil {
					f.Close()
				}
			}
			return fmt.Errorf("open access log: %w", err)
		}
		files[p] = f
	}
	for p, f := range files {
		ss.Get(p).switchTo(f)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for p, ls := range ss.byPath {
		if _, used := files[p]; !used {
			ls.close()
			delete(ss.byPath, p)
		}
	}
	return nil
}

// all returns the current sinks.
func (ss *Set) all() []*Sink {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]*Sink, 0, len(ss.byPath))
	for _, ls := range ss.byPath {
		out = append(out, ls)
	}
	return out
}

// CloseAll flushes and closes every sink; later lines are dropped. It is
// for sinks whose Run never started (a server that fails to start).
func (ss *Set) CloseAll() {
	for _, ls := range ss.all() {
		ls.close()
	}
}

// Run flushes every sink's buffer each flushInterval until ctx is
// done, then flushes a last time and closes the files.
func (ss *Set) Run(ctx context.Context) {
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			for _, ls := range ss.all() {
				ls.flush()
			}
		case <-ctx.Done():
			ss.CloseAll()
			return
		}
	}
}
