package htpasswd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxUserLen is the longest user name, in bytes: Apache's htpasswd
	// refuses longer ones too.
	MaxUserLen = 255
	// MaxLineLen is the longest line Parse accepts, in bytes without the
	// line end; Apache's config reader stops at the same length
	// (HUGE_STRING_LEN).
	MaxLineLen = 8192
	// maxErrors is how many problems Parse reports before it gives up on a
	// file, so a binary file handed over by mistake does not produce one
	// error per byte.
	maxErrors = 50
	// bom is the UTF-8 byte order mark, tolerated at the start of a file.
	bom = "\ufeff"
)

// ErrInvalidUser is wrapped by every error about a user name that cannot
// be stored in an htpasswd file (see ValidateUser).
var ErrInvalidUser = errors.New("invalid user name")

// Error is one problem in an htpasswd file, at a line (1-based).
type Error struct {
	File string
	Line int
	Msg  string
	// Err is the cause when callers may branch on it (ErrSlowHash);
	// nil otherwise.
	Err error
}

// Error formats e as "file:line: msg".
func (e *Error) Error() string {
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Errors is every problem found in an htpasswd file, in line order. Parse,
// Load, SetUser and DeleteUser return an invalid file as Errors (never
// empty); use errors.As to get it, or to get the first *Error.
type Errors []*Error

// Error prints one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error {
	return e.Err
}

// Unwrap returns the problems, so errors.As finds an *Error.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// File is a parsed htpasswd file. It is immutable and safe for concurrent
// use; the zero File has no users.
type File struct {
	entries map[string]Entry
	users   []string // sorted

	dummyOnce sync.Once
	dummy     Entry
}

// ParseConfig is what Parse and Load accept beyond the file format. The
// zero ParseConfig is the strict default.
type ParseConfig struct {
	// AllowSlowHashes accepts bcrypt costs above MaxSafeBcryptCost and
	// SHA-crypt rounds above MaxSafeSHACryptRounds. Default false: such
	// an entry is an error naming its line.
	AllowSlowHashes bool
}

// Load reads and parses the htpasswd file at path with the zero
// ParseConfig; errors name path.
func Load(path string) (*File, error) {
	return LoadWith(path, ParseConfig{})
}

// LoadWith is Load with cfg.
func LoadWith(path string, cfg ParseConfig) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load htpasswd: %w", err)
	}
	defer f.Close() // read-only: a close error cannot lose data
	return ParseWith(path, f, cfg)
}

// Parse reads an htpasswd file from r with the zero ParseConfig. name is
// used in errors only. It returns every problem in the file as Errors; an
// I/O error from r is returned as is, wrapped with name.
func Parse(name string, r io.Reader) (*File, error) {
	return ParseWith(name, r, ParseConfig{})
}

// ParseWith is Parse with cfg.
func ParseWith(name string, r io.Reader, cfg ParseConfig) (*File, error) {
	f := &File{entries: make(map[string]Entry)}
	var errs Errors
	// add records a problem and reports whether there is room for more.
	add := func(n int, msg string, cause error) bool {
		errs = append(errs, &Error{File: name, Line: n, Msg: msg, Err: cause})
		if len(errs) < maxErrors {
			return true
		}
		errs = append(errs, &Error{File: name, Line: n, Msg: "too many errors"})
		return false
	}
	br := bufio.NewReaderSize(r, MaxLineLen+2) // room for "\r\n"
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read htpasswd %s: %w", name, err)
		}
		if line == nil {
			break
		}
		if n == 1 {
			// Tolerate the byte order mark some Windows editors write.
			line = bytes.TrimPrefix(line, []byte(bom))
		}
		var msg string
		var cause error
		if tooLong {
			msg = fmt.Sprintf("line longer than %d bytes", MaxLineLen)
		} else if user, hash, ok, m := splitLine(string(line)); !ok {
			msg = m
		} else if e, err := newEntry(user, hash, n); err != nil {
			msg = err.Error()
		} else if e.h.slow() && !cfg.AllowSlowHashes {
			cause = e.h.slowError()
			msg = fmt.Sprintf("user %q: %v", user, cause)
		} else if first, dup := f.entries[user]; dup {
			msg = fmt.Sprintf("duplicate user %q (first on line %d)", user, first.Line)
		} else {
			f.entries[user] = e
		}
		if msg != "" && !add(n, msg, cause) {
			break
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	f.users = make([]string, 0, len(f.entries))
	for u := range f.entries {
		f.users = append(f.users, u)
	}
	slices.Sort(f.users)
	return f, nil
}

