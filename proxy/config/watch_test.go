package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(log, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Parse("w.yaml", []byte(`
watch:
  - {name: sshd, filter: sshd, mode: aggressive, files: [`+log+`]}
  - name: app
    filter:
      failregex: ['^login failed from <HOST>$']
      ignoreregex: ['from <HOST> internal']
    files: [`+dir+`/*.log]
    jail: sshd
    timezone: Europe/Berlin
jails:
  sshd: {maxretry: 3}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 0 {
		t.Errorf("warnings: %v", f.Warnings)
	}
	if f.Listen.HTTP != "" || len(f.Hosts) != 0 {
		t.Errorf("a watch-only config listens on %q", f.Listen.HTTP)
	}
	w := f.Watch[0]
	if w.Filter.Builtin != "sshd" || w.Mode != "aggressive" || WatchJail(w) != "sshd" {
		t.Errorf("watch[0] = %+v", w)
	}
	fc, err := WatchFilterConfig(f.Watch[1])
	if err != nil || len(fc.FailRegex) != 1 || fc.Location.String() != "Europe/Berlin" {
		t.Errorf("watch[1] filter = %+v, %v", fc, err)
	}
	if got := f.Summary(); !strings.Contains(got, "2 watch sources") {
		t.Errorf("summary %q does not count the watch sources", got)
	}
}

func TestParseWatchErrors(t *testing.T) {
	t.Parallel()
	jails := "jails:\n  sshd: {maxretry: 3}\n  flood: {rate: 10}\n"
	tests := []struct{ name, yaml, want string }{
		{"nothing to do", "jails: {}\n", "w.yaml:1: hosts: at least one host is required (or a watch section"},
		{"no filter", "watch:\n  - {name: sshd, files: [/var/log/auth.log]}\n" + jails, "w.yaml:2: watch[0].filter: a filter is required"},
		{"unknown filter", "watch:\n  - {name: sshd, filter: sshdd, files: [/var/log/auth.log]}\n" + jails, `watch[0].filter: filter "sshdd" is not built in (built in:`},
		{"unknown mode", "watch:\n  - {name: sshd, filter: sshd, mode: loud, files: [/var/log/auth.log]}\n" + jails, `watch[0].mode: filter sshd: mode "loud" is not one of normal, ddos, extra, aggressive`},
		{"mode of a block", "watch:\n  - {name: sshd, filter: {failregex: ['<HOST>']}, mode: ddos, files: [/x]}\n" + jails, "watch[0].mode: mode is for a built-in filter"},
		{"look-ahead", "watch:\n  - name: sshd\n    files: [/x]\n    filter:\n      failregex:\n        - 'ok <HOST>'\n        - '(?<=from )<HOST> port'\n" + jails,
			"w.yaml:7: watch[0].filter.failregex[1]: "},
		{"no host tag", "watch:\n  - {name: sshd, filter: {failregex: ['failed']}, files: [/x]}\n" + jails, "watch[0].filter.failregex[0]: no <HOST>"},
		{"files and journal", "watch:\n  - {name: sshd, filter: sshd, files: [/x], journal: {}}\n" + jails, "watch[0].journal: give files or journal, not both"},
		{"neither", "watch:\n  - {name: sshd, filter: sshd}\n" + jails, "watch[0]: say where the lines are"},
		{"relative path", "watch:\n  - {name: sshd, filter: sshd, files: [auth.log]}\n" + jails, `watch[0].files[0]: "auth.log": write an absolute path`},
		{"bad glob", "watch:\n  - {name: sshd, filter: sshd, files: ['/var/log/[a']}\n" + jails, "watch[0].files[0]: \"/var/log/[a\" is not a valid glob"},
		{"undefined jail", "watch:\n  - {name: ssh, filter: sshd, files: [/x]}\n" + jails, `w.yaml:2: watch[0].name: jail "ssh" is not defined under jails`},
		{"flood jail", "watch:\n  - {name: sshd, filter: sshd, files: [/x], jail: flood}\n" + jails, `watch[0].jail: jail "flood" is a flood jail`},
		{"same name", "watch:\n  - {name: sshd, filter: sshd, files: [/x]}\n  - {name: sshd, filter: sshd, files: [/y]}\n" + jails, `watch[1].name: "sshd" is already the name of watch[0].name (line 2)`},
		{"bad name", "watch:\n  - {name: 'ssh d', filter: sshd, files: [/x], jail: sshd}\n" + jails, `watch[0].name: "ssh d": use letters`},
		{"bad zone", "watch:\n  - {name: sshd, filter: sshd, files: [/x], timezone: Mars/Olympus}\n" + jails, `watch[0].timezone: "Mars/Olympus" is not a time zone`},
		{"journal without filter", "watch:\n  - {name: x, journal: {}}\njails:\n  x: {}\n", "watch[0].filter: a filter is required"},
		{"custom filter, journal without units", "watch:\n  - {name: x, filter: {failregex: ['<HOST>']}, journal: {}}\njails:\n  x: {}\n", "watch[0].journal: name the units to read"},
		{"bad admin listen", "admin: {listen: not-an-address}\nwatch:\n  - {name: sshd, filter: sshd, files: [/x]}\n" + jails, `admin.listen: "not-an-address" is not host:port`},
		{"tls without hosts", "tls: {acme: {email: a@example.com}}\nwatch:\n  - {name: sshd, filter: sshd, files: [/x]}\n" + jails, "tls: a config without hosts serves no requests"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("w.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestParseWatchWarnings: a source that cannot be read now is a warning,
// never an error: the file may appear later.
func TestParseWatchWarnings(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope", "auth.log")
	f, err := Parse("w.yaml", []byte("listen: {http: ':8080'}\nwatch:\n  - {name: sshd, filter: sshd, files: ["+missing+"]}\njails:\n  sshd: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := f.Warnings.Error()
	for _, want := range []string{"w.yaml:3: watch[0].files: warning: watch sshd: " + missing + ": no file to read", "w.yaml:1: listen.http: warning: a config without hosts serves no requests"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings %q\nwant %q", got, want)
		}
	}
}
