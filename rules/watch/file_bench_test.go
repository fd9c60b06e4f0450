package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// BenchmarkFileSource reads a large auth.log-like file through
// FileSource, from its start to its last line (inotify and scan costs
// included, channel hand-over to a consumer that only counts).
func BenchmarkFileSource(b *testing.B) {
	const lines = 200_000
	path := filepath.Join(b.TempDir(), "auth.log")
	var sb strings.Builder
	for i := range lines {
		fmt.Fprintf(&sb, "Dec  7 13:08:48 host sshd[%d]: Failed password for invalid user admin from 203.0.113.%d port %d ssh2\n", 1000+i%5000, i%250, 1024+i%60000)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(sb.Len()))
	b.ReportAllocs()
	for b.Loop() {
		s, err := NewFileSource(FileConfig{Name: "bench", Paths: []string{path}, PollInterval: time.Hour}, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(b.Context())
		out := make(chan Line, 1024)
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, out) }()
		for range lines {
			<-out
		}
		cancel()
		<-done
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkFileSourceMemory reports the heap that FileSource keeps per
// watched (idle) file: 100 files, read to their end.
func BenchmarkFileSourceMemory(b *testing.B) {
	const files = 100
	dir := b.TempDir()
	for i := range files {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.log", i)), []byte("line\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, err := NewFileSource(FileConfig{Name: "bench", Paths: []string{filepath.Join(dir, "*.log")}, PollInterval: time.Hour}, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(b.Context())
		out := make(chan Line, files)
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, out) }()
		for range files {
			<-out
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/files, "heap-B/file")
		cancel()
		<-done
	}
}
