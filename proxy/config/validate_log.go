package config

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Allowed values of log.access (and hosts[].log.access) and log.level,
// in the order messages list them.
var (
	logAccess = []string{"json", "combined", "combined_host", "off"}
	logLevels = []string{"debug", "info", "warn", "error"}
)

func (v *validator) log(f *File) {
	l := &f.Log
	if !slices.Contains(logAccess, l.Access) {
		v.add("log.access", "%q is not one of %s", l.Access, strings.Join(logAccess, ", "))
	}
	if !slices.Contains(logLevels, l.Level) {
		v.add("log.level", "%q is not one of %s", l.Level, strings.Join(logLevels, ", "))
	}
	v.accessFile("log.access_file", l.AccessFile)
	for i, h := range f.Hosts {
		hl := h.Log
		if hl == nil {
			continue
		}
		// A value inherited from log is checked there, once.
		p := "hosts[" + strconv.Itoa(i) + "].log"
		if hl.Access != l.Access && !slices.Contains(logAccess, hl.Access) {
			v.add(p+".access", "%q is not one of %s", hl.Access, strings.Join(logAccess, ", "))
		}
		if hl.AccessFile != l.AccessFile {
			v.accessFile(p+".access_file", hl.AccessFile)
		}
	}
}

// accessFile checks that the directory of an access log file exists; ""
// and "-" are standard output.
func (v *validator) accessFile(field, path string) {
	if path == "" || path == "-" {
		return
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		v.add(field, "directory %s: %v", dir, pathErr(err))
	case !fi.IsDir():
		v.add(field, "%s is not a directory", dir)
	}
}
