package config

import (
	"path/filepath"
	"testing"
)

// TestHostLogInherits: a host's log takes the global log's format and
// file for the keys it leaves out; a host without log has none.
func TestHostLogInherits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	global, own := filepath.Join(dir, "access.log"), filepath.Join(dir, "shop.log")
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
  access_file: `+global+`
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []*HostLog{{Access: "combined", AccessFile: own}, {Access: "combined_host", AccessFile: global}, nil}
	for i, w := range want {
		got := f.Hosts[i].Log
		if (got == nil) != (w == nil) || got != nil && *got != *w {
			t.Errorf("hosts[%d].log = %+v, want %+v", i, got, w)
		}
	}
}
