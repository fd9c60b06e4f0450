package fail2ban

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// JailFile is a parsed fail2ban jail file (jail.local), in the INI dialect
// fail2ban reads with Python's configparser: "[section]" headers,
// "key = value" or "key: value" lines, values continued on indented
// lines, "#" and ";" comments on their own line and " ;" / " #" inline
// comments, and "%(key)s" interpolation from the same section, then
// [DEFAULT]. Keys are case-insensitive, as in configparser.
type JailFile struct {
	File     string
	Sections []*Section
}

// Section is one [name] section of a jail file.
type Section struct {
	Name string
	Line int
	keys map[string]entry
}

type entry struct {
	value string
	line  int
}

// Error is a jail file fail2ban would refuse to read, or a value it could
// not interpolate. Error() reads "file:line: message"; Err, when set, is
// the underlying cause.
type Error struct {
	File string
	Line int
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// maxInterpolation bounds nested %(key)s references, as configparser
// does (MAX_INTERPOLATION_DEPTH = 10).
const maxInterpolation = 10

// Parse parses a jail file; file names it in errors, which are *Error
// with the line.
func Parse(file string, src []byte) (*JailFile, error) {
	f := &JailFile{File: file}
	var cur *Section
	var last string // key of the value being continued
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		raw := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimLeft(raw, " \t")
		switch {
		case trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';':
			if trimmed == "" {
				last = ""
			}
			continue
		case raw[0] == ' ' || raw[0] == '\t':
			if cur == nil || last == "" {
				return nil, &Error{File: file, Line: n, Msg: "indented line continues no value"}
			}
			e := cur.keys[last]
			e.value = strings.TrimSpace(e.value + "\n" + stripInline(trimmed))
			cur.keys[last] = e
			continue
		case trimmed[0] == '[':
			end := strings.IndexByte(trimmed, ']')
			if end < 0 {
				return nil, &Error{File: file, Line: n, Msg: fmt.Sprintf("section header %q has no closing ]", trimmed)}
			}
			name := strings.TrimSpace(trimmed[1:end])
			cur = nil
			for _, s := range f.Sections {
				if s.Name == name { // configparser refuses duplicates; fail2ban merges them
					cur = s
				}
			}
			if cur == nil {
				cur = &Section{Name: name, Line: n, keys: map[string]entry{}}
				f.Sections = append(f.Sections, cur)
			}
			last = ""
			continue
		}
		if cur == nil {
			return nil, &Error{File: file, Line: n, Msg: "a value before the first [section]"}
		}
		i := strings.IndexAny(trimmed, "=:")
		if i <= 0 {
			return nil, &Error{File: file, Line: n, Msg: fmt.Sprintf("%q is not \"key = value\"", trimmed)}
		}
		key := strings.ToLower(strings.TrimSpace(trimmed[:i]))
		cur.keys[key] = entry{value: stripInline(strings.TrimSpace(trimmed[i+1:])), line: n}
		last = key
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: file, Line: n + 1, Msg: err.Error(), Err: err}
	}
	return f, nil
}

// stripInline removes a " ;" or " #" inline comment.
func stripInline(v string) string {
	for i := 1; i < len(v); i++ {
		if (v[i] == ';' || v[i] == '#') && (v[i-1] == ' ' || v[i-1] == '\t') {
			return strings.TrimSpace(v[:i])
		}
	}
	return v
}

