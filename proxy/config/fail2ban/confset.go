package fail2ban

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Pos is where a value was written: a file (relative to the
// configuration directory) and a 1-based line.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// vline is one line of a multi-line value and where it was written.
type vline struct {
	text string
	pos  Pos
}

// value is a (multi-line) option value, one entry per line, as
// configparser keeps it: continuation lines stripped, empty lines inside
// kept, trailing empty lines dropped.
type value []vline

func (v value) String() string {
	var b strings.Builder
	for i, l := range v {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l.text)
	}
	return b.String()
}

func (v value) pos() Pos {
	if len(v) == 0 {
		return Pos{}
	}
	return v[0].pos
}

// textValue is a value computed rather than read (filter arguments,
// fail2ban's automatic options), placed at p.
func textValue(s string, p Pos) value {
	var v value
	for l := range strings.SplitSeq(s, "\n") {
		v = append(v, vline{text: l, pos: p})
	}
	return v
}

// cpSection is one section of one file, or of the merged set.
type cpSection struct {
	name string
	pos  Pos
	keys map[string]value
}

// cpFile is one file as Python's configparser reads it with fail2ban's
// settings (strict, ";" as the only inline comment prefix, empty lines
// kept inside values, a value continued by any line indented deeper than
// its key).
type cpFile struct {
	name     string
	defaults *cpSection
	sections []*cpSection
}

func (f *cpFile) section(name string) *cpSection {
	if name == "DEFAULT" {
		return f.defaults
	}
	for _, s := range f.sections {
		if s.name == name {
			return s
		}
	}
	return nil
}

// parseConf parses one fail2ban configuration file. Errors are *Error
// naming the file and line, as configparser refuses the file.
func parseConf(file string, src []byte) (*cpFile, error) {
	f := &cpFile{name: file, defaults: &cpSection{name: "DEFAULT", keys: map[string]value{}}}
	var cur *cpSection
	var opt string // the option whose value continues
	indent := 0    // the indent of the option line
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		raw := strings.TrimPrefix(sc.Text(), "\ufeff")
		commentAt := -1
		for i := 0; i < len(raw); i++ { // inline ";" after white space (or at the start)
			if raw[i] == ';' && (i == 0 || raw[i-1] == ' ' || raw[i-1] == '\t') {
				commentAt = i
				break
			}
		}
		trimmed := strings.TrimSpace(raw)
		if strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";") {
			commentAt = 0
		}
		text := raw
		if commentAt >= 0 {
			text = raw[:commentAt]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			if commentAt < 0 && cur != nil && opt != "" {
				cur.keys[opt] = append(cur.keys[opt], vline{pos: Pos{file, n}})
			}
			continue
		}
		lead := len(raw) - len(strings.TrimLeft(raw, " \t\r\v\f"))
		if cur != nil && opt != "" && lead > indent {
			cur.keys[opt] = append(cur.keys[opt], vline{text: text, pos: Pos{file, n}})
			continue
		}
		indent = lead
		if text[0] == '[' && strings.HasSuffix(text, "]") {
			name := text[1 : len(text)-1]
			if seen["["+name] {
				return nil, &Error{File: file, Line: n, Msg: fmt.Sprintf("section [%s] already exists", name)}
			}
			seen["["+name] = true
			if cur = f.section(name); cur == nil {
				cur = &cpSection{name: name, pos: Pos{file, n}, keys: map[string]value{}}
				f.sections = append(f.sections, cur)
			}
			opt = ""
			continue
		}
		if cur == nil {
			return nil, &Error{File: file, Line: n, Msg: "a value before the first [section]"}
		}
		i := strings.IndexAny(text, "=:")
		key := ""
		if i > 0 {
			key = strings.ToLower(strings.TrimSpace(text[:i]))
		}
		if key == "" {
			return nil, &Error{File: file, Line: n, Msg: fmt.Sprintf("%q is not \"key = value\"", text)}
		}
		if seen[cur.name+"\x00"+key] {
			return nil, &Error{File: file, Line: n, Msg: fmt.Sprintf("[%s] %s is set twice", cur.name, key)}
		}
		seen[cur.name+"\x00"+key] = true
		cur.keys[key] = value{{text: strings.TrimSpace(text[i+1:]), pos: Pos{file, n}}}
		opt = key
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: file, Line: n + 1, Msg: err.Error(), Err: err}
	}
	for _, s := range append([]*cpSection{f.defaults}, f.sections...) {
		for k, v := range s.keys {
			for len(v) > 0 && v[len(v)-1].text == "" {
				v = v[:len(v)-1]
			}
			if len(v) == 0 { // "key =" with blank lines after it
				v = value{{pos: s.keys[k][0].pos}}
			}
			s.keys[k] = v
		}
	}
	return f, nil
}

// confSet is several files read into one parser, as fail2ban's
// SafeConfigParserWithIncludes does: later files override earlier ones
// key by key, and an overridden value stays reachable as
// %(known/key)s.
type confSet struct {
	fsys     fs.FS
	files    []string // read, in order
	defaults map[string]value
	sections map[string]*cpSection
	order    []string
	known    map[string]map[string]value // section -> key -> value before the last override
	parsed   map[string]*cpFile
}

