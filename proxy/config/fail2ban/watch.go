package fail2ban

import (
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WatchDef is one enabled fail2ban jail read from a configuration
// directory: the log it watches, its filter and its ban policy.
type WatchDef struct {
	// Name is the jail's section name ("sshd").
	Name string
	// Filter is the jail's filter, read for the jail's arguments and
	// backend, with the jail's own failregex, ignoreregex… applied.
	Filter FilterDef
	// Spec is the jail's filter option as written, split
	// ("sshd[mode=aggressive]": sshd, mode=aggressive).
	Spec FilterSpec
	// Backend is the jail's backend as written ("auto", "systemd",
	// "polling"…).
	Backend string
	// Files are the logpath lines (globs, fail2ban's " head"/" tail"
	// suffix removed); empty when Journal is set.
	Files []string
	// Journal is set when the backend is systemd: lines come from the
	// journal, selected by Filter.JournalMatch.
	Journal bool
	// MaxRetry, FindTime and BanTime are the jail's limits; BanTime -1
	// is permanent. Zero MaxRetry means unset (fail2ban's default is 3).
	MaxRetry          int
	FindTime, BanTime time.Duration
	// IgnoreIP holds ignoreip's entries (addresses, prefixes or host
	// names, as written).
	IgnoreIP []string
	// Settings holds the jail's options that decide what a ban does,
	// resolved as fail2ban resolves them (%(name)s interpolated), keyed
	// by the names in settingKeys ("action", "banaction", "port",
	// "bantime.increment", "destemail"…); an option not set anywhere is
	// absent. An importer maps them; ReadJails reports none of them.
	Settings map[string]string
	// Src says where each option was written ("logpath", "maxretry",
	// "findtime", "bantime", "backend", "filter", "enabled", "ignoreip",
	// and each key of Settings).
	Src map[string]Pos
}

// settingKeys are the options ReadJails passes on in WatchDef.Settings
// for an importer to map (actions, firewall, ban growth, mail).
var settingKeys = []string{
	"action", "banaction", "banaction_allports", "port", "protocol",
	"bantime.increment", "bantime.factor", "bantime.maxtime", "bantime.multipliers",
	"bantime.formula", "bantime.overalljails", "bantime.rndtime",
	"destemail", "sender", "ignoreself",
}

// notCarried are jail options gatehouse has no counterpart for, with
// what an import says about each.
var notCarried = map[string]string{
	"ignorecommand": "ignorecommand is not carried: gatehouse runs no command to decide a ban",
	"logtimezone":   "logtimezone is not carried: lines without a zone are read in the host's local time",
	"logencoding":   "logencoding is not carried: logs are read as UTF-8",
}

// ReadJails reads the jails of the fail2ban configuration directory
// fsys (jail.conf, jail.d/*.conf, jail.local, jail.d/*.local with their
// includes, such as paths-debian.conf) and returns the enabled ones with
// their filters, sorted as the files declare them. A jail fail2ban
// would refuse (no filter file, a reference to nothing) is left out with
// a finding, as fail2ban starts without it; a file that cannot be parsed
// is an error, as fail2ban does not start.
func ReadJails(fsys fs.FS) ([]WatchDef, []Finding, error) {
	cs := newConfSet(fsys)
	found, err := cs.readBase("jail")
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, fmt.Errorf("no jail.conf nor jail.local")
	}
	if _, ok := cs.defaults["fail2ban_confpath"]; !ok {
		cs.defaults["fail2ban_confpath"] = textValue("/etc/fail2ban", Pos{})
	}
	var out []WatchDef
	var findings []Finding
	for _, name := range cs.order {
		if name == "INCLUDES" || strings.Contains(name, "/") {
			continue
		}
		w, fs2, err := readJail(fsys, cs, name)
		findings = append(findings, fs2...)
		if err != nil {
			findings = append(findings, Finding{cs.sections[name].pos, fmt.Sprintf("jail %s: %v", name, err)})
			continue
		}
		if w != nil {
			out = append(out, *w)
		}
	}
	return out, findings, nil
}