// readLine returns the next line of br without its "\n", or nil at the end
// of input. A line longer than MaxLineLen is skipped and reported with
// tooLong. err is io.EOF with the last line when it has no line end.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	line, err = br.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) {
		tooLong = true
		_, err = br.ReadSlice('\n')
	}
	if tooLong {
		if err == nil || errors.Is(err, io.EOF) {
			return []byte{}, true, nil
		}
		return nil, true, err
	}
	if len(line) == 0 && err != nil {
		return nil, false, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(bytes.TrimSuffix(line, []byte("\r"))) > MaxLineLen {
		return []byte{}, true, nil
	}
	return line, false, err
}

// splitLine classifies one line without its "\n". For an entry it returns
// the user and the hash with ok; for a blank or comment line, !ok and no
// msg; for a malformed line, !ok and the problem. Trailing blanks and a
// "\r" are ignored, as Apache's ap_cfg_getline ignores them.
func splitLine(line string) (user, hash string, ok bool, msg string) {
	line = strings.TrimRight(line, " \t\r")
	trimmed := strings.TrimLeft(line, " \t")
	if trimmed == "" || trimmed[0] == '#' {
		return "", "", false, ""
	}
	user, hash, found := strings.Cut(line, ":")
	switch {
	case !found:
		// The line is not echoed: it may well be a password.
		return "", "", false, "missing ':' between user and hash"
	case user == "":
		return "", "", false, "empty user name"
	}
	if err := ValidateUser(user); err != nil {
		return "", "", false, err.Error()
	}
	if hash == "" {
		return "", "", false, fmt.Sprintf("user %q: empty hash", user)
	}
	return user, hash, true, ""
}

// ValidateUser reports whether user can be stored in an htpasswd file and
// typed into a browser's basic-auth prompt: 1 to MaxUserLen bytes of UTF-8,
// without ':', whitespace or control characters. Errors wrap
// ErrInvalidUser.
func ValidateUser(user string) error {
	switch {
	case user == "":
		return fmt.Errorf("%w: empty", ErrInvalidUser)
	case len(user) > MaxUserLen:
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidUser, len(user), MaxUserLen)
	case !utf8.ValidString(user):
		return fmt.Errorf("%w %q: not valid UTF-8", ErrInvalidUser, user)
	}
	for _, r := range user {
		switch {
		case r == ':':
			return fmt.Errorf("%w %q: contains ':'", ErrInvalidUser, user)
		case unicode.IsSpace(r):
			return fmt.Errorf("%w %q: contains whitespace", ErrInvalidUser, user)
		case unicode.IsControl(r):
			return fmt.Errorf("%w %q: contains a control character", ErrInvalidUser, user)
		case unicode.Is(unicode.Cf, r):
			// Invisible (zero-width space, direction marks, BOM): a
			// look-alike of another user in every listing.
			return fmt.Errorf("%w %q: contains an invisible formatting character", ErrInvalidUser, user)
		}
	}
	return nil
}

// Lookup returns the entry for user (case-sensitive) and whether there is
// one. It does not allocate.
func (f *File) Lookup(user string) (Entry, bool) {
	e, ok := f.entries[user]
	return e, ok
}

// Users returns the user names, sorted. The slice is the caller's.
func (f *File) Users() []string {
	return slices.Clone(f.users)
}

// Len returns the number of users.
func (f *File) Len() int {
	return len(f.entries)
}

// Dummy returns an entry to verify unknown users against, so that they
// cost the same time as known ones: a random, never-revealed password
// hashed (see DummyEntry) like the file's most common kind of entry —
// same format and bcrypt cost or SHA-crypt rounds; among equally common
// kinds, the most expensive. Slow entries (Entry.Slow, only in a file
// parsed with AllowSlowHashes) are not counted, and a file of nothing but
// slow entries gets one capped at MaxSafeBcryptCost or
// MaxSafeSHACryptRounds: unknown users must never cost minutes;
// the price is that they answer faster than such users. An empty file
// gets a bcrypt entry at DefaultBcryptCost. The entry is computed on the first call (one hash,
// e.g. ~50 ms for bcrypt at cost 10) and reused; call Dummy after loading
// to take that cost off the request path. Its Verify is always false.
func (f *File) Dummy() Entry {
	f.dummyOnce.Do(func() {
		type kind struct {
			format Format
			cost   int
		}
		counts := make(map[kind]int)
		var best, slow Entry
		var bestKind kind
		for _, u := range f.users {
			e := f.entries[u]
			if e.h.slow() {
				if slow.h.format == 0 {
					slow = e
				}
				continue
			}
			k := kind{e.h.format, e.h.cost}
			counts[k]++
			c, bc := counts[k], counts[bestKind]
			if best.h.format == 0 || c > bc || (c == bc && e.h.moreExpensive(best.h)) {
				best, bestKind = e, k
			}
		}
		if best.h.format == 0 {
			best = slow // zero for an empty file; DummyEntry caps its cost
		}
		f.dummy = DummyEntry(best)
	})
	return f.dummy
}
