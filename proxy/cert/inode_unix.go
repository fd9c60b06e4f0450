//go:build unix

package cert

import (
	"io/fs"
	"syscall"
)

// inode is fi's inode number: a file replaced by rename is a new one,
// even with the same size and time.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
