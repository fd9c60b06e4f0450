//go:build unix

package htpasswd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// keepOwner gives tmp old's owner and group, so that replacing a file
// such as root:gatehouse 0640 does not lock the gateway out of it. Only
// root, or an owner who is in the group, can do that; otherwise the edit
// fails rather than silently changing who can read the file.
func keepOwner(tmp *os.File, old fs.FileInfo) error {
	want, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	st, err := tmp.Stat()
	if err != nil {
		return err
	}
	if got, ok := st.Sys().(*syscall.Stat_t); ok && got.Uid == want.Uid && got.Gid == want.Gid {
		return nil
	}
	if err := tmp.Chown(int(want.Uid), int(want.Gid)); err != nil {
		return fmt.Errorf("keep owner %d:%d: %w", want.Uid, want.Gid, err)
	}
	return nil
}

// checkWritable refuses to replace a file we could not write in place,
// as Apache's htpasswd would: renaming needs only a writable directory,
// and a read-only file is meant to stay as it is.
func checkWritable(path string) error {
	const wOK = 2 // W_OK in <unistd.h>
	if err := syscall.Access(path, wOK); err != nil {
		return &fs.PathError{Op: "open for writing", Path: path, Err: err}
	}
	return nil
}

// openNoFollow opens path for reading. Unless follow, a symlink is
// refused by the kernel (O_NOFOLLOW) and reported as ErrSymlink; O_NONBLOCK
// keeps a FIFO planted at path from blocking the open.
func openNoFollow(path string, follow bool) (*os.File, error) {
	flags := os.O_RDONLY | syscall.O_NONBLOCK
	if !follow {
		flags |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flags, 0)
	if errors.Is(err, syscall.ELOOP) && !follow {
		if st, lerr := os.Lstat(path); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
			return nil, ErrSymlink
		}
	}
	return f, err
}
