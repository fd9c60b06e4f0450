package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"gatehouse/middleware"
	"gatehouse/proxy/config"
)

// logFlushInterval bounds how long an access log line may sit in the
// buffer: tools tailing the file (fail2ban) see it within this delay.
const logFlushInterval = 200 * time.Millisecond

// logSink is one access log destination: standard output or a file,
// written through one buffer under a mutex (one syscall per buffer, not
// per request). It is safe for concurrent use.
type logSink struct {
	mu     sync.Mutex
	path   string // "" for standard output
	file   *os.File
	w      *bufio.Writer
	dirty  bool
	failed bool // the last write failed; logged once until one succeeds
	log    *slog.Logger
}

// Write appends one line; it never fails the caller.
func (ls *logSink) Write(p []byte) (int, error) {
	ls.mu.Lock()
	_, err := ls.w.Write(p)
	ls.dirty = true
	ls.noteErr(err)
	ls.mu.Unlock()
	return len(p), nil
}

func (ls *logSink) noteErr(err error) {
	switch {
	case err != nil && !ls.failed:
		ls.failed = true
		ls.log.Error("access log write failed", "path", ls.pathName(), "error", err)
	case err == nil && ls.failed:
		ls.failed = false
		ls.log.Info("access log writes work again", "path", ls.pathName())
	}
}

func (ls *logSink) pathName() string {
	if ls.path == "" {
		return "stdout"
	}
	return ls.path
}

// switchTo flushes what is buffered, closes the current file and writes to
// f from now on; nil is standard output.
func (ls *logSink) switchTo(f *os.File) {
	var out io.Writer = os.Stdout
	if f != nil {
		out = f
	}
	ls.replace(f, out)
}

// close flushes what is buffered and closes the file; later lines are
// dropped.
func (ls *logSink) close() { ls.replace(nil, io.Discard) }

func (ls *logSink) replace(f *os.File, out io.Writer) {
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

func (ls *logSink) flush() {
	ls.mu.Lock()
	if ls.dirty {
		ls.dirty = false
		ls.noteErr(ls.w.Flush())
	}
	ls.mu.Unlock()
}

// logSinks are the access logs' destinations by path ("" is standard
// output): log.access_file and the hosts' own hosts[].log.access_file.
// Hosts naming the same file share its sink, so their lines never
// interleave mid-line. It is safe for concurrent use.
type logSinks struct {
	mu     sync.Mutex
	byPath map[string]*logSink
	log    *slog.Logger
}

func newLogSinks(log *slog.Logger) *logSinks {
	return &logSinks{byPath: map[string]*logSink{}, log: log}
}

// sinkPath maps the config's spelling of standard output to "".
func sinkPath(path string) string {
	if path == "-" {
		return ""
	}
	return path
}

// get returns the sink for path. A new one writes nowhere (standard
// output aside) until reopen opens it: a runtime being built may name a
// file before the reload that uses it has succeeded.
func (ss *logSinks) get(path string) *logSink {
	path = sinkPath(path)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ls := ss.byPath[path]; ls != nil {
		return ls
	}
	ls := &logSink{path: path, log: ss.log, w: bufio.NewWriterSize(io.Discard, 64<<10)}
	if path == "" {
		ls.w.Reset(os.Stdout)
	}
	ss.byPath[path] = ls
	return ls
}

// reopen opens every file in paths afresh (logrotate, SIGHUP, reload) and
// points its sink at it, then closes the sinks no path names any more;
// lines that requests of the replaced runtime still write to those are
// dropped. When a file cannot be opened nothing changes.
func (ss *logSinks) reopen(paths []string) error {
	files := map[string]*os.File{}
	for _, p := range paths {
		p = sinkPath(p)
		if _, done := files[p]; done || p == "" {
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
		ss.get(p).switchTo(f)
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
func (ss *logSinks) all() []*logSink {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]*logSink, 0, len(ss.byPath))
	for _, ls := range ss.byPath {
		out = append(out, ls)
	}
	return out
}

// closeAll flushes and closes every sink; later lines are dropped. It is
// for sinks whose Run never started (a New that fails).
func (ss *logSinks) closeAll() {
	for _, ls := range ss.all() {
		ls.close()
	}
}

// Run flushes every sink's buffer each logFlushInterval until ctx is
// done, then flushes a last time and closes the files.
func (ss *logSinks) Run(ctx context.Context) {
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			for _, ls := range ss.all() {
				ls.flush()
			}
		case <-ctx.Done():
			ss.closeAll()
			return
		}
	}
}

// accessLog returns the access log's config for cfg, OnDone aside: the
// global format and sink, each host's own (hosts[].log), and the router's
// lookup that sends a request refused before routing to its host's log;
// and the paths the runtime writes to, for reopen.
func (s *Server) accessLog(cfg *config.File, hosts *router) (middleware.AccessLogConfig, []string) {
	alc := middleware.AccessLogConfig{Format: cfg.Log.Access, Out: s.sinks.get(cfg.Log.AccessFile)}
	paths := []string{cfg.Log.AccessFile}
	for _, h := range cfg.Hosts {
		hl := h.Log
		if hl == nil {
			continue
		}
		if alc.Hosts == nil {
			alc.Hosts = map[string]middleware.AccessLogTarget{}
			alc.HostOf = func(host string) string {
				if r := hosts.lookup(host); r != nil {
					return r.name
				}
				return ""
			}
		}
		t := middleware.AccessLogTarget{Format: hl.Access}
		if hl.Access != middleware.FormatOff {
			t.Out = s.sinks.get(hl.AccessFile)
			if !slices.Contains(paths, hl.AccessFile) {
				paths = append(paths, hl.AccessFile)
			}
		}
		alc.Hosts[h.Match[0].String()] = t
	}
	return alc, paths
}
