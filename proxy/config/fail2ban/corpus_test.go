package fail2ban

import (
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the corpus zone must not depend on the machine

	"gatehouse/rules/testenv"
	"gatehouse/rules/watch/filter"
)

// The fail2ban sample logs were written for TZ=CET-01CEST-02 (EU rules)
// and a clock stopped at 2005-08-14 10:00:00 UTC (fail2ban's
// tests/utils.py).
const corpusNow = 1124013600

// corpusCase is one annotated line and the filter options it is judged
// under.
type corpusCase struct {
	file   string
	lineNo int
	line   string
	opts   map[string]string
	want   map[string]any
}

// corpusLines reads a fail2ban sample log as fail2ban's
// samplestestcase.py does: "# filterOptions" switches the option sets
// (each line is judged under every set), "# fileOptions" applies to all
// sets of a file, "# addFILE" appends a file, "# failJSON" annotates the
// next line. (The same reader as rules/watch/filter's corpus test, which
// keeps it unexported.)
func corpusLines(t *testing.T, dir, name string) []corpusCase {
	t.Helper()
	var out []corpusCase
	files := []string{name}
	for i := 0; i < len(files); i++ {
		data, err := os.ReadFile(filepath.Join(dir, files[i]))
		if err != nil {
			t.Fatal(err)
		}
		var common map[string]any
		sets := []map[string]string{{}}
		ignore := false
		var want map[string]any
		for n, line := range strings.Split(string(data), "\n") {
			line = strings.TrimRight(line, "\r")
			if rest, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") {
				key, val, _ := strings.Cut(rest, ":")
				switch key {
				case "failJSON", "filterOptions", "fileOptions", "addFILE":
					var v any
					if err := json.Unmarshal([]byte(val), &v); err != nil {
						t.Fatalf("%s:%d: %v", files[i], n+1, err)
					}
					switch key {
					case "failJSON":
						want = v.(map[string]any)
					case "fileOptions":
						common = v.(map[string]any)
					case "addFILE":
						files = append(files, v.(string))
					case "filterOptions":
						list, ok := v.([]any)
						if !ok {
							list = []any{v}
						}
						sets, ignore = nil, false
						for _, o := range list {
							opts := map[string]string{}
							for k, x := range common {
								opts[k], _ = x.(string)
							}
							for k, x := range o.(map[string]any) {
								opts[k], _ = x.(string)
							}
							if c := opts["test.condition"]; c != "" {
								ignore = !evalCond(c, name, opts)
							}
							if !ignore {
								sets = append(sets, opts)
							}
						}
					}
					continue
				}
			}
			if want == nil || ignore {
				continue
			}
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if common != nil && len(sets) == 1 && len(sets[0]) == 0 {
				sets = []map[string]string{{}}
				for k, x := range common {
					sets[0][k], _ = x.(string)
				}
				if c := sets[0]["test.condition"]; c != "" && !evalCond(c, name, sets[0]) {
					want = nil
					continue
				}
			}
			for _, o := range sets {
				if c, _ := want["constraint"].(string); c != "" && !evalCond(c, name, o) {
					continue
				}
				out = append(out, corpusCase{files[i], n + 1, line, o, want})
			}
			want = nil
		}
	}
	return out
}

// evalCond evaluates the few Python conditions the sample logs use.
func evalCond(c, name string, opts map[string]string) bool {
	c = strings.ReplaceAll(c, " ", "")
	switch {
	case strings.HasPrefix(c, "name=="):
		return strings.Trim(c[len("name=="):], `'"`) == name
	case strings.HasPrefix(c, "opts.get('mode')=="):
		return opts["mode"] == strings.Trim(c[len("opts.get('mode')=="):], `'"`)
	case strings.HasPrefix(c, "opts.get('mode')!="):
		return opts["mode"] != strings.Trim(c[len("opts.get('mode')!="):], `'"`)
	}
	return false
}

// disagree compares a verdict with a failJSON annotation; "" when they
// agree.
func disagree(want map[string]any, r filter.Result, loc *time.Location) string {
	match, _ := want["match"].(bool)
	if match != (r.Kind == filter.Fail) {
		return "kind " + r.Kind.String() + ", want match " + strconv.FormatBool(match)
	}
	if !match {
		return ""
	}
	h, ok := want["host"].(string)
	if !ok {
		h, ok = want["ip4"].(string)
	}
	if !ok {
		h, ok = want["ip6"].(string)
	}
	if ok {
		got := r.HostName
		if r.Host.IsValid() {
			got = r.Host.String()
			if a, err := netip.ParseAddr(h); err == nil {
				h = a.Unmap().String()
			}
		}
		if got != h {
			return "host " + got + ", want " + h
		}
	}
	if u, ok := want["user"].(string); ok && r.User != u {
		return "user " + r.User + ", want " + u
	}
	if ts, ok := want["time"].(string); ok {
		w, err := time.ParseInLocation("2006-1-2T15:04:05", strings.SplitN(ts, ".", 2)[0], loc)
		if err != nil || !r.Time.Truncate(time.Second).Equal(w) {
			return "time " + r.Time.In(loc).Format(time.RFC3339) + ", want " + ts
		}
	}
	return ""
}

