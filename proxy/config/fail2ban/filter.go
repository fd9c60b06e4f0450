package fail2ban

import (
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// FilterDef is a fail2ban filter (filter.d/NAME.conf with its .local,
// its .d/ files and its includes) read for one set of arguments, with
// %(name)s interpolation and <tag> substitution done as fail2ban does
// them. Regular expressions keep fail2ban's syntax (<HOST>, <ADDR>,
// <F-USER>…</F-USER>, Python's (?P<name>…)): compiling them is the
// filter engine's job.
type FilterDef struct {
	// Name is the filter's file name without .conf ("sshd").
	Name string
	// Mode is the value of the filter's "mode" parameter after the
	// arguments ("aggressive" for sshd[mode=aggressive]); empty when the
	// filter has none.
	Mode string
	// FailRegex and IgnoreRegex are the non-empty lines of failregex and
	// ignoreregex, in order.
	FailRegex, IgnoreRegex []string
	// PrefRegex is the prefix every line must match before FailRegex is
	// tried on its <F-CONTENT>; empty when unset.
	PrefRegex string
	// DatePattern is the datepattern as written ("{^LN-BEG}", "^%%Y…"
	// with %% already folded to %); empty means fail2ban's default
	// detection.
	DatePattern string
	// MaxLines is the size of the multi-line buffer; 0 when unset
	// (fail2ban's default is 1).
	MaxLines int
	// JournalMatch holds the journalmatch lines; each is a
	// space-separated list of FIELD=value terms, "+" separating
	// alternatives, as journalctl takes them.
	JournalMatch []string
	// Src says where each option was written: keys are "failregex[i]",
	// "ignoreregex[i]" (i indexes FailRegex and IgnoreRegex),
	// "prefregex", "datepattern", "maxlines", "journalmatch" and "mode".
	Src map[string]Pos
}

// Finding is something fail2ban's configuration says that a reader
// cannot carry over as written, or a jail fail2ban itself would refuse.
type Finding struct {
	Pos Pos
	Msg string
}

func (f Finding) String() string { return f.Pos.String() + ": " + f.Msg }

// FilterSpec is a jail's filter option split as fail2ban's
// extractOptions splits it: "sshd[mode=aggressive, publickey=any]".
type FilterSpec struct {
	Name string
	Args map[string]string
}

// optionArg is fail2ban's OPTION_EXTRACT_CRE: name=value, the value
// double-quoted, single-quoted or bare up to "," or "]".
var optionArg = regexp.MustCompile(`^\s*([\w\-.]+)=(?:"([^"]*)"|'([^']*)'|([^,\]]*))(?:,|\]\s*\[|$)`)

// ParseFilterSpec splits a jail's filter value into the filter's name
// and its [name=value, …] arguments.
func ParseFilterSpec(s string) (FilterSpec, error) {
	s = strings.TrimSpace(s)
	spec := FilterSpec{Args: map[string]string{}}
	i := strings.IndexByte(s, '[')
	if i < 0 {
		spec.Name = s
		if spec.Name == "" {
			return spec, fmt.Errorf("empty filter name")
		}
		return spec, nil
	}
	spec.Name = strings.TrimSpace(s[:i])
	if spec.Name == "" {
		return spec, fmt.Errorf("%q: empty filter name", s)
	}
	if !strings.HasSuffix(s, "]") {
		return spec, fmt.Errorf("%q: arguments not closed by ]", s)
	}
	rest := s[i+1 : len(s)-1]
	for strings.TrimSpace(rest) != "" {
		m := optionArg.FindStringSubmatchIndex(rest)
		if m == nil {
			return spec, fmt.Errorf("%q: %q is not name=value", s, strings.TrimSpace(rest))
		}
		val := ""
		for g := 2; g <= 4; g++ {
			if m[2*g] >= 0 {
				val = rest[m[2*g]:m[2*g+1]]
				break
			}
		}
		spec.Args[rest[m[2]:m[3]]] = val
		rest = rest[m[1]:]
	}
	return spec, nil
}

// maxTagPasses bounds the substitution passes over one value, as
// fail2ban's MAX_TAG_REPLACE_COUNT bounds its replacements.
const maxTagPasses = 25

// filterOptions are the options fail2ban's FilterReader passes on.
var filterOptions = []string{"prefregex", "failregex", "ignoreregex", "datepattern", "maxlines", "journalmatch", "usedns"}

// filterReader resolves one filter's options for one set of arguments.
type filterReader struct {
	cs       *confSet
	name     string
	init     map[string]value // arguments, automatic options, [Init]
	vars     map[string]value // what %(name)s sees before the section
	memo     map[string]value
	active   map[string]bool
	findings []Finding
}

// ReadFilter reads filter.d/NAME under the fail2ban configuration
// directory fsys (os.DirFS("/etc/fail2ban")) for spec's arguments, as
// fail2ban's FilterReader does for a jail whose backend is backend
// ("systemd…" selects the journal variants, through the logtype
// parameter). findings list what the filter asks that gatehouse cannot
// carry as written. A filter that cannot be read or resolved is an
// error, as fail2ban refuses the jail.
func ReadFilter(fsys fs.FS, spec FilterSpec, backend string) (*FilterDef, []Finding, error) {
	return readFilter(fsys, spec, backend, nil)
}

func readFilter(fsys fs.FS, spec FilterSpec, backend string, jailVars map[string]value) (*FilterDef, []Finding, error) {
	if spec.Name == "" || strings.Contains(spec.Name, "..") {
		return nil, nil, fmt.Errorf("filter %q: not a filter name", spec.Name)
	}
	cs := newConfSet(fsys)
	found, err := cs.readBase("filter.d/" + spec.Name)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, fmt.Errorf("filter %q: no filter.d/%s.conf nor .local", spec.Name, spec.Name)
	}
	r := &filterReader{cs: cs, name: spec.Name, init: map[string]value{}, memo: map[string]value{}, active: map[string]bool{}}
	argPos := Pos{File: "filter.d/" + spec.Name + ".conf"}
	for k, v := range spec.Args {
		r.init[k] = textValue(v, argPos)
	}
	if _, own := cs.sections["Definition"].keysOrNil()["logtype"]; !own {
		if _, ok := r.init["logtype"]; !ok {
			lt := "file"
			if strings.HasPrefix(backend, "systemd") {
				lt = "journal"
			}
			r.init["logtype"] = textValue(lt, argPos)
		}
	}
	if s := cs.sections["Init"]; s != nil {
		for _, k := range slices.Sorted(maps.Keys(s.keys)) {
			v, _, err := cs.get("Init", k, nil)
			if err != nil {
				return nil, nil, err
			}
			if !strings.HasPrefix(k, "known/") {
				r.init["known/"+k] = v
			}
			if _, ok := r.init[k]; !ok {
				r.init[k] = v
			}
		}
	}
	r.vars = maps.Clone(jailVars)
	if r.vars == nil {
		r.vars = map[string]value{}
	}
	for k, v := range r.init {
		r.vars[strings.ToLower(k)] = v
	}

	def := &FilterDef{Name: spec.Name, Src: map[string]Pos{}}
	opts := map[string]value{}
	for _, o := range filterOptions {
		v, ok, err := r.tag(o)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			opts[o] = v
		}
	}
	if v, ok, err := r.tag("mode"); err != nil {
		return nil, nil, err
	} else if ok {
		def.Mode, def.Src["mode"] = strings.TrimSpace(v.String()), v.pos()
	}
	def.fill(opts, &r.findings)
	return def, r.findings, nil
}

