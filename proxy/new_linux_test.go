package proxy

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// openFiles lists the files the process has open, from /proc/self/fd.
func openFiles(t *testing.T) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil {
			out = append(out, target)
		}
	}
	return out
}

// TestNewClosesOnFailure: a New that fails late, after the ban store and
// the access log file are open, closes them. Before, the bbolt lock on
// state_dir/bans.db stayed held (a second New on the same state_dir
// timed out) and the access log file stayed open.
func TestNewClosesOnFailure(t *testing.T) {
	// Not parallel: it counts the process's open files.
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	access := filepath.Join(dir, "access.log")
	users := filepath.Join(dir, "users")
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	writeUsers := func() {
		if err := os.WriteFile(users, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeUsers()
	cfg := mustConfig(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
admin: {listen: "off"}
state_dir: %s
hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
    basic_auth: {htpasswd: %s}
log: {access: combined, access_file: %s}
`, state, users, access))
	// The htpasswd file goes away between validation and start: New
	// fails building the chain, the last thing it does.
	if err := os.Remove(users); err != nil {
		t.Fatal(err)
	}
	if s, err := New(Options{Config: cfg}); err == nil {
		s.closeOpened()
		t.Fatal("New without the htpasswd file succeeded")
	}
	for _, f := range openFiles(t) {
		if f == access || f == filepath.Join(state, "bans.db") {
			t.Errorf("after a failed New, %s is still open", f)
		}
	}
	writeUsers()
	s, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatalf("New on the same state_dir after a failed New = %v, want it to open bans.db", err)
	}
	s.closeOpened()
}
