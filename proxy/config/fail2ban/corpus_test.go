package fail2ban

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"net/netip"
	"os"
	"os/exec"
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

// disagree compares a verdict with a failJSON annotation, or with
// fail2ban's own verdict in the same form; "" when they agree.
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
	switch ts := want["time"].(type) {
	case string:
		w, err := time.ParseInLocation("2006-1-2T15:04:05", strings.SplitN(ts, ".", 2)[0], loc)
		if err != nil || !r.Time.Truncate(time.Second).Equal(w) {
			return "time " + r.Time.In(loc).Format(time.RFC3339) + ", want " + ts
		}
	case float64: // fail2ban's own: seconds since 1970
		if r.Time.IsZero() || r.Time.Unix() != int64(math.Floor(ts)) {
			return "time " + r.Time.In(loc).Format(time.RFC3339) + ", want " + time.Unix(int64(ts), 0).In(loc).Format(time.RFC3339)
		}
	case nil:
		if _, has := want["time"]; has && !r.Time.IsZero() {
			return "time " + r.Time.In(loc).Format(time.RFC3339) + ", want none"
		}
	}
	return ""
}

// oracleScript judges lines with the fail2ban installed: each job is a
// filter.d file read with its options as fail2ban's FilterReader reads it,
// its lines fed in order to one fail2ban Filter set as in production
// (checkAllRegex off) but without the findtime check and DNS, in the zone
// and at the clock the sample logs were written for. Journal lines carry
// the clock's time and are not searched for a date, as fail2ban's systemd
// backend hands them over. The first match that is a failure decides.
const oracleScript = `
import json, os, sys, time
os.environ["TZ"] = "Europe/Zurich"
time.tzset()
from fail2ban.client.filterreader import FilterReader
from fail2ban.server.filter import Filter
from fail2ban.server.mytime import MyTime

req = json.load(sys.stdin)
MyTime.setTime(req["now"])
now_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(req["now"]))

def load(name, opts):
    rd = FilterReader(name, "jail", dict(opts), basedir=req["etc"])
    if not rd.read():
        raise SystemExit("cannot read filter " + name)
    rd.getOptions({})
    f = Filter(None)
    f.returnRawHost = True
    f.checkFindTime = False
    f.active = True
    for op in rd.convert():
        for v in (op[3] if op[0] == "multi-set" else [op[3]]):
            if op[2] == "prefregex":
                f.prefRegex = v
            elif op[2] == "addfailregex":
                f.addFailRegex(v)
            elif op[2] == "addignoreregex":
                f.addIgnoreRegex(v)
            elif op[2] == "maxlines":
                f.setMaxLines(v)
            elif op[2] == "datepattern":
                f.setDatePattern(v)
    return f

out = []
for job in req["jobs"]:
    f = load(job["name"], job["opts"])
    verdicts = []
    for line in job["lines"]:
        if job["journal"]:
            found = f.processLine(("", now_text, line), req["now"])
        else:
            found = f.processLine(line)
        v = {"match": False}
        for _, fid, t, data in found or []:
            if fid is None or data.get("nofail"):
                continue
            v = {"match": True, "host": str(fid), "time": t}
            if data.get("user") is not None:
                v["user"] = data["user"]
            break
        verdicts.append(v)
    out.append(verdicts)
json.dump(out, sys.stdout)
`

// oracleJob is one filter option set and the lines judged under it, in
// the order of the sample log.
type oracleJob struct {
	Name    string            `json:"name"`
	Opts    map[string]string `json:"opts"`
	Journal bool              `json:"journal"`
	Lines   []string          `json:"lines"`
}

// fail2banVerdicts judges the jobs' lines with the fail2ban installed
// beside etc, through the Python that runs fail2ban-regex.
func fail2banVerdicts(t *testing.T, etc string, jobs []oracleJob) [][]map[string]any {
	t.Helper()
	regex := testenv.Tool(t, "fail2ban-regex")
	head, err := os.ReadFile(regex)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(head), "\n")
	py, ok := strings.CutPrefix(first, "#!")
	py = strings.TrimSpace(py)
	if !ok || strings.ContainsAny(py, " \t") {
		t.Fatalf("%s: no interpreter line: %q", regex, first)
	}
	in, err := json.Marshal(map[string]any{"now": corpusNow, "etc": etc, "jobs": jobs})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", oracleScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("fail2ban (%s): %v\n%s", py, err, stderr.String())
	}
	var out [][]map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(jobs) {
		t.Fatalf("fail2ban judged %d option sets, want %d", len(out), len(jobs))
	}
	for i := range out {
		if len(out[i]) != len(jobs[i].Lines) {
			t.Fatalf("fail2ban judged %d lines of %s, want %d", len(out[i]), jobs[i].Name, len(jobs[i].Lines))
		}
	}
	return out
}

