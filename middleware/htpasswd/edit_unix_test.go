//go:build unix

package htpasswd

import (
	"errors"
	"gatehouse/rules/testenv"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestEditKeepsOwner pins the reason for keepOwner: root editing a file
// owned by the gateway's user and group must not hand it to root.
func TestEditKeepsOwner(t *testing.T) {
	t.Parallel()
	testenv.Root(t) // changing a file's owner needs root
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	writeTestFile(t, path, "alice:"+h1+"\n", 0o640)
	const uid, gid = 65534, 65534 // nobody:nogroup
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if _, err := SetUser(path, "bob", hNew, EditConfig{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != uid || sys.Gid != gid {
		t.Errorf("owner after SetUser = %d:%d, want %d:%d", sys.Uid, sys.Gid, uid, gid)
	}
	checkDir(t, dir, "users")
}

// TestEditRefusesReadOnlyFile checks that a file we may not write is not
// replaced just because its directory is writable.
func TestEditRefusesReadOnlyFile(t *testing.T) {
	t.Parallel()
	// Root may write any file: as root, the test runs again as nobody.
	if testenv.Unprivileged(t) {
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	writeTestFile(t, path, "alice:"+h1+"\n", 0o400)
	_, err := SetUser(path, "bob", hNew, EditConfig{})
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("SetUser(read-only file) = %v, want a permission error", err)
	}
	if got := readTestFile(t, path); got != "alice:"+h1+"\n" {
		t.Errorf("read-only file changed to %q", got)
	}
	checkDir(t, dir, "users")
}
