package fail2ban

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
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
	"gatehouse/rules/watch/filter/corpus"
)

// verdict is r in the terms of an annotation.
func verdict(r filter.Result) corpus.Verdict {
	return corpus.Verdict{Kind: r.Kind.String(), Fail: r.Kind == filter.Fail, Host: r.Host, HostName: r.HostName, User: r.User, Time: r.Time}
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
	py, err := corpus.Interpreter(testenv.Tool(t, "fail2ban-regex"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(map[string]any{"now": corpus.Now, "etc": etc, "jobs": jobs})
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
	loc, err := time.LoadLocation(corpus.Zone)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Unix(corpus.Now, 0) }
	fsys := os.DirFS(etc)

	// one set per filter and option set, judged by gatehouse as it goes
	type set struct {
		job     oracleJob
		cases   []corpus.Case
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
		cases, err := corpus.Read(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(cases) == 0 {
			t.Errorf("%s: no annotated lines", name)
			continue
		}
		byKey := map[string]*set{}
		streams := map[string]*filter.Stream{}
		bad := map[string]bool{}
		for _, c := range cases {
			args := maps.Clone(c.Opts)
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
				r = st.MatchAt(c.Text, now())
			} else {
				r = st.Match(c.Text)
			}
			s.job.Lines = append(s.job.Lines, c.Text)
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
			if why := corpus.Disagree(v, verdict(r), loc); why != "" {
				t.Errorf("judged unlike fail2ban: %s:%d %s: %s\n\t%s", c.File, c.Line, key, why, c.Text)
			} else {
				withF2B++
				n[0]++
			}
			perFilter[s.job.Name] = n
			if corpus.Disagree(c.Want, verdict(r), loc) == "" {
				withNotes++
			}
			if match, _ := c.Want["match"].(bool); match != (v["match"] == true) {
				f2bNotes++
				t.Logf("fail2ban's %s.conf departs from the annotation: %s:%d %s: match %v\n\t%s", s.job.Name, c.File, c.Line, key, v["match"], c.Text)
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
