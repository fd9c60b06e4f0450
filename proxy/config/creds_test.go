package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBasicAuthSlowHashes pins the slow-hash caps at check time: an htpasswd file
// with a bcrypt cost above 17 is a config error naming the config line,
// the field, the htpasswd file and its line — unless the host sets
// basic_auth.allow_slow_hashes, and only for that host.
func TestBasicAuthSlowHashes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	const slow = "# staff\nslow:$2y$18$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW\n"
	if err := os.WriteFile(users, []byte(slow), 0o600); err != nil {
		t.Fatal(err)
	}
	host := func(name, extra string) string {
		return "  - match: [" + name + "]\n    upstreams: [http://127.0.0.1:3000]\n    basic_auth:\n      htpasswd: " + users + "\n" + extra
	}
	for _, tc := range []struct {
		name    string
		in      string
		wantErr string // "" : valid
	}{
		{name: "refused by default", in: "hosts:\n" + host("a.example.com", ""),
			wantErr: "t.yaml:5: hosts[0].basic_auth.htpasswd: " + users + ":2: user \"slow\": bcrypt cost 18 is above 17"},
		{name: "allowed", in: "hosts:\n" + host("a.example.com", "      allow_slow_hashes: true\n")},
		{name: "allowed for one host of two sharing the file", in: "hosts:\n" + host("a.example.com", "      allow_slow_hashes: true\n") + host("b.example.com", ""),
			wantErr: "t.yaml:10: hosts[1].basic_auth.htpasswd: " + users + ":2: "},
		{name: "strict key", in: "hosts:\n" + host("a.example.com", "      allow_slow_hash: true\n"),
			wantErr: `t.yaml:6: hosts[0].basic_auth.allow_slow_hash: unknown key (did you mean "allow_slow_hashes"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse("t.yaml", []byte(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse = %v, want valid", err)
				}
				if !f.Hosts[0].BasicAuth.AllowSlowHashes {
					t.Error("allow_slow_hashes: true did not decode")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse = %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.name == "allowed for one host of two sharing the file" && strings.Contains(err.Error(), "hosts[0]") {
				t.Errorf("Parse = %v: hosts[0] allows slow hashes and must not be reported", err)
			}
		})
	}
}