// strictCorpus makes every disagreement of TestDebianFilterCorpus an
// error; without it they are logged and counted. The regexes an import
// reads are checked against fail2ban's own reading by TestDebianFilters;
// what this test measures beyond that is the filter engine (date
// detection, multi-line datepatterns), whose gaps are listed.
var strictCorpus = flag.Bool("corpus.strict", false, "fail TestDebianFilterCorpus on any line judged unlike fail2ban")

// TestDebianFilterCorpus reads, for every fail2ban sample log whose
// filter Debian's fail2ban package ships, that filter.d file as an import
// does (ReadFilter, once per "# filterOptions" set, the options as the
// filter's arguments), compiles it with the filter engine and judges
// every annotated line, as an imported watch entry would. It logs the
// agreement per filter, every line judged unlike fail2ban (errors with
// -corpus.strict) and the filters RE2 refuses, with file:line and the
// reason. A filter.d file that cannot be read is an error.
func TestDebianFilterCorpus(t *testing.T) {
	t.Parallel()
	const etc = "/etc/fail2ban"
	if _, err := os.Stat(filepath.Join(etc, "filter.d", "sshd.conf")); err != nil {
		testenv.Missing(t, "%s: Debian's fail2ban package is not installed (make deps)", etc)
	}
	dir := filepath.Join("..", "..", "..", "..", "shared", "corpora", "fail2ban", "logs")
	logs, err := os.ReadDir(dir)
	if err != nil {
		testenv.Missing(t, "fail2ban corpus: %v", err)
	}
	loc, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Unix(corpusNow, 0) }
	fsys := os.DirFS(etc)
	var total, agreed, refusedLines int
	var refused, judged []string
	for _, e := range logs {
		name := e.Name()
		if _, err := os.Stat(filepath.Join(etc, "filter.d", name+".conf")); err != nil {
			continue // no such filter.d file (sshd-journal is read through sshd's addFILE)
		}
		cases := corpusLines(t, dir, name)
		if len(cases) == 0 {
			t.Errorf("%s: no annotated lines", name)
			continue
		}
		streams := map[string]*filter.Stream{}
		bad := map[string]string{} // option set → why the filter is refused
		n, ok := 0, 0
		for _, c := range cases {
			args := maps.Clone(c.opts)
			delete(args, "test.condition")
			key := optsKey(args)
			if _, isBad := bad[key]; isBad { // reported once, below
				refusedLines++
				continue
			}
			st := streams[key]
			if st == nil {
				def, _, err := ReadFilter(fsys, FilterSpec{Name: name, Args: args}, "auto")
				if err != nil {
					t.Errorf("%s %s: ReadFilter: %v", name, key, err)
					bad[key] = err.Error()
					refusedLines++
					continue
				}
				f, err := filter.Compile(filter.Config{
					FailRegex: def.FailRegex, IgnoreRegex: def.IgnoreRegex, PrefRegex: def.PrefRegex,
					DatePattern: def.DatePattern, MaxLines: def.MaxLines, Location: loc, Now: now,
				})
				if err != nil {
					why := err.Error()
					var re *filter.RegexError
					if errors.As(err, &re) {
						k := re.Field
						if k != "prefregex" {
							k += "[" + strconv.Itoa(re.Index) + "]"
						}
						why = def.Src[k].String() + ": " + why
					}
					bad[key] = why
					refused = append(refused, name+" "+key+": "+why)
					refusedLines++
					continue
				}
				st = f.NewStream()
				streams[key] = st
			}
			var r filter.Result
			if c.opts["logtype"] == "journal" {
				r = st.MatchAt(c.line, now())
			} else {
				r = st.Match(c.line)
			}
			n++
			if why := disagree(c.want, r, loc); why != "" {
				report := t.Logf
				if *strictCorpus {
					report = t.Errorf
				}
				report("judged unlike fail2ban: %s:%d %s: %s\n\t%s", c.file, c.lineNo, key, why, c.line)
				continue
			}
			ok++
		}
		total += n
		agreed += ok
		if n > 0 {
			judged = append(judged, name+" "+strconv.Itoa(ok)+"/"+strconv.Itoa(n))
		}
	}
	slices.Sort(refused)
	for _, r := range refused {
		t.Logf("refused (RE2 or multi-line): %s", r)
	}
	t.Logf("judged: %s", strings.Join(judged, ", "))
	t.Logf("%d/%d annotated lines judged as fail2ban judges them by the imported Debian filters; %d lines under %d filter option sets refused", agreed, total, refusedLines, len(refused))
	if total == 0 {
		t.Fatal("no line judged")
	}
}

// optsKey names an option set ("mode=aggressive logtype=journal").
func optsKey(opts map[string]string) string {
	var b []string
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		b = append(b, k+"="+opts[k])
	}
	if len(b) == 0 {
		return "(default)"
	}
	return strings.Join(b, " ")
}
