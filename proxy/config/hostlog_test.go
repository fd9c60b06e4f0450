package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostLogInherits: a host's log takes the global log's format and
// file for the keys it leaves out; a host without log has none.
func TestHostLogInherits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	own := filepath.Join(dir, "shop.log")
	f, err := Parse("t.yaml", []byte(`hosts:
  - match: [shop.example.com]
    upstreams: [http://127.0.0.1:3000]
    log: {access_file: `+own+`}
  - match: [blog.example.com]
    upstreams: [http://127.0.0.1:3001]
    log: {access: combined_host}
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:3002]
log:
  access: combined
  access_file: "-"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []*HostLog{{Access: "combined", AccessFile: own}, {Access: "combined_host", AccessFile: "-"}, nil}
	for i, w := range want {
		got := f.Hosts[i].Log
		if (got == nil) != (w == nil) || got != nil && *got != *w {
			t.Errorf("hosts[%d].log = %+v, want %+v", i, got, w)
		}
	}
}

// TestAccessLogFileConflicts: an access log never writes into a file the
// config makes gatehouse read, and one file takes one format.
func TestAccessLogFileConflicts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(dir, "access.log")
	_, err := Parse(cfgPath, []byte(`hosts:
  - match: [a.example.com]
    upstreams: [http://127.0.0.1:3000]
    log: {access_file: `+cfgPath+`}
  - match: [b.example.com]
    upstreams: [http://127.0.0.1:3001]
    basic_auth: {htpasswd: `+users+`}
    log: {access_file: `+dir+`/./users}
  - match: [c.example.com]
    upstreams: [http://127.0.0.1:3002]
    log: {access: combined_host}
  - match: [d.example.com]
    upstreams: [http://127.0.0.1:3003]
    log: {access: combined_host, access_file: `+filepath.Join(dir, "d.log")+`}
  - match: [e.example.com]
    upstreams: [http://127.0.0.1:3004]
    log: {access: "off"}
log:
  access: json
  access_file: `+shared+`
`))
	got := ""
	if err != nil {
		got = err.Error()
	}
	for _, want := range []string{
		"gatehouse.yaml:4: hosts[0].log.access_file: " + cfgPath + " is the config file",
		"gatehouse.yaml:8: hosts[1].log.access_file: " + dir + "/./users is the hosts[1].basic_auth.htpasswd",
		"gatehouse.yaml:11: hosts[2].log.access_file: " + shared + " is also log.access_file's file, written as json: one file takes one format (here combined_host)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Parse error lacks %q:\n%s", want, got)
		}
	}
	// One file through a link: two names, two buffers.
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(shared, link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shared, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Parse("l.yaml", []byte(`hosts:
  - match: [a.example.com]
    upstreams: [http://127.0.0.1:3000]
    log: {access_file: `+link+`}
  - match: [b.example.com]
    upstreams: [http://127.0.0.1:3001]
    log: {access_file: `+dir+`//access.log}
log: {access_file: `+shared+`}
`))
	if err == nil || !strings.Contains(err.Error(), "l.yaml:4: hosts[0].log.access_file: "+link+" is log.access_file's file ("+shared+") through a link") {
		t.Errorf("Parse with a link to log.access_file = %v, want it refused", err)
	}
	if err != nil && strings.Contains(err.Error(), "hosts[1]") {
		t.Errorf("Parse refused another spelling of the same path, which shares its sink: %v", err)
	}
	// d has its own file; e logs nothing, so shares nothing.
	for _, host := range []string{"hosts[3]", "hosts[4]"} {
		if strings.Contains(got, host) {
			t.Errorf("Parse refused %s, which conflicts with nothing:\n%s", host, got)
		}
	}
}
