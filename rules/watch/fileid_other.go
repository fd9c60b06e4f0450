//go:build !unix

package watch

import "io/fs"

// fileID is a file's identity. Without inodes, rotation by rename is
// not told from a rewrite: only the head hash and the size are.
type fileID struct{ dev, ino uint64 }

func idOf(fs.FileInfo) fileID { return fileID{} }