func (s *cpSection) keysOrNil() map[string]value {
	if s == nil {
		return nil
	}
	return s.keys
}

// fill sets def's fields from resolved option values.
func (def *FilterDef) fill(opts map[string]value, findings *[]Finding) {
	for _, o := range []string{"failregex", "ignoreregex", "journalmatch"} {
		if _, ok := opts[o]; !ok {
			continue
		}
		var lines []string
		for _, l := range opts[o] {
			if l.text == "" {
				continue
			}
			key := o
			if o != "journalmatch" {
				key = fmt.Sprintf("%s[%d]", o, len(lines))
			} else if len(lines) > 0 {
				key = ""
			}
			if key != "" {
				def.Src[key] = l.pos
			}
			lines = append(lines, l.text)
		}
		switch o {
		case "failregex":
			def.FailRegex = lines
		case "ignoreregex":
			def.IgnoreRegex = lines
		case "journalmatch":
			def.JournalMatch = lines
		}
	}
	if v, ok := opts["prefregex"]; ok && v.String() != "" {
		def.PrefRegex, def.Src["prefregex"] = v.String(), v.pos()
	}
	if v, ok := opts["datepattern"]; ok && v.String() != "" {
		def.DatePattern, def.Src["datepattern"] = v.String(), v.pos()
	}
	if v, ok := opts["maxlines"]; ok && v.String() != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v.String()))
		if err != nil || n < 1 {
			*findings = append(*findings, Finding{v.pos(), fmt.Sprintf("maxlines %q is not a positive number; fail2ban uses 1", v.String())})
		} else {
			def.MaxLines, def.Src["maxlines"] = n, v.pos()
			if n > 1 {
				*findings = append(*findings, Finding{v.pos(), fmt.Sprintf("maxlines = %d: a failure spans several lines, which the filter must join (<F-MLFID>)", n)})
			}
		}
	}
	if v, ok := opts["usedns"]; ok {
		*findings = append(*findings, Finding{v.pos(), fmt.Sprintf("usedns = %s is not carried: a <HOST> that is a host name is ignored unless the watch sets resolve", v.String())})
	}
}