// readJail reads one jail section; nil when it is not enabled.
func readJail(fsys fs.FS, cs *confSet, name string) (*WatchDef, []Finding, error) {
	w := &WatchDef{Name: name, Settings: map[string]string{}, Src: map[string]Pos{}}
	var findings []Finding
	get := func(key string) (string, Pos, bool, error) {
		v, ok, err := cs.get(name, key, nil)
		if err != nil || !ok {
			return "", Pos{}, ok, err
		}
		raw, _ := cs.raw(name, key, nil)
		w.Src[key] = raw.pos() // the key's own line, not that of a %(name)s it refers to
		return v.String(), raw.pos(), true, nil
	}
	en, p, ok, err := get("enabled")
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, nil
	}
	enabled, err := ParseBool(en)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: enabled: %v", p, err)
	}
	if !enabled {
		return nil, nil, nil
	}
	backend, _, ok, err := get("backend")
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		backend = "auto"
	}
	w.Backend = strings.TrimSpace(backend)
	w.Journal = strings.HasPrefix(w.Backend, "systemd")
	flt, fp, ok, err := get("filter")
	if err != nil {
		return nil, nil, err
	}
	if !ok || strings.TrimSpace(flt) == "" {
		return nil, nil, fmt.Errorf("no filter")
	}
	spec, err := ParseFilterSpec(flt)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: filter: %v", fp, err)
	}
	vars := map[string]value{
		"enabled": textValue(en, p), "backend": textValue(backend, w.Src["backend"]), "filter": textValue(flt, fp),
	}
	def, ff, err := readFilter(fsys, spec, w.Backend, vars)
	if err != nil {
		return nil, nil, err
	}
	findings = append(findings, ff...)
	if err := jailFilterOverrides(cs, name, def, &findings); err != nil {
		return nil, nil, err
	}
	w.Filter = *def
	w.Spec = spec

	if lp, lpos, ok, err := get("logpath"); err != nil {
		return nil, nil, err
	} else if ok && !w.Journal {
		for l := range strings.SplitSeq(lp, "\n") {
			l = strings.TrimSpace(l)
			if i := strings.LastIndexByte(l, ' '); i > 0 && (l[i+1:] == "head" || l[i+1:] == "tail") {
				l = strings.TrimSpace(l[:i])
			}
			if l != "" {
				w.Files = append(w.Files, l)
			}
		}
		if len(w.Files) == 0 {
			findings = append(findings, Finding{lpos, fmt.Sprintf("jail %s: logpath names no file", name)})
		}
	}
	if !w.Journal && len(w.Files) == 0 {
		return nil, findings, fmt.Errorf("no logpath and backend %q is not systemd", w.Backend)
	}
	if w.Journal && len(w.Filter.JournalMatch) == 0 {
		findings = append(findings, Finding{cs.sections[name].pos, fmt.Sprintf("jail %s: backend systemd and filter %s has no journalmatch: the whole journal would be read", name, spec.Name)})
	}
	if v, p, ok, err := get("maxretry"); err != nil {
		return nil, nil, err
	} else if ok {
		if w.MaxRetry, err = strconv.Atoi(strings.TrimSpace(v)); err != nil || w.MaxRetry < 1 {
			return nil, findings, fmt.Errorf("%s: maxretry %q is not a positive number", p, v)
		}
	}
	for key, dst := range map[string]*time.Duration{"findtime": &w.FindTime, "bantime": &w.BanTime} {
		v, p, ok, err := get(key)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			continue
		}
		if *dst, err = ParseTime(v); err != nil {
			return nil, findings, fmt.Errorf("%s: %s: %v", p, key, err)
		}
	}
	if v, _, ok, err := get("ignoreip"); err != nil {
		return nil, nil, err
	} else if ok {
		w.IgnoreIP = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\n' || r == '\t' })
	}
	for _, key := range slices.Sorted(maps.Keys(notCarried)) {
		v, ok := cs.raw(name, key, nil)
		if !ok || strings.TrimSpace(v.String()) == "" || (key == "logencoding" && isUTF8Encoding(v.String())) {
			continue
		}
		findings = append(findings, Finding{v.pos(), fmt.Sprintf("jail %s: %s", name, notCarried[key])})
	}
	for _, key := range settingKeys {
		v, _, ok, err := get(key)
		if err != nil {
			findings = append(findings, Finding{cs.sections[name].pos, fmt.Sprintf("jail %s: %v", name, err)})
			continue
		}
		if ok {
			w.Settings[key] = strings.TrimSpace(v)
		}
	}
	if v, ok := cs.raw(name, "usedns", nil); ok {
		if s := strings.ToLower(strings.TrimSpace(v.String())); s == "yes" || s == "warn" {
			findings = append(findings, Finding{v.pos(), fmt.Sprintf("jail %s: usedns = %s is not carried: a <HOST> that is a host name is ignored unless the watch sets resolve", name, s)})
		}
	}
	return w, findings, nil
}

