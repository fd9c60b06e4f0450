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
	files := logFiles{inputs: v.inputFiles(f)}
	v.accessFile("log.access_file", l.AccessFile)
	files.add(v, "log.access_file", l.AccessFile, l.Access)
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
		if hl.Access != "off" {
			files.add(v, p+".access_file", hl.AccessFile, hl.Access)
		}
	}
}

// inputFiles are the files the config makes gatehouse read, by field:
// an access log must not write into one of them.
func (v *validator) inputFiles(f *File) map[string]string {
	in := map[string]string{"config file": v.file}
	if t := f.TLS; t != nil {
		for i, c := range t.Certificates {
			p := "tls.certificates[" + strconv.Itoa(i) + "]"
			in[p+".cert"], in[p+".key"] = c.Cert, c.Key
		}
		if t.ACME != nil {
			in["tls.acme.ca_root"] = t.ACME.CARoot
		}
	}
	for i, h := range f.Hosts {
		if h.BasicAuth != nil {
			in["hosts["+strconv.Itoa(i)+"].basic_auth.htpasswd"] = h.BasicAuth.Htpasswd
		}
	}
	clientCertFiles(f, in)
	return in
}

// logFiles are the access log files seen so far, for two checks: a file
// holds one format (a fail2ban filter or log tool reads it as one), and
// no access log overwrites a file gatehouse reads.
type logFiles struct {
	inputs map[string]string // field → path
	seen   []logFile
}

type logFile struct {
	field, path, format string
}

func (lf *logFiles) add(v *validator, field, path, format string) {
	if path == "" || path == "-" || format == "off" {
		return
	}
	for in, p := range lf.inputs {
		if p != "" && samePath(p, path) {
			v.add(field, "%s is the %s: access log lines would be appended to it", path, in)
		}
	}
	for _, o := range lf.seen {
		switch {
		case !samePath(o.path, path):
		case o.format != format:
			v.add(field, "%s is also %s's file, written as %s: one file takes one format (here %s), so that log tools can read it", path, o.field, o.format, format)
			return
		case absPath(o.path) != absPath(path):
			v.add(field, "%s is %s's file (%s) through a link: name it the same way, so that both write through one buffer", path, o.field, o.path)
			return
		}
	}
	lf.seen = append(lf.seen, logFile{field, path, format})
}

// samePath reports whether a and b name one file: the same absolute path,
// or the same file through a link.
func samePath(a, b string) bool {
	if absPath(a) == absPath(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
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

// absPath is path made absolute, as the access log sinks key files.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}
