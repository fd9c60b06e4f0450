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