// TestDebianFilterCorpus reads, for every fail2ban sample log whose
// filter Debian's fail2ban package ships, that filter.d file as an import
// does (ReadFilter, once per "# filterOptions" set, the options as the
// filter's arguments), compiles it with the filter engine and judges
// every annotated line, as an imported watch entry would. Each verdict
// must be fail2ban's own on the same filter file (the fail2ban installed
// judges the same lines in the same order): match, address, user and
// time. The sample logs may be newer than the filter files; the lines
// where fail2ban itself departs from their annotations are logged and
// counted, as is the agreement with the annotations. The filter option
// sets RE2 refuses are logged with file:line and the reason. A filter.d
// file that cannot be read is an error.
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

	// one set per filter and option set, judged by gatehouse as it goes
	type set struct {
		job     oracleJob
		cases   []corpusCase
		results []filter.Result
	}
	var sets []*set
	var refused []string
	var refusedLines int
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
		byKey := map[string]*set{}
		streams := map[string]*filter.Stream{}
		bad := map[string]bool{}
		for _, c := range cases {
			args := maps.Clone(c.opts)
			delete(args, "test.condition")
			key := optsKey(args)
			if bad[key] {
				refusedLines++
				continue
			}
			st := streams[key]
			if st == nil {
				def, _, err := ReadFilter(fsys, FilterSpec{Name: name, Args: args}, "auto")
				if err != nil {
					t.Errorf("%s %s: ReadFilter: %v", name, key, err)
					bad[key] = true
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
					bad[key] = true
					refused = append(refused, name+" "+key+": "+why)
					refusedLines++
					continue
				}
				st = f.NewStream()
				streams[key] = st
				s := &set{job: oracleJob{Name: name, Opts: args, Journal: args["logtype"] == "journal"}}
				byKey[key] = s
				sets = append(sets, s)
			}
			s := byKey[key]
			var r filter.Result
			if s.job.Journal {
				r = st.MatchAt(c.line, now())
			} else {
				r = st.Match(c.line)
			}
			s.job.Lines = append(s.job.Lines, c.line)
			s.cases = append(s.cases, c)
			s.results = append(s.results, r)
		}
	}
	if len(sets) == 0 {
		t.Fatal("no line judged")
	}
	jobs := make([]oracleJob, len(sets))
	for i, s := range sets {
		jobs[i] = s.job
	}
	verdicts := fail2banVerdicts(t, etc, jobs)

	var total, withF2B, withNotes, f2bNotes int
	perFilter := map[string][2]int{}
	for i, s := range sets {
		key := optsKey(s.job.Opts)
		for j, c := range s.cases {
			r, v := s.results[j], verdicts[i][j]
			total++
			n := perFilter[s.job.Name]
			n[1]++
			if why := disagree(v, r, loc); why != "" {
				t.Errorf("judged unlike fail2ban: %s:%d %s: %s\n\t%s", c.file, c.lineNo, key, why, c.line)
			} else {
				withF2B++
				n[0]++
			}
			perFilter[s.job.Name] = n
			if disagree(c.want, r, loc) == "" {
				withNotes++
			}
			if match, _ := c.want["match"].(bool); match != (v["match"] == true) {
				f2bNotes++
				t.Logf("fail2ban's %s.conf departs from the annotation: %s:%d %s: match %v\n\t%s", s.job.Name, c.file, c.lineNo, key, v["match"], c.line)
			}
		}
	}
	slices.Sort(refused)
	for _, r := range refused {
		t.Logf("refused (RE2 or multi-line): %s", r)
	}
	var judged []string
	for _, name := range slices.Sorted(maps.Keys(perFilter)) {
		n := perFilter[name]
		judged = append(judged, name+" "+strconv.Itoa(n[0])+"/"+strconv.Itoa(n[1]))
	}
	t.Logf("judged as fail2ban judges them: %s", strings.Join(judged, ", "))
	t.Logf("%d/%d annotated lines judged as fail2ban judges them by the imported Debian filters "+
		"(%d/%d as annotated; fail2ban departs from %d annotations); %d lines under %d filter option sets refused",
		withF2B, total, withNotes, total, f2bNotes, refusedLines, len(refused))
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