func newConfSet(fsys fs.FS) *confSet {
	return &confSet{
		fsys: fsys, defaults: map[string]value{}, sections: map[string]*cpSection{},
		known: map[string]map[string]value{}, parsed: map[string]*cpFile{},
	}
}

func (c *confSet) exists(name string) bool {
	st, err := fs.Stat(c.fsys, name)
	return err == nil && st.Mode().IsRegular()
}

func (c *confSet) parse(name string) (*cpFile, error) {
	if f, ok := c.parsed[name]; ok {
		return f, nil
	}
	src, err := fs.ReadFile(c.fsys, name)
	if err != nil {
		return nil, &Error{File: name, Line: 0, Msg: err.Error(), Err: err}
	}
	f, err := parseConf(name, src)
	if err != nil {
		return nil, err
	}
	c.parsed[name] = f
	return f, nil
}

// readBase reads base.conf, base.d/*.conf, base.local and base.d/*.local
// (those that exist, in that order) with their includes, as fail2ban's
// ConfigReader.read does. It reports whether any file was found.
func (c *confSet) readBase(base string) (bool, error) {
	names := []string{base + ".conf"}
	for _, ext := range []string{".conf", ".local"} {
		if ext == ".local" {
			names = append(names, base+".local")
		}
		m, _ := fs.Glob(c.fsys, base+".d/*"+ext) // only a malformed pattern fails
		slices.Sort(m)
		names = append(names, m...)
	}
	var have []string
	for _, n := range names {
		if c.exists(n) {
			have = append(have, n)
		}
	}
	if len(have) == 0 {
		return false, nil
	}
	order, err := c.includes(have, nil)
	if err != nil {
		return false, err
	}
	for _, n := range order {
		f, err := c.parse(n)
		if err != nil {
			return false, err
		}
		c.merge(f)
	}
	return true, nil
}

// includes expands names with their .local twins and [INCLUDES]
// before/after files (relative to the including file's directory),
// depth first, skipping only a file already on the current chain, as
// fail2ban's _getIncludes does.
func (c *confSet) includes(names, chain []string) ([]string, error) {
	var exp []string
	for _, n := range names {
		exp = append(exp, n)
		local := strings.TrimSuffix(n, path.Ext(n)) + ".local"
		if !slices.Contains(names, local) && c.exists(local) {
			exp = append(exp, local)
		}
	}
	var out []string
	for _, n := range exp {
		if !c.exists(n) {
			continue // fail2ban skips a missing include silently
		}
		f, err := c.parse(n)
		if err != nil {
			return nil, err
		}
		var before, after []string
		if inc := f.section("INCLUDES"); inc != nil {
			for key, dst := range map[string]*[]string{"before": &before, "after": &after} {
				v, ok := inc.keys[key]
				if !ok {
					continue
				}
				for _, l := range v {
					r := l.text
					if r == "" {
						continue
					}
					if !path.IsAbs(r) {
						r = path.Join(path.Dir(n), r)
					} else {
						r = strings.TrimPrefix(r, "/")
					}
					if slices.Contains(chain, r) || r == n {
						continue
					}
					sub, err := c.includes([]string{r}, append(slices.Clip(chain), n))
					if err != nil {
						return nil, err
					}
					*dst = append(*dst, sub...)
				}
			}
		}
		out = append(out, before...)
		out = append(out, n)
		out = append(out, after...)
	}
	return out, nil
}

// merge reads one parsed file into the set.
func (c *confSet) merge(f *cpFile) {
	c.files = append(c.files, f.name)
	for k, v := range f.defaults.keys {
		c.defaults[k] = v
	}
	for _, s := range f.sections {
		name, keys := s.name, s.keys
		if i := conditional(name); i > 0 { // [Init?family=inet6]: keys get the condition
			cond := name[i:]
			name = name[:i]
			keys = map[string]value{}
			for k, v := range s.keys {
				keys[k+cond] = v
			}
		}
		dst, ok := c.sections[name]
		if !ok {
			dst = &cpSection{name: name, pos: s.pos, keys: map[string]value{}}
			c.sections[name] = dst
			c.order = append(c.order, name)
		}
		for k, v := range keys {
			if old, ok := dst.keys[k]; ok {
				if c.known[name] == nil {
					c.known[name] = map[string]value{}
				}
				c.known[name][k] = old
			}
			dst.keys[k] = v
		}
	}
}

// conditional returns the index of "?" in a section name such as
// "Init?family=inet6" (fail2ban's CONDITIONAL_RE, ^\w+\?.+$), or -1.
func conditional(name string) int {
	i := strings.IndexByte(name, '?')
	if i <= 0 || i == len(name)-1 {
		return -1
	}
	for _, r := range name[:i] {
		if !isWord(r) {
			return -1
		}
	}
	return i
}

