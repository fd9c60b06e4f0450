package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// logFlushInterval bounds how long an access log line may sit in the
// buffer: tools tailing the file (fail2ban) see it within this delay.
const logFlushInterval = 200 * time.Millisecond

// logSink is the access log's destination: standard output or a file,
// written through one buffer under a mutex (one syscall per buffer, not
// per request). Reopen switches or reopens the file (logrotate, SIGHUP).
// It is safe for concurrent use.
type logSink struct {
	mu     sync.Mutex
	path   string // "" for standard output
	file   *os.File
	w      *bufio.Writer
	dirty  bool
	failed bool // the last write failed; logged once until one succeeds
	log    *slog.Logger
}

func newLogSink(log *slog.Logger) *logSink {
	return &logSink{w: bufio.NewWriterSize(os.Stdout, 64<<10), log: log}
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

// Reopen points the sink at path ("" or "-": standard output), flushing
// and closing the previous file. It reopens even when path is unchanged,
// so a rotated file is let go.
func (ls *logSink) Reopen(path string) error {
	if path == "-" {
		path = ""
	}
	var f *os.File
	var out io.Writer = os.Stdout
	if path != "" {
		var err error
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("open access log: %w", err)
		}
		out = f
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.noteErr(ls.w.Flush())
	if ls.file != nil {
		if err := ls.file.Close(); err != nil {
			ls.log.Warn("close access log", "path", ls.path, "error", err)
		}
	}
	ls.path, ls.file = path, f
	ls.w.Reset(out)
	return nil
}

// Run flushes the buffer every logFlushInterval until ctx is done, then
// flushes a last time and closes the file.
func (ls *logSink) Run(ctx context.Context) {
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ls.mu.Lock()
			if ls.dirty {
				ls.dirty = false
				ls.noteErr(ls.w.Flush())
			}
			ls.mu.Unlock()
		case <-ctx.Done():
			ls.mu.Lock()
			ls.noteErr(ls.w.Flush())
			if ls.file != nil {
				if err := ls.file.Close(); err != nil {
					ls.log.Warn("close access log", "path", ls.path, "error", err)
				}
				ls.file = nil
				ls.w.Reset(io.Discard)
			}
			ls.mu.Unlock()
			return
		}
	}
}

// Close flushes the buffer and closes the file; output goes nowhere
// afterwards. It is for a sink whose Run never started.
func (ls *logSink) Close() error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	err := ls.w.Flush()
	if ls.file != nil {
		err = errors.Join(err, ls.file.Close())
		ls.file = nil
	}
	ls.w.Reset(io.Discard)
	return err
}