func isUTF8Encoding(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "utf-8", "utf8", "ascii":
		return true
	}
	return false
}

// jailFilterOverrides applies filter options a jail section sets itself
// (failregex, ignoreregex, prefregex, datepattern, maxlines,
// journalmatch), where %(known/failregex)s is the filter's own value.
func jailFilterOverrides(cs *confSet, jail string, def *FilterDef, findings *[]Finding) error {
	s := cs.sections[jail]
	known := map[string]value{}
	add := func(key string, lines []string, srcKey func(i int) string) {
		var v value
		for i, l := range lines {
			v = append(v, vline{text: l, pos: def.Src[srcKey(i)]})
		}
		if len(v) == 0 {
			v = value{{}}
		}
		known["known/"+key] = v
	}
	add("failregex", def.FailRegex, func(i int) string { return fmt.Sprintf("failregex[%d]", i) })
	add("ignoreregex", def.IgnoreRegex, func(i int) string { return fmt.Sprintf("ignoreregex[%d]", i) })
	add("journalmatch", def.JournalMatch, func(int) string { return "journalmatch" })
	for _, k := range []string{"prefregex", "datepattern"} {
		known["known/"+k] = textValue(map[string]string{"prefregex": def.PrefRegex, "datepattern": def.DatePattern}[k], def.Src[k])
	}
	if def.MaxLines > 0 {
		known["known/maxlines"] = textValue(strconv.Itoa(def.MaxLines), def.Src["maxlines"])
	}
	opts := map[string]value{}
	for _, k := range []string{"failregex", "ignoreregex", "prefregex", "datepattern", "maxlines", "journalmatch"} {
		if _, own := s.keys[k]; !own {
			if _, def := cs.defaults[k]; !def {
				continue
			}
		}
		v2, ok := cs.raw(jail, k, nil)
		if !ok {
			continue
		}
		v, err := cs.interpolate(jail, v2, known, 1)
		if err != nil {
			return &Error{File: v2.pos().File, Line: v2.pos().Line, Msg: fmt.Sprintf("[%s] %s: %v", jail, k, err)}
		}
		opts[k] = v
	}
	if len(opts) == 0 {
		return nil
	}
	keep := *def
	keep.Src = map[string]Pos{}
	for k, p := range def.Src {
		keep.Src[k] = p
	}
	for k := range opts {
		switch k {
		case "failregex":
			keep.FailRegex = nil
		case "ignoreregex":
			keep.IgnoreRegex = nil
		case "journalmatch":
			keep.JournalMatch = nil
		case "prefregex":
			keep.PrefRegex = ""
		case "datepattern":
			keep.DatePattern = ""
		case "maxlines":
			keep.MaxLines = 0
		}
		for sk := range keep.Src {
			if sk == k || strings.HasPrefix(sk, k+"[") {
				delete(keep.Src, sk)
			}
		}
	}
	keep.fill(opts, findings)
	*def = keep
	return nil
}
