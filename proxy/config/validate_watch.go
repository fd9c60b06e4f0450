package config

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"gatehouse/rules/watch"
	"gatehouse/rules/watch/filter"
)

// watchName is what a watch source's name may hold: it becomes a metric
// label and part of the saved positions' keys.
var watchName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// watches checks the watch sources: names, filters (compiled as serve
// compiles them, so a regex RE2 cannot express is an error naming its
// line), where lines come from, and the jail they feed. A source that
// cannot be read now (a missing file, no permission, no journal) is a
// warning: the file may appear later, and serve logs it and keeps going.
func (v *validator) watches(f *File) {
	if len(f.Hosts) == 0 && f.TLS != nil {
		v.add("tls", "a config without hosts serves no requests; leave tls out")
	}
	names := map[string]string{}
	for i := range f.Watch {
		w := &f.Watch[i]
		p := "watch[" + strconv.Itoa(i) + "]"
		switch {
		case w.Name == "":
			v.add(p+".name", "a name is required")
		case !watchName.MatchString(w.Name):
			v.add(p+".name", "%q: use letters, digits, '.', '_' and '-' (at most 64)", w.Name)
		case names[w.Name] != "":
			v.add(p+".name", "%q is already the name of %s (line %d)", w.Name, names[w.Name], v.line(names[w.Name]))
		default:
			names[w.Name] = p + ".name"
		}
		v.watchFilter(p, w)
		v.watchSource(p, w)
		jail := WatchJail(*w)
		field := p + ".jail"
		if _, written := v.lines[field]; !written {
			field = p + ".name"
		}
		switch j, ok := f.Jails[jail]; {
		case !ok:
			v.add(field, "jail %q is not defined under jails; a watch source bans only through a jail", jail)
		case j.Rate > 0:
			v.add(field, "jail %q is a flood jail (rate); a watch source needs a counting jail (maxretry, findtime)", jail)
		}
	}
}

func (v *validator) watchFilter(p string, w *Watch) {
	if _, err := watchLocation(w.Timezone); err != nil {
		v.add(p+".timezone", "%q is not a time zone: write local, UTC or an IANA name such as Europe/Berlin", w.Timezone)
		return
	}
	switch {
	case w.Filter == nil:
		v.add(p+".filter", "a filter is required: a built-in name (%s) or a block with failregex", builtinList())
		return
	case w.Filter.Builtin == "" && w.Mode != "":
		v.add(p+".mode", "mode is for a built-in filter; a filter block says what it matches itself")
		return
	case w.Filter.Builtin != "":
		if _, err := filter.Builtin(w.Filter.Builtin, w.Mode); err != nil {
			field := p + ".filter"
			if w.Mode != "" {
				if _, nameErr := filter.Builtin(w.Filter.Builtin, ""); nameErr == nil {
					field = p + ".mode"
				}
			}
			v.add(field, "%v", err)
		}
		return
	}
	if len(w.Filter.FailRegex) == 0 {
		v.add(p+".filter.failregex", "at least one failregex is required")
		return
	}
	cfg, _ := WatchFilterConfig(*w)
	if _, err := filter.Compile(cfg); err != nil {
		var re *filter.RegexError
		if errors.As(err, &re) {
			field := p + ".filter." + re.Field
			if re.Field != "prefregex" {
				field += "[" + strconv.Itoa(re.Index) + "]"
			}
			v.add(field, "%v", re.Err)
			return
		}
		v.add(p+".filter", "%v", err)
	}
}

