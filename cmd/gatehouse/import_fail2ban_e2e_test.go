package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportFail2banChecks imports a fail2ban directory with the binary
// and runs gatehouse check on the result: the watch entries, jails,
// allow, firewall and notify it writes are a config gatehouse accepts,
// and what it cannot carry is listed and counted (exit 3).
func TestImportFail2banChecks(t *testing.T) {
	t.Parallel()
	src, err := filepath.Abs(filepath.Join("..", "..", "proxy", "config", "fail2ban", "testdata", "importdir"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "gatehouse.yaml")
	_, stderr, code := runGatehouse(t, "import", "fail2ban", src, "-o", out)
	if code != exitPartial {
		t.Fatalf("import fail2ban: exit %d, want %d\n%s", code, exitPartial, stderr)
	}
	for _, want := range []string{
		filepath.Join(src, "filter.d", "lookbehind.conf") + ":2: jail lookbehind: not carried",
		"gatehouse import: 13 not carried over",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("import fail2ban stderr lacks %q:\n%s", want, stderr)
		}
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"- name: sshd\n    filter: sshd\n    mode: normal\n", "journal: {units: [demo.service]}", "backend: nftables"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("imported config lacks %q:\n%s", want, data)
		}
	}
	if stdout, stderr, code := runGatehouse(t, "check", "-c", out); code != 0 {
		t.Fatalf("gatehouse check on the import: exit %d\n%s%s\n%s", code, stdout, stderr, data)
	}
}

// TestImportFail2banUsage: a directory that is not there is a usage
// error, and so is a second directory.
func TestImportFail2banUsage(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope")
	if _, stderr, code := runGatehouse(t, "import", "fail2ban", missing); code != exitUsage || !strings.Contains(stderr, "is not fail2ban's configuration directory") {
		t.Errorf("import fail2ban %s: exit %d, want %d\n%s", missing, code, exitUsage, stderr)
	}
	if _, _, code := runGatehouse(t, "import", "fail2ban", "a", "b"); code != exitUsage {
		t.Errorf("import fail2ban a b: exit %d, want %d", code, exitUsage)
	}
	empty := t.TempDir()
	if _, stderr, code := runGatehouse(t, "import", "fail2ban", empty); code != exitUsage || !strings.Contains(stderr, "no jail.conf nor jail.local") {
		t.Errorf("import fail2ban on an empty directory: exit %d, want %d\n%s", code, exitUsage, stderr)
	}
}

// TestImportNginxFail2banDir gives import nginx fail2ban's whole
// directory: the HTTP jail (nginx-http-auth) becomes the inline auth
// jail as before, and the jails that read other logs (sshd, demo,
// recidive …) become watch entries through the same mapping as import
// fail2ban; gatehouse check accepts the result.
func TestImportNginxFail2banDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f2b := filepath.Join(dir, "fail2ban")
	if err := os.CopyFS(f2b, os.DirFS(filepath.Join("..", "..", "proxy", "config", "fail2ban", "testdata", "importdir"))); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{
		"fail2ban/filter.d/nginx-http-auth.conf": "[Definition]\nfailregex = ^ \\[error\\] \\d+#\\d+: \\*\\d+ user \"\\S+\":? password mismatch, client: <HOST>\n",
		"fail2ban/jail.local":                    "[nginx-http-auth]\nenabled = true\nport = http,https\nlogpath = /var/log/nginx/error.log\nmaxretry = 4\n",
		"nginx.conf": "events {}\nhttp {\n  server {\n    listen 8080;\n    server_name app.example.com;\n" +
			"    location / {\n      proxy_pass http://127.0.0.1:9000;\n    }\n  }\n}\n",
	})
	out := filepath.Join(dir, "gatehouse.yaml")
	_, stderr, code := runGatehouse(t, "import", "nginx", filepath.Join(dir, "nginx.conf"), "--fail2ban", f2b, "-o", out)
	if code != exitPartial {
		t.Fatalf("import nginx --fail2ban DIR: exit %d, want %d\n%s", code, exitPartial, stderr)
	}
	if want := filepath.Join(f2b, "filter.d", "lookbehind.conf") + ":2: fail2ban: jail lookbehind: not carried"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"auth:\n    maxretry: 4", "- name: sshd\n    filter: sshd\n", "- name: recidive\n", "sshd:\n    maxretry: 5\n    findtime: 10m\n    bantime: 10m"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("imported config lacks %q:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), "name: nginx-http-auth") {
		t.Errorf("nginx-http-auth became a watch entry; import nginx counts failed logins inline:\n%s", data)
	}
	if stdout, stderr, code := runGatehouse(t, "check", "-c", out); code != 0 {
		t.Fatalf("gatehouse check on the import: exit %d\n%s%s\n%s", code, stdout, stderr, data)
	}
}
