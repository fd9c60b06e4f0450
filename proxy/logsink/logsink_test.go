package logsink

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetSharesReopensAndFlushes: two hosts naming one file share its
// sink; lines reach the file once Run stops; Reopen after a rotation
// writes to the new file; a path that cannot be opened changes nothing.
func TestSetSharesReopensAndFlushes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	ss := NewSet(nil)
	a, b := ss.Get(path), ss.Get(path)
	if a != b {
		t.Fatalf("Get(%q) twice = two sinks, want one shared", path)
	}
	if err := ss.Reopen([]string{path, "-"}); err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("one\n"))

	// Rotation: the file moves away, Reopen creates it afresh.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := ss.Reopen([]string{path}); err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("two\n"))
	if err := ss.Reopen([]string{path, filepath.Join(dir, "missing", "x.log")}); err == nil || !strings.Contains(err.Error(), "open access log") {
		t.Errorf("Reopen of an unopenable path = %v, want an open access log error", err)
	}
	b.Write([]byte("three\n"))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ss.Run(ctx) // flushes and closes at once

	for file, want := range map[string]string{path + ".1": "one\n", path: "two\nthree\n"} {
		got, err := os.ReadFile(file)
		if err != nil || string(got) != want {
			t.Errorf("ReadFile(%s) = %q, %v, want %q", filepath.Base(file), got, err, want)
		}
	}
	// Closed: later lines are dropped, not written.
	a.Write([]byte("late\n"))
	if got, _ := os.ReadFile(path); strings.Contains(string(got), "late") {
		t.Errorf("after Run returned, file = %q, want no late line", got)
	}
}

// TestSetOneFileOneSink: a file named twice, or by two spellings, is one
// sink with one open file, and its lines reach that file.
func TestSetOneFileOneSink(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	ss := NewSet(nil)
	a, b := ss.Get("access.log"), ss.Get("./access.log")
	if a != b {
		t.Fatal(`Get("access.log") and Get("./access.log") = two sinks, want one`)
	}
	if err := ss.Reopen([]string{"access.log", "./access.log", filepath.Join(dir, "access.log")}); err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("one\n"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ss.Run(ctx)
	if got, err := os.ReadFile(filepath.Join(dir, "access.log")); err != nil || string(got) != "one\n" {
		t.Errorf("access.log = %q, %v; want the line (not standard output)", got, err)
	}
}
