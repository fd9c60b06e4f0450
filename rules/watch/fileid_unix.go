//go:build unix

package watch

import (
	"io/fs"
	"syscall"
)

// fileID is a file's identity: device and inode.
type fileID struct{ dev, ino uint64 }

func idOf(st fs.FileInfo) fileID {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(sys.Dev), ino: uint64(sys.Ino)} //nolint:unconvert // int32 on some platforms
	}
	return fileID{}
}
