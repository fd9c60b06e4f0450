//go:build !unix

package htpasswd

import (
	"io/fs"
	"os"
)

// keepOwner does nothing: files have no Unix owner and group here, and
// the new file inherits the directory's access control.
func keepOwner(*os.File, fs.FileInfo) error { return nil }

// checkWritable does nothing: rename fails by itself where the file is
// read-only.
func checkWritable(string) error { return nil }

// openNoFollow opens path for reading; unless follow, a symlink is
// refused with ErrSymlink. Without O_NOFOLLOW the check is an Lstat
// before the open.
func openNoFollow(path string, follow bool) (*os.File, error) {
	if !follow {
		if st, err := os.Lstat(path); err == nil && st.Mode()&fs.ModeSymlink != 0 {
			return nil, ErrSymlink
		}
	}
	return os.Open(path)
}
