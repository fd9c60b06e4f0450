package filter

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the corpus zone must not depend on the machine

	"gatehouse/rules/testenv"
)

// The fail2ban sample logs were written for TZ=CET-01CEST-02 (EU rules) and
// a clock stopped at 2005-08-14 10:00:00 UTC (fail2ban's tests/utils.py).
const corpusNow = 1124013600

func corpusDir(tb testing.TB) string {
	dir := filepath.Join("..", "..", "..", "..", "shared", "corpora", "fail2ban", "logs")
	if _, err := os.Stat(dir); err != nil {
		if tb == nil {
			return ""
		}
		tb.Helper()
		testenv.Missing(tb, "fail2ban corpus: %v", err)
	}
	return dir
}

// corpusCase is one annotated line and the filter options it is judged
// under.
type corpusCase struct {
	file   string
	lineNo int
	line   string
	opts   map[string]string
	want   map[string]any
}

// corpusLines reads a fail2ban sample log the way fail2ban's
// samplestestcase.py does: "# filterOptions" switches the option sets
// (each line is judged under every set), "# fileOptions" applies to all
// sets of a file, "# addFILE" appends a file, "# failJSON" annotates the
// next line.
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

// judge runs the cases through built-in filter name, one Stream per option
// set (fail2ban keeps one filter object per set), and returns the cases it
// judged differently from fail2ban, with why.
func judge(t *testing.T, name string, cases []corpusCase, loc *time.Location) (bad []string) {
	t.Helper()
	now := func() time.Time { return time.Unix(corpusNow, 0) }
	streams := map[string]*Stream{}
	for _, c := range cases {
		key := c.opts["mode"] + "|" + c.opts["logtype"]
		st := streams[key]
		if st == nil {
			mode := c.opts["mode"]
			cfg, err := Builtin(name, mode)
			if err != nil {
				t.Fatalf("Builtin(%q, %q): %v", name, mode, err)
			}
			cfg.Location, cfg.Now = loc, now
			f, err := Compile(cfg)
			if err != nil {
				t.Fatalf("Compile(%s/%s): %v", name, mode, err)
			}
			st = f.NewStream()
			streams[key] = st
		}
		var r Result
		if c.opts["logtype"] == "journal" {
			r = st.MatchAt(c.line, now())
		} else {
			r = st.Match(c.line)
		}
		if why := disagree(c.want, r, loc); why != "" {
			bad = append(bad, c.file+":"+jsonNum(c.lineNo)+" mode="+c.opts["mode"]+": "+why+"\n\t"+c.line)
		}
	}
	return bad
}

func jsonNum(n int) string { b, _ := json.Marshal(n); return string(b) }

// disagree compares a Result with a failJSON annotation.
func disagree(want map[string]any, r Result, loc *time.Location) string {
	match, _ := want["match"].(bool)
	if match != (r.Kind == Fail) {
		return "kind " + r.Kind.String() + ", want match " + jsonNum0(match)
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
			if w, err := parseAddr(h); err == nil {
				h = w
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

func jsonNum0(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestCorpusSSHD(t *testing.T) {
	t.Parallel()
	testCorpus(t, "sshd")
}

func TestCorpusRecidive(t *testing.T) {
	t.Parallel()
	testCorpus(t, "recidive")
}

func TestCorpusPostfix(t *testing.T) {
	t.Parallel()
	testCorpus(t, "postfix")
}

func TestCorpusDovecot(t *testing.T) {
	t.Parallel()
	testCorpus(t, "dovecot")
}

func TestCorpusVsftpd(t *testing.T) {
	t.Parallel()
	testCorpus(t, "vsftpd")
}

func TestCorpusProftpd(t *testing.T) {
	t.Parallel()
	testCorpus(t, "proftpd")
}

func TestCorpusNginxHTTPAuth(t *testing.T) {
	t.Parallel()
	testCorpus(t, "nginx-http-auth")
}

func testCorpus(t *testing.T, name string) {
	dir := corpusDir(t)
	loc, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		t.Fatal(err)
	}
	cases := corpusLines(t, dir, name)
	if name == "recidive" {
		for i := range cases {
			if cases[i].opts["mode"] == "" {
				cases[i].opts["mode"] = "fail2ban"
			}
		}
	}
	if len(cases) == 0 {
		t.Fatalf("no annotated lines in %s", name)
	}
	bad := judge(t, name, cases, loc)
	sort.Strings(bad)
	t.Logf("%s: %d/%d annotated lines judged as fail2ban judges them", name, len(cases)-len(bad), len(cases))
	for _, b := range bad {
		t.Error(b)
	}
}

func parseAddr(s string) (string, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", err
	}
	return a.Unmap().String(), nil
}
