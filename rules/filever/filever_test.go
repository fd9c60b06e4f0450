package filever

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	write := func(data string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write("one", t0)
	v1, err := Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := Stat(path); !v1.Same(again) {
		t.Error("an unchanged file reads as changed")
	}
	write("two", t0) // same size and time, written in place: same inode
	if again, _ := Stat(path); !v1.Same(again) {
		t.Error("stat cannot tell a same-size same-time write; want it the same")
	}
	write("three", t0)
	v2, _ := Stat(path)
	if v1.Same(v2) {
		t.Error("a size change reads as unchanged")
	}
	tmp := filepath.Join(dir, "f.new")
	if err := os.WriteFile(tmp, []byte("three"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, t0, t0); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if v3, _ := Stat(path); v2.Same(v3) {
		t.Error("a file replaced by rename (same size and time) reads as unchanged")
	}
	missing, err := Stat(filepath.Join(dir, "missing"))
	if err == nil || missing.Same(missing) || missing.Same(v2) {
		t.Errorf("a missing file: %v, and it must never be the same as anything", err)
	}
}