func isWord(r rune) bool {
	return r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// raw returns key in section (vars first, then the section, then
// [DEFAULT]) as written.
func (c *confSet) raw(section, key string, vars map[string]value) (value, bool) {
	key = strings.ToLower(key)
	if v, ok := vars[key]; ok {
		return v, true
	}
	if s := c.sections[section]; s != nil {
		if v, ok := s.keys[key]; ok {
			return v, true
		}
	}
	if key == "__name__" && section != "" {
		return textValue(section, Pos{}), true
	}
	v, ok := c.defaults[key]
	return v, ok
}

// get returns key in section with %(name)s references resolved as
// configparser's BasicInterpolation does, extended as fail2ban extends
// it: %(__name__)s is the section, %(section/key)s reads another section
// (%(default/key)s [DEFAULT], %(known/key)s the value this section's key
// had before a later file overrode it). vars (lower-case keys) take
// precedence over the section, as configparser's get(vars=) does.
func (c *confSet) get(section, key string, vars map[string]value) (value, bool, error) {
	v, ok := c.raw(section, key, vars)
	if !ok {
		return nil, false, nil
	}
	out, err := c.interpolate(section, v, vars, 1)
	if err != nil {
		return v, true, &Error{File: v.pos().File, Line: v.pos().Line, Msg: fmt.Sprintf("[%s] %s: %v", section, key, err)}
	}
	return out, true, nil
}

func (c *confSet) lookupRef(section, name string, vars map[string]value) (value, bool) {
	if v, ok := c.raw(section, name, vars); ok {
		return v, true
	}
	i := strings.IndexByte(name, '/')
	if i <= 0 {
		return nil, false
	}
	sec, opt := name[:i], name[i+1:]
	switch strings.ToLower(sec) {
	case "default":
	case "known":
		if v, ok := c.known[section][opt]; ok {
			return v, true
		}
	default:
		s := c.sections[sec]
		if s == nil {
			return nil, false
		}
		if v, ok := s.keys[opt]; ok {
			return v, true
		}
	}
	v, ok := c.defaults[opt]
	return v, ok
}

func (c *confSet) interpolate(section string, v value, vars map[string]value, depth int) (value, error) {
	if depth > maxInterpolation {
		return nil, fmt.Errorf("more than %d nested %%(name)s references", maxInterpolation)
	}
	return splice(v, func(text string, i int) (int, value, bool, error) {
		if text[i] != '%' {
			return 0, nil, false, nil
		}
		rest := text[i:]
		switch {
		case strings.HasPrefix(rest, "%%"):
			return 2, value{{text: "%"}}, true, nil
		case strings.HasPrefix(rest, "%("):
			end := strings.Index(rest, ")s")
			if end < 0 {
				return 0, nil, false, fmt.Errorf("bad reference %q", rest)
			}
			name := strings.ToLower(rest[2:end])
			ref, ok := c.lookupRef(section, name, vars)
			if !ok {
				return 0, nil, false, fmt.Errorf("%%(%s)s names no option of [%s] nor [DEFAULT]", name, section)
			}
			sub, err := c.interpolate(section, ref, vars, depth+1)
			if err != nil {
				return 0, nil, false, err
			}
			return end + 2, sub, true, nil
		}
		return 0, nil, false, fmt.Errorf("a %% must be written %%%% or start %%(name)s, in %q", text)
	}, false)
}

// splice rewrites v: at each byte offset of each line, at asks whether a
// reference starts there; if so it names its length and replacement,
// which is inserted in place, its lines keeping their own positions (the
// first keeps the line's own unless the reference starts the line).
// A line that is a single reference takes the position of what replaced it.
// With rescan, scanning resumes at the start of the insertion (fail2ban's
// tag substitution); otherwise after it (configparser's interpolation).
func splice(v value, at func(text string, i int) (n int, repl value, ok bool, err error), rescan bool) (value, error) {
	var out value
	budget := 1 << 16 // bounds a rescan that keeps finding what it inserted
	for _, l := range v {
		cur := l
		i := 0
		for i < len(cur.text) {
			n, repl, ok, err := at(cur.text, i)
			if err != nil {
				return nil, err
			}
			if !ok {
				i++
				continue
			}
			if budget--; budget < 0 {
				return nil, fmt.Errorf("too many substitutions")
			}
			before, after := cur.text[:i], cur.text[i+n:]
			if len(repl) == 0 {
				repl = value{{}}
			}
			if len(repl) == 1 {
				if strings.TrimSpace(before) == "" && strings.TrimSpace(after) == "" && repl[0].pos.File != "" {
					cur.pos = repl[0].pos // the line is the reference: report where its text was written
				}
				cur.text = before + repl[0].text + after
				if !rescan {
					i += len(repl[0].text)
				}
				continue
			}
			first := vline{text: before + repl[0].text, pos: cur.pos}
			if strings.TrimSpace(before) == "" {
				first.pos = repl[0].pos
			}
			out = append(out, first)
			out = append(out, repl[1:len(repl)-1]...)
			last := repl[len(repl)-1]
			cur = vline{text: last.text + after, pos: last.pos}
			i = 0
			if !rescan {
				i = len(last.text)
			}
		}
		out = append(out, cur)
	}
	return out, nil
}