// Section returns the section called name, or nil.
func (f *JailFile) Section(name string) *Section {
	for _, s := range f.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Get returns the value of key in section s (falling back to [DEFAULT])
// with %(name)s references resolved, the line it was written on, and
// whether it was set at all.
func (f *JailFile) Get(s *Section, key string) (value string, line int, ok bool, err error) {
	e, ok := f.lookup(s, key)
	if !ok {
		return "", 0, false, nil
	}
	v, err := f.interpolate(s, e.value, 0)
	if err != nil {
		return "", e.line, true, &Error{File: f.File, Line: e.line, Msg: fmt.Sprintf("[%s] %s: %v", s.Name, key, err)}
	}
	return v, e.line, true, nil
}

// Raw returns the value of key in section s (falling back to [DEFAULT])
// as written, %(name)s references unresolved: action values name
// jail.conf's actions (%(action_mw)s), which a jail.local does not define.
func (f *JailFile) Raw(s *Section, key string) (value string, line int, ok bool) {
	e, ok := f.lookup(s, key)
	return e.value, e.line, ok
}

func (f *JailFile) lookup(s *Section, key string) (entry, bool) {
	key = strings.ToLower(key)
	if e, ok := s.keys[key]; ok {
		return e, true
	}
	if key == "__name__" {
		return entry{value: s.Name, line: s.Line}, true
	}
	if d := f.Section("DEFAULT"); d != nil {
		e, ok := d.keys[key]
		return e, ok
	}
	return entry{}, false
}

func (f *JailFile) interpolate(s *Section, v string, depth int) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	if depth >= maxInterpolation {
		return "", fmt.Errorf("more than %d nested %%(name)s references", maxInterpolation)
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(v, '%')
		if i < 0 {
			b.WriteString(v)
			return b.String(), nil
		}
		b.WriteString(v[:i])
		v = v[i:]
		switch {
		case strings.HasPrefix(v, "%%"):
			b.WriteByte('%')
			v = v[2:]
		case strings.HasPrefix(v, "%("):
			end := strings.Index(v, ")s")
			if end < 0 {
				return "", fmt.Errorf("bad reference %q", v)
			}
			name := v[2:end]
			e, ok := f.lookup(s, name)
			if !ok {
				return "", fmt.Errorf("%%(%s)s names no key in this file (fail2ban may define it in jail.conf or paths-*.conf)", name)
			}
			sub, err := f.interpolate(s, e.value, depth+1)
			if err != nil {
				return "", err
			}
			b.WriteString(sub)
			v = v[end+2:]
		default:
			return "", fmt.Errorf("a %% must be written %%%% or start %%(name)s")
		}
	}
}

// ParseBool reads a fail2ban boolean (configparser's spellings).
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "yes", "true", "on":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true/false, yes/no, on/off, 1/0)", v)
}

// fail2banUnits are the unit words of fail2ban's str2seconds
// (fail2ban/server/mytime.py), longest spelling first within a unit.
var fail2banUnits = []struct {
	names []string
	d     time.Duration
}{
	{[]string{"years", "year", "yy", "y"}, 365*24*time.Hour + 6*time.Hour}, // fail2ban: 365.25 days
	{[]string{"months", "month", "mo"}, 30*24*time.Hour + 10*time.Hour + 30*time.Minute},
	{[]string{"weeks", "week", "ww", "w"}, 7 * 24 * time.Hour},
	{[]string{"days", "day", "dd", "d"}, 24 * time.Hour},
	{[]string{"hours", "hour", "hh", "h"}, time.Hour},
	{[]string{"minutes", "minute", "mins", "min", "mm", "m"}, time.Minute},
	{[]string{"seconds", "second", "secs", "sec", "ss", "s"}, time.Second},
}

// ParseTime reads a fail2ban time: seconds ("600", "-1") or a
// sum of numbers with units ("1h 30m", "2d", "1.5h", "10 minutes").
// Permanent (any negative number) is returned as -1.
func ParseTime(v string) (time.Duration, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	if s == "" {
		return 0, fmt.Errorf("empty time")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 {
			return -1, nil
		}
		if f > float64(math.MaxInt64/int64(time.Second)) {
			return 0, fmt.Errorf("%q is too long", v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	var total time.Duration
	rest := s
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t+")
		if rest == "" {
			break
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		num := 1.0
		if i > 0 {
			var err error
			if num, err = strconv.ParseFloat(rest[:i], 64); err != nil {
				return 0, fmt.Errorf("%q is not a fail2ban time", v)
			}
		}
		rest = strings.TrimLeft(rest[i:], " \t")
		unit := time.Second
		found := false
	units:
		for _, u := range fail2banUnits {
			for _, name := range u.names {
				if strings.HasPrefix(rest, name) && (len(rest) == len(name) || !isLetter(rest[len(name)])) {
					unit, rest, found = u.d, rest[len(name):], true
					break units
				}
			}
		}
		if !found && (i == 0 || (rest != "" && isLetter(rest[0]))) {
			return 0, fmt.Errorf("%q is not a fail2ban time", v)
		}
		add := num * float64(unit)
		if add > float64(math.MaxInt64)-float64(total) {
			return 0, fmt.Errorf("%q is too long", v)
		}
		total += time.Duration(add)
	}
	return total, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' }