func (v *validator) watchSource(p string, w *Watch) {
	switch {
	case len(w.Files) == 0 && w.Journal == nil:
		v.add(p, "say where the lines are: files (paths or globs) or journal (units, identifiers)")
		return
	case len(w.Files) > 0 && w.Journal != nil:
		v.add(p+".journal", "give files or journal, not both; make two watch entries for both")
		return
	}
	if w.Journal != nil {
		if w.Tail {
			v.add(p+".tail", "tail is for files; the journal is read from the saved cursor, or at the first start from the jail's findtime ago")
		}
		if d := w.Journal.Directory; d != "" && !filepath.IsAbs(d) {
			v.add(p+".journal.directory", "%q: write an absolute path", d)
			return
		}
		if jc := JournalSourceConfig(*w, nil); len(jc.Units) == 0 && len(jc.Identifiers) == 0 {
			v.add(p+".journal", "name the units to read (a filter block has no usual units)")
			return
		}
		src, err := watch.NewJournalSource(JournalSourceConfig(*w, nil), nil)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = src.Check(ctx)
			cancel()
		}
		if err != nil {
			v.warn(p+".journal", "%v (serve logs it and retries)", err)
		}
		return
	}
	for j, path := range w.Files {
		field := p + ".files[" + strconv.Itoa(j) + "]"
		if !filepath.IsAbs(path) {
			v.add(field, "%q: write an absolute path", path)
			return
		}
		if _, err := filepath.Match(path, ""); err != nil {
			v.add(field, "%q is not a valid glob: %v", path, err)
			return
		}
	}
	src, err := watch.NewFileSource(FileSourceConfig(*w, nil), nil)
	if err == nil {
		err = src.Check()
	}
	if err != nil {
		v.warn(p+".files", "%v (serve logs it and reads the files when they can be read)", err)
	}
}

// builtinList names the built-in filters for an error message.
func builtinList() string {
	s := ""
	for i, n := range filter.Builtins() {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

// WatchJail is the jail w's offences go to: its jail, or its name.
func WatchJail(w Watch) string {
	if w.Jail != "" {
		return w.Jail
	}
	return w.Name
}

// watchLocation is the time zone of w's timestamps that carry none.
func watchLocation(tz string) (*time.Location, error) {
	switch tz {
	case "", "local":
		return time.Local, nil
	case "UTC":
		return time.UTC, nil
	}
	return time.LoadLocation(tz)
}

// WatchFilterConfig is the filter w's lines are judged by: the built-in
// one in w's mode, or w's own regexes.
func WatchFilterConfig(w Watch) (filter.Config, error) {
	loc, err := watchLocation(w.Timezone)
	if err != nil {
		return filter.Config{}, err
	}
	var c filter.Config
	switch {
	case w.Filter == nil:
		return filter.Config{}, errors.New("no filter")
	case w.Filter.Builtin != "":
		if c, err = filter.Builtin(w.Filter.Builtin, w.Mode); err != nil {
			return filter.Config{}, err
		}
	default:
		c = filter.Config{FailRegex: w.Filter.FailRegex, IgnoreRegex: w.Filter.IgnoreRegex,
			PrefRegex: w.Filter.PrefRegex, DatePattern: w.Filter.DatePattern}
	}
	c.Location = loc
	return c, nil
}

// WatchMaxLine bounds a log line: a file source hands over at most this
// many bytes of a line, and a line that long is not judged (what was cut
// off might have changed the verdict, or the address it blames).
const WatchMaxLine = 64 << 10

// FileSourceConfig maps a files watch source to rules/watch's config;
// positions nil keeps them in memory.
func FileSourceConfig(w Watch, positions watch.Positions) watch.FileConfig {
	return watch.FileConfig{Name: w.Name, Paths: w.Files, Tail: w.Tail, Positions: positions, MaxLineBytes: WatchMaxLine}
}

// JournalSourceConfig maps a journal watch source to rules/watch's
// config; positions nil keeps the cursor in memory.
func JournalSourceConfig(w Watch, positions watch.Positions) watch.JournalConfig {
	c := watch.JournalConfig{Name: w.Name, Positions: positions}
	if w.Journal != nil {
		c.Units, c.Identifiers, c.Directory = w.Journal.Units, w.Journal.Identifiers, w.Journal.Directory
		if len(c.Units) == 0 && len(c.Identifiers) == 0 && w.Filter != nil && w.Filter.Builtin != "" {
			c.Units, c.Identifiers = filter.JournalMatch(w.Filter.Builtin)
		}
	}
	return c
}
