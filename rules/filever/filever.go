// Package filever tells versions of a file apart by what stat says of
// them, for the files gatehouse re-reads when they change (htpasswd files,
// the config, GeoIP databases, CA bundles and CRLs, address lists). A new
// version is a new file (an editor's or geoipupdate's rename), or the
// same file with another size or modification time (a write in place).
package filever

import "os"

// Version is one version of a file. The zero Version is no version (the
// file was missing): it is the same as none, so a file that comes back
// reads as changed.
type Version struct {
	info os.FileInfo
}

// Of returns the version fi describes.
func Of(fi os.FileInfo) Version { return Version{info: fi} }

// Stat returns the version of the file at path now.
func Stat(path string) (Version, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Version{}, err
	}
	return Of(fi), nil
}

// Same reports whether v and o are the same version of one file: the
// same file (device and inode), size and modification time.
func (v Version) Same(o Version) bool {
	return v.info != nil && o.info != nil && os.SameFile(v.info, o.info) &&
		v.info.Size() == o.info.Size() && v.info.ModTime().Equal(o.info.ModTime())
}

// Known reports whether v is a version of a file (not the zero Version).
func (v Version) Known() bool { return v.info != nil }

// Size is the file's size in this version; 0 for the zero Version.
func (v Version) Size() int64 {
	if v.info == nil {
		return 0
	}
	return v.info.Size()
}
