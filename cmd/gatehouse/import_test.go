package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// importTree writes an nginx config tree into a temporary directory and
// returns the directory.
func importTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(data, "DIR", dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runImport(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = importCmd(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestImportCommand(t *testing.T) {
	t.Parallel()
	dir := importTree(t, map[string]string{
		"complete.conf": "events {}\nhttp {\n server { listen 8080; server_name app.example.com;\n  location / { proxy_pass http://127.0.0.1:3000; }\n }\n}\n",
		"partial.conf":  "events {}\nhttp {\n gzip on;\n server { server_name app.example.com;\n  location / { proxy_pass http://127.0.0.1:3000; }\n }\n}\n",
		"broken.conf":   "events {}\nhttp {\n server {\n  listen 80\n }\n}\n",
		"deny.conf":     "events {}\nhttp {\n deny 203.0.113.9;\n server { server_name app.example.com;\n  location / { proxy_pass http://127.0.0.1:3000; }\n }\n}\n",
		"refused.conf":  "events {}\nhttp {\n server { server_name app.example.com;\n  location / { limit_req zone=login burst=5; proxy_pass http://127.0.0.1:3000; }\n }\n}\n",
		"jail.local":    "[DEFAULT]\nignoreip = 192.0.2.0/24\n[nginx-http-auth]\nenabled = true\nmaxretry = 3\n",
		"bad.jail":      "[nginx-http-auth\nenabled = true\n",
	})
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string // substrings
		wantStderr []string
	}{
		{"no kind", nil, exitUsage, nil, []string{"usage: gatehouse import nginx FILE"}},
		{"other kind", []string{"apache", "x"}, exitUsage, nil, []string{"usage:"}},
		{"no file", []string{"nginx"}, exitUsage, nil, []string{"usage:"}},
		{"two files", []string{"nginx", p("complete.conf"), p("partial.conf")}, exitUsage, nil, []string{"usage:"}},
		{"unknown flag", []string{"nginx", p("complete.conf"), "--nope"}, exitUsage, nil, []string{"flag provided but not defined: -nope"}},
		{"missing file", []string{"nginx", p("none.conf")}, exitUsage, nil, []string{"none.conf: no such file"}},
		{"broken file", []string{"nginx", p("broken.conf")}, exitUsage, nil, []string{p("broken.conf") + `:5: unexpected "}" in "listen"`}},
		{"complete", []string{"nginx", p("complete.conf")}, exitOK,
			[]string{"- match: [app.example.com]", "http: :8080 # listen, " + p("complete.conf") + ":3"},
			[]string{"everything was carried over"}},
		{"partial", []string{"nginx", p("partial.conf")}, exitPartial,
			[]string{"#   " + p("partial.conf") + ":3: gzip on: compression"},
			[]string{"not carried over:\n" + p("partial.conf") + ":3: gzip on: compression", "gatehouse import: 1 not carried over"}},
		{"deny list as the host's access", []string{"nginx", p("deny.conf")}, exitOK,
			[]string{"access:\n      - deny 203.0.113.9/32 # deny, " + p("deny.conf") + ":3\n      - allow all"}, nil},
		// nginx -t refuses a limit_req whose zone no limit_req_zone
		// defines (TestImportRefusedByNginx runs it).
		{"input nginx -t refuses", []string{"nginx", p("refused.conf")}, exitUsage, nil,
			[]string{"nginx -t would refuse this config:\n" + p("refused.conf") + `:4: limit_req zone=login burst=5: no limit_req_zone defines zone "login"`}},
		{"fail2ban, flags after the file", []string{"nginx", p("complete.conf"), "--fail2ban", p("jail.local")}, exitOK,
			[]string{"- 192.0.2.0/24 # ignoreip, " + p("jail.local") + ":2", "auth:\n    maxretry: 3"}, nil},
		{"broken jail file", []string{"nginx", "--fail2ban", p("bad.jail"), p("complete.conf")}, exitUsage, nil,
			[]string{p("bad.jail") + ":1: section header"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runImport(tc.args...)
			if code != tc.wantCode {
				t.Errorf("import %q = exit %d, want %d\nstderr: %s", tc.args, code, tc.wantCode, stderr)
			}
			for _, w := range tc.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestImportOutputFile checks -o: the config goes to the file, nothing to
// standard output, and gatehouse's own loader accepts the file.
func TestImportOutputFile(t *testing.T) {
	t.Parallel()
	dir := importTree(t, map[string]string{
		"nginx.conf": "events {}\nhttp {\n server { listen 127.0.0.1:8080; server_name app.example.com;\n  location / { proxy_pass http://127.0.0.1:3000; }\n }\n}\n",
	})
	out := filepath.Join(dir, "gatehouse.yaml")
	code, stdout, stderr := runImport("nginx", "-o", out, filepath.Join(dir, "nginx.conf"))
	if code != exitOK || stdout != "" {
		t.Fatalf("import -o = exit %d, stdout %q; want 0 and nothing\nstderr: %s", code, stdout, stderr)
	}
	var checkOut, checkErr bytes.Buffer
	if code := check([]string{"-c", out}, &checkOut, &checkErr); code != exitOK {
		t.Errorf("check -c %s = %d: %s", out, code, checkErr.String())
	}
	if !strings.Contains(checkOut.String(), "1 host, 1 upstream") {
		t.Errorf("check says %q, want 1 host, 1 upstream", checkOut.String())
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		operands []string
		out      string
		exit     int
		ok       bool
	}{
		{[]string{"a", "-o", "x", "b"}, []string{"a", "b"}, "x", 0, true},
		{[]string{"-o", "x", "a"}, []string{"a"}, "x", 0, true},
		{[]string{"a", "--", "-o"}, []string{"a", "-o"}, "", 0, true},
		{nil, nil, "", 0, true},
		{[]string{"a", "-h"}, nil, "", exitOK, false},
		{[]string{"a", "-zz"}, nil, "", exitUsage, false},
	} {
		fs := flag.NewFlagSet("import", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		out := fs.String("o", "", "")
		operands, exit, ok := parseInterspersed(fs, tc.args)
		if !slices.Equal(operands, tc.operands) || exit != tc.exit || ok != tc.ok || (ok && *out != tc.out) {
			t.Errorf("parseInterspersed(%q) = %q, %d, %v (-o %q); want %q, %d, %v (-o %q)",
				tc.args, operands, exit, ok, *out, tc.operands, tc.exit, tc.ok, tc.out)
		}
	}
}
