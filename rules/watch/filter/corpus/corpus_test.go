package corpus

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"svc": `# failJSON: { "match": true, "host": "192.0.2.1" }
line one

# filterOptions: [{}, {"mode": "aggressive"}]
# failJSON: { "match": false }
line two
# failJSON: { "match": true, "constraint": "opts.get('mode') != 'aggressive'" }
line three
# addFILE: "svc-journal"
`,
		"svc-journal": `# fileOptions: {"logtype": "journal", "test.condition": "name=='svc'"}
# failJSON: { "match": true }
line four
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases, err := Read(filepath.Join(dir, "svc"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cases {
		got = append(got, c.File+":"+c.Text+":"+c.Opts["mode"]+":"+c.Opts["logtype"])
	}
	want := "svc:line one::,svc:line two::,svc:line two:aggressive:,svc:line three::,svc-journal:line four::journal"
	if strings.Join(got, ",") != want {
		t.Errorf("Read = %s\nwant   %s", strings.Join(got, ","), want)
	}
	if len(cases) > 0 && (cases[0].Line != 2 || cases[0].Want["host"] != "192.0.2.1") {
		t.Errorf("first case = %+v", cases[0])
	}

	// the condition names the file Read was given: svc-journal alone is skipped
	cases, err = Read(filepath.Join(dir, "svc-journal"))
	if err != nil || len(cases) != 0 {
		t.Errorf("Read(svc-journal) = %d cases, %v; want none", len(cases), err)
	}

	if err := os.WriteFile(filepath.Join(dir, "bad"), []byte("# failJSON: [1]\nx\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(filepath.Join(dir, "bad")); err == nil || !strings.Contains(err.Error(), "bad:1:") {
		t.Errorf("Read(bad) error = %v, want one naming bad:1", err)
	}
}

func TestDisagree(t *testing.T) {
	loc, err := time.LoadLocation(Zone)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2005, 8, 14, 12, 0, 0, 0, loc)
	v := Verdict{Kind: "fail", Fail: true, Host: netip.MustParseAddr("192.0.2.1"), User: "root", Time: at}
	for _, tc := range []struct {
		want map[string]any
		diff string // a part of the difference, "" when they agree
	}{
		{map[string]any{"match": true, "host": "::ffff:192.0.2.1", "user": "root", "time": "2005-08-14T12:00:00.5"}, ""},
		{map[string]any{"match": true, "ip4": "192.0.2.1", "time": float64(at.Unix()) + 0.5}, ""},
		{map[string]any{"match": false}, "want match false"},
		{map[string]any{"match": true, "host": "192.0.2.2"}, "host 192.0.2.1, want 192.0.2.2"},
		{map[string]any{"match": true, "user": "admin"}, "user root, want admin"},
		{map[string]any{"match": true, "time": "2005-08-14T12:00:01"}, "time "},
		{map[string]any{"match": true, "time": nil}, "want none"},
	} {
		got := Disagree(tc.want, v, loc)
		if (tc.diff == "") != (got == "") || !strings.Contains(got, tc.diff) {
			t.Errorf("Disagree(%v) = %q, want %q", tc.want, got, tc.diff)
		}
	}
}

func TestInterpreter(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ head, want string }{
		{"#!/usr/bin/python3\nimport sys\n", "/usr/bin/python3"},
		{"#!/usr/bin/env python3\n", ""},
		{"import sys\n", ""},
	} {
		p := filepath.Join(dir, "script")
		if err := os.WriteFile(p, []byte(tc.head), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Interpreter(p)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("Interpreter(%q) = %q, %v; want %q", tc.head, got, err, tc.want)
		}
	}
}
