package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRulesTestCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfg, []byte(`hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
probes: {presets: [wordpress]}
jails:
  probes: {maxretry: 2, findtime: 10m, bantime: 1h}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "access.log")
	if err := os.WriteFile(log, []byte(
		`203.0.113.1 - - [25/Nov/2026:10:00:00 +0000] "GET /wp-login.php HTTP/1.1" 404 1 "-" "x"`+"\n"+
			`203.0.113.1 - - [25/Nov/2026:10:00:05 +0000] "GET /wp-admin/ HTTP/1.1" 404 1 "-" "x"`+"\n"+
			`203.0.113.2 - - [25/Nov/2026:10:00:06 +0000] "GET / HTTP/1.1" 200 1 "-" "x"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{name: "summary", args: []string{"test", "-c", cfg, log}, want: []string{
			"Lines: 3 read", "Probe matches: 2", "Bans that would follow: 1",
			"2026-11-25T10:00:05Z  203.0.113.1/32       probes   ban #1 until 2026-11-25T11:00:05Z"}},
		{name: "show matches", args: []string{"test", "-c", cfg, "--show-matches", log}, want: []string{
			"probe wordpress:", `"GET /wp-admin/ HTTP/1.1"`}},
		{name: "no log", args: []string{"test", "-c", cfg}, wantCode: exitUsage},
		{name: "missing log", args: []string{"test", "-c", cfg, filepath.Join(dir, "nope.log")}, wantCode: exitRuntime},
		{name: "unknown subcommand", args: []string{"run"}, wantCode: exitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			if code := rulesCmd(tc.args, strings.NewReader(""), &stdout, &stderr); code != tc.wantCode {
				t.Fatalf("rules %v = %d, want %d; stderr %s", tc.args, code, tc.wantCode, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("rules %v output lacks %q:\n%s", tc.args, w, stdout.String())
				}
			}
		})
	}
}
