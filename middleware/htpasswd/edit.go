package htpasswd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// newFileMode is the mode of files SetUser creates: the owner edits, the
// group (the one the gateway runs as) reads, others get nothing. Apache's
// htpasswd creates 0644 minus the umask; a password file has no reason to
// be world-readable, so the umask is not consulted.
const newFileMode fs.FileMode = 0o640

// EditConfig is how SetUser and DeleteUser edit a file. The zero
// EditConfig edits an existing regular file, refusing symlinks.
type EditConfig struct {
	// Create starts the file afresh with the one entry SetUser writes,
	// like `htpasswd -c`; the file may be missing. An existing file is
	// replaced only when it is empty or has the shape of an htpasswd file
	// (see SetUser): -c must not destroy a file that is not ours. Ignored
	// by DeleteUser. Default false: the file must exist.
	Create bool
	// FollowSymlinks edits the file a symlink at path points to, keeping
	// the link. Default false: a symlink is refused with ErrSymlink
	// (the file is opened with O_NOFOLLOW), so a link planted where the
	// operator expects the password file cannot redirect the write.
	FollowSymlinks bool
}

// ErrSymlink is wrapped by SetUser's and DeleteUser's error for a path
// that is a symbolic link, without EditConfig.FollowSymlinks.
var ErrSymlink = errors.New("is a symbolic link")

// SetUser sets user's hash in the htpasswd file at path and reports whether
// it replaced an existing entry (false: it appended one). The user's line
// is replaced in place — later lines for the same user, which Parse would
// refuse as duplicates, are dropped — and every other byte of the file is
// kept. With cfg.Create, the file is started afresh with this one entry
// (an existing file's mode and owner are kept). user must pass
// ValidateUser and hash NewEntry, so SetUser never writes an entry that
// Load would refuse. Every existing line must be blank, a comment or an
// entry `user:hash` whose hash is a password hash — one gatehouse
// verifies, or a crypt(3) or LDAP scheme it recognises and refuses (DES,
// MD5-crypt, yescrypt, …), which is kept as it is so files can be
// migrated entry by entry; otherwise SetUser returns Errors naming each
// line and writes nothing (a YAML file or /etc/passwd must not
// be appended to). The write is atomic; see the package documentation for
// mode, owner and symlinks.
func SetUser(path, user, hash string, cfg EditConfig) (replaced bool, err error) {
	if _, err := NewEntry(user, hash); err != nil {
		return false, fmt.Errorf("set user in %s: %w", path, err)
	}
	target, info, ef, err := openForEdit(path, cfg)
	if err != nil {
		return false, fmt.Errorf("set user in %s: %w", path, err)
	}
	replaced = ef.set(user, user+":"+hash)
	if err := writeAtomic(target, ef.bytes(), info); err != nil {
		return false, fmt.Errorf("set user in %s: %w", path, err)
	}
	return replaced, nil
}

// DeleteUser removes user's line (every line, if the user is duplicated)
// from the htpasswd file at path, keeping every other byte, and reports
// whether there was one; when there was none the file is not written. The
// file must exist and have the shape SetUser requires. cfg.Create is
// ignored.
func DeleteUser(path, user string, cfg EditConfig) (bool, error) {
	if err := ValidateUser(user); err != nil {
		return false, fmt.Errorf("delete user from %s: %w", path, err)
	}
	cfg.Create = false
	target, info, ef, err := openForEdit(path, cfg)
	if err != nil {
		return false, fmt.Errorf("delete user from %s: %w", path, err)
	}
	if !ef.remove(user) {
		return false, nil
	}
	if err := writeAtomic(target, ef.bytes(), info); err != nil {
		return false, fmt.Errorf("delete user from %s: %w", path, err)
	}
	return true, nil
}

// editFile is an htpasswd file split into lines for editing.
type editFile struct {
	bom   string // a leading UTF-8 byte order mark, kept
	lines []editLine
	final bool   // the file ends with a line end (an empty file counts)
	eol   string // line end for lines that need one: the first line's
}

// editLine is one line; text+eol are its original bytes.
type editLine struct {
	text string
	eol  string // "\n" or "\r\n"; "" for a last line without one
	user string // "" for blank and comment lines
}

// set replaces user's first line with entry, drops the user's later lines
// and reports whether there was one; otherwise it appends entry.
func (ef *editFile) set(user, entry string) (replaced bool) {
	lines := ef.lines[:0]
	for _, l := range ef.lines {
		if l.user == user {
			if replaced {
				continue
			}
			l.text, replaced = entry, true
		}
		lines = append(lines, l)
	}
	if !replaced {
		lines = append(lines, editLine{text: entry, eol: ef.eol})
	}
	ef.lines = lines
	return replaced
}

// remove drops user's lines and reports whether there were any.
func (ef *editFile) remove(user string) bool {
	lines := ef.lines[:0]
	for _, l := range ef.lines {
		if l.user != user {
			lines = append(lines, l)
		}
	}
	found := len(lines) < len(ef.lines)
	ef.lines = lines
	return found
}

