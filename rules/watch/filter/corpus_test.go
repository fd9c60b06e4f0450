package filter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
	_ "time/tzdata" // the corpus zone must not depend on the machine

	"gatehouse/rules/testenv"
	"gatehouse/rules/watch/filter/corpus"
)

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

// judge runs the cases through built-in filter name, one Stream per option
// set (fail2ban keeps one filter object per set), and returns the cases it
// judged differently from fail2ban, with why.
func judge(t *testing.T, name string, cases []corpus.Case, loc *time.Location) (bad []string) {
	t.Helper()
	now := func() time.Time { return time.Unix(corpus.Now, 0) }
	streams := map[string]*Stream{}
	for _, c := range cases {
		key := c.Opts["mode"] + "|" + c.Opts["logtype"]
		st := streams[key]
		if st == nil {
			mode := c.Opts["mode"]
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
		if c.Opts["logtype"] == "journal" {
			r = st.MatchAt(c.Text, now())
		} else {
			r = st.Match(c.Text)
		}
		if why := corpus.Disagree(c.Want, verdict(r), loc); why != "" {
			bad = append(bad, c.File+":"+jsonNum(c.Line)+" mode="+c.Opts["mode"]+": "+why+"\n\t"+c.Text)
		}
	}
	return bad
}

func jsonNum(n int) string { b, _ := json.Marshal(n); return string(b) }

// verdict is r in the terms of an annotation.
func verdict(r Result) corpus.Verdict {
	return corpus.Verdict{Kind: r.Kind.String(), Fail: r.Kind == Fail, Host: r.Host, HostName: r.HostName, User: r.User, Time: r.Time}
}

// TestCorpus judges the annotated lines of the fail2ban sample log of
// each built-in filter (a built-in filter without one fails).
func TestCorpus(t *testing.T) {
	t.Parallel()
	for _, name := range Builtins() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testCorpus(t, name)
		})
	}
}

func testCorpus(t *testing.T, name string) {
	dir := corpusDir(t)
	loc, err := time.LoadLocation(corpus.Zone)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := corpus.Read(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if name == "recidive" {
		for i := range cases {
			if cases[i].Opts["mode"] == "" {
				cases[i].Opts["mode"] = "fail2ban"
			}
		}
	}
	if name == "vsftpd" {
		// Its last lines, marked logtype=journal by a lone "# fileOptions",
		// are journalctl's text with its ISO date: a journal source hands
		// over no date, so they are judged as the file lines they are.
		for i := range cases {
			delete(cases[i].Opts, "logtype")
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