// tag returns the fully substituted value of a filter option or
// parameter, looked up as fail2ban's getCombined does: arguments and
// [Init] first, then [Definition] (then [DEFAULT]) with %(name)s
// resolved, then "section/key" as another section's option.
func (r *filterReader) tag(name string) (value, bool, error) {
	if v, ok := r.memo[name]; ok {
		return v, true, nil
	}
	v, ok, err := r.lookup(name)
	if err != nil || !ok {
		return nil, ok, err
	}
	r.active[name] = true
	defer delete(r.active, name)
	// fail2ban's substituteRecursiveTags repeats its passes while a
	// value changes: <mdre-<mode>-other> needs a second pass once
	// <mode> is replaced.
	out := v
	for pass := 0; ; pass++ {
		if pass > maxTagPasses {
			return nil, false, &Error{File: v.pos().File, Line: v.pos().Line,
				Msg: fmt.Sprintf("filter %s: <%s> still changes after %d substitution passes", r.name, name, maxTagPasses)}
		}
		changed := false
		next, err := splice(out, func(text string, i int) (int, value, bool, error) {
			if text[i] != '<' {
				return 0, nil, false, nil
			}
			end := strings.IndexAny(text[i+1:], "<> ")
			if end <= 0 || text[i+1+end] != '>' {
				return 0, nil, false, nil
			}
			ref := text[i+1 : i+1+end]
			if r.active[ref] {
				return 0, nil, false, &Error{File: v.pos().File, Line: v.pos().Line,
					Msg: fmt.Sprintf("filter %s: <%s> refers to itself through <%s>", r.name, name, ref)}
			}
			repl, ok, err := r.tag(ref)
			if err != nil || !ok {
				return 0, nil, false, err
			}
			changed = true
			return end + 2, repl, true, nil
		}, false)
		if err != nil {
			return nil, false, err
		}
		out = next
		if !changed {
			break
		}
	}
	r.memo[name] = out
	return out, true, nil
}

func (r *filterReader) lookup(name string) (value, bool, error) {
	if v, ok := r.init[name]; ok {
		return v, true, nil
	}
	if i := strings.IndexByte(name, '/'); i > 0 && isSectionRef(name) {
		sec, opt := name[:i], name[i+1:]
		switch strings.ToLower(sec) {
		case "known":
			if v, ok := r.cs.known["Definition"][strings.ToLower(opt)]; ok {
				out, err := r.cs.interpolate("Definition", v, r.vars, 1)
				return out, true, err
			}
		case "default":
			if v, ok := r.cs.defaults[strings.ToLower(opt)]; ok {
				out, err := r.cs.interpolate("DEFAULT", v, nil, 1)
				return out, true, err
			}
		default:
			if r.cs.sections[sec] != nil {
				if v, ok, err := r.cs.get(sec, opt, nil); ok || err != nil {
					return v, ok, err
				}
			}
		}
	}
	if r.cs.sections["Definition"] == nil {
		return nil, false, nil
	}
	return r.cs.get("Definition", name, r.vars)
}

// isSectionRef reports whether name has fail2ban's SECTION_OPTNAME_CRE
// form, ^[\w-]+/[^\s>]+$.
func isSectionRef(name string) bool {
	i := strings.IndexByte(name, '/')
	for _, c := range name[:i] {
		if !isWord(c) && c != '-' {
			return false
		}
	}
	return i < len(name)-1 && !strings.ContainsAny(name[i+1:], " \t\n>")
}