// bytes renders ef, giving the last line a line end only when the
// original file had one.
func (ef *editFile) bytes() []byte {
	var b strings.Builder
	b.WriteString(ef.bom)
	for i, l := range ef.lines {
		b.WriteString(l.text)
		switch {
		case i == len(ef.lines)-1 && !ef.final:
		case l.eol == "" && ef.eol == "\n" && strings.HasSuffix(l.text, "\r"):
			// Was the last line, ending in a lone CR: "\n" would turn that
			// CR into part of a CRLF and lose it on the next read.
			b.WriteString("\r\n")
		case l.eol == "":
			b.WriteString(ef.eol) // was the last line; no longer is
		default:
			b.WriteString(l.eol)
		}
	}
	return []byte(b.String())
}

// openForEdit opens path (without following a symlink unless
// cfg.FollowSymlinks, which resolves it so the link survives the rename),
// checks it is a writable regular file, reads and splits it. With
// cfg.Create the split file is checked, then replaced by an empty one;
// info is nil when the file does not exist yet (only allowed with Create).
func openForEdit(path string, cfg EditConfig) (target string, info fs.FileInfo, ef *editFile, err error) {
	target = path
	if cfg.FollowSymlinks {
		if resolved, err := filepath.EvalSymlinks(path); err == nil {
			target = resolved
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", nil, nil, err
		}
	}
	f, err := openNoFollow(target, cfg.FollowSymlinks)
	switch {
	case errors.Is(err, fs.ErrNotExist) && cfg.Create:
		return target, nil, &editFile{final: true, eol: "\n"}, nil
	case errors.Is(err, ErrSymlink):
		return "", nil, nil, &fs.PathError{Op: "open", Path: target, Err: ErrSymlink}
	case err != nil:
		return "", nil, nil, err
	}
	defer f.Close() // read-only: a close error cannot lose data
	// The opened file, not the path: what is checked is what is read.
	if info, err = f.Stat(); err != nil {
		return "", nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return "", nil, nil, fmt.Errorf("%s is not a regular file", target)
	}
	if err := checkWritable(target); err != nil {
		return "", nil, nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return "", nil, nil, err
	}
	if ef, err = splitForEdit(path, string(data)); err != nil {
		return "", nil, nil, err
	}
	if cfg.Create {
		ef = &editFile{final: true, eol: "\n"}
	}
	return target, info, ef, nil
}

// splitForEdit splits data into lines and checks their shape: blank,
// comment or `user:hash` with a valid user and a hash that is a password
// hash (see SetUser). Other hash problems are left to Load.
func splitForEdit(name, data string) (*editFile, error) {
	ef := &editFile{final: data == "" || strings.HasSuffix(data, "\n"), eol: "\n"}
	if rest, ok := strings.CutPrefix(data, bom); ok {
		ef.bom, data = bom, rest
	}
	var errs Errors
	for n := 1; data != ""; n++ {
		line, rest, found := strings.Cut(data, "\n")
		data = rest
		l := editLine{text: line}
		if found {
			l.eol = "\n"
			if t, ok := strings.CutSuffix(line, "\r"); ok {
				l.text, l.eol = t, "\r\n"
			}
			if n == 1 {
				ef.eol = l.eol
			}
		}
		t := strings.TrimRight(l.text, " \t\r")
		if s := strings.TrimLeft(t, " \t"); s != "" && s[0] != '#' {
			user, hash, found := strings.Cut(t, ":")
			hash, _, _ = strings.Cut(hash, ":") // extra fields: Load's business
			switch err := ValidateUser(user); {
			case !found:
				errs = append(errs, &Error{File: name, Line: n, Msg: "missing ':' between user and hash"})
			case err != nil:
				errs = append(errs, &Error{File: name, Line: n, Msg: err.Error()})
			case !looksLikeHash(hash):
				// The field is not echoed: it may be a password.
				errs = append(errs, &Error{File: name, Line: n, Msg: fmt.Sprintf("user %q: not an htpasswd entry: the field after ':' is not a password hash", user)})
			}
			l.user = user
		}
		ef.lines = append(ef.lines, l)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return ef, nil
}

// writeAtomic replaces target with data: a temporary file in the same
// directory, given old's mode and owner (or newFileMode), synced and
// renamed over target, then the directory synced so the rename survives a
// crash. On failure target is untouched and the temporary file removed.
func writeAtomic(target string, data []byte, old fs.FileInfo) (err error) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()           // already failed; the write error is the one to report
			_ = os.Remove(tmp.Name()) // best effort: a stray hidden temp file is harmless
		}
	}()
	mode := newFileMode
	if old != nil {
		mode = old.Mode().Perm()
		if err := keepOwner(tmp, old); err != nil {
			return err
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir flushes a directory, making a rename in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close() // the sync error is the one to report
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return d.Close()
}
