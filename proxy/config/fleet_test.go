package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFleetConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := minimal + "state_dir: " + dir + "\njails:\n  probes: {maxretry: 3}\n  flood: {rate: 50}\n"
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "minimal", in: base + "fleet: {redis: \"redis://127.0.0.1:6379/0\", node: a}\n"},
		{name: "full", in: base + "fleet:\n  redis: rediss://gatehouse@redis.example.com:6380/2\n  password: env:HOME\n  prefix: web\n  node: a\n  share_jails: [probes]\n  certificates: true\n"},
		{name: "password in URL", in: base + "fleet: {redis: \"redis://u:hunter2@127.0.0.1:6379\", node: a}\n",
			wantErr: "t.yaml:8: fleet.redis: a password inside the URL is refused"},
		{name: "no redis", in: base + "fleet: {node: a}\n", wantErr: "t.yaml:8: fleet.redis: required"},
		{name: "bad scheme", in: base + "fleet: {redis: \"http://127.0.0.1:6379\", node: a}\n", wantErr: `fleet.redis: scheme "http" is not redis or rediss`},
		{name: "no port", in: base + "fleet: {redis: \"redis://127.0.0.1\", node: a}\n", wantErr: `fleet.redis: "127.0.0.1" is not host:port`},
		{name: "bad db", in: base + "fleet: {redis: \"redis://127.0.0.1:6379/x\", node: a}\n", wantErr: `fleet.redis: database "x" is not a number`},
		{name: "query", in: base + "fleet: {redis: \"redis://127.0.0.1:6379/0?password=x\", node: a}\n", wantErr: "fleet.redis: query and fragment are not supported"},
		{name: "ca_root without TLS", in: base + "fleet: {redis: \"redis://127.0.0.1:6379\", node: a, ca_root: " + notPEM + "}\n", wantErr: "fleet.ca_root: " + notPEM + " holds no PEM certificate"},
		{name: "missing ca_root", in: base + "fleet: {redis: \"rediss://127.0.0.1:6379\", node: a, ca_root: /nonexistent/ca.pem}\n", wantErr: "fleet.ca_root: open /nonexistent/ca.pem"},
		{name: "unknown jail", in: base + "fleet: {redis: \"redis://127.0.0.1:6379\", node: a, share_jails: [probes, auth]}\n", wantErr: `fleet.share_jails[1]: "auth" is not a configured jail`},
		{name: "rate jail", in: base + "fleet: {redis: \"redis://127.0.0.1:6379\", node: a, share_jails: [flood]}\n", wantErr: `fleet.share_jails[0]: "flood" is a rate jail`},
		{name: "twice", in: base + "fleet: {redis: \"redis://127.0.0.1:6379\", node: a, share_jails: [probes, probes]}\n", wantErr: `fleet.share_jails[1]: "probes" is listed twice`},
		{name: "bad node", in: base + "fleet: {redis: \"redis://127.0.0.1:6379\", node: \"a|b\"}\n", wantErr: `fleet.node: node name "a|b" holds '|'`},
		{name: "brace prefix", in: base + "fleet: {redis: \"redis://127.0.0.1:6379\", node: a, prefix: \"g{h\"}\n", wantErr: `fleet.prefix: "g{h" holds a brace`},
		{name: "no state_dir", in: minimal + "fleet: {redis: \"redis://127.0.0.1:6379\", node: a}\n", wantErr: "t.yaml:4: fleet: fleet mode needs state_dir"},
		{name: "unknown key", in: base + "fleet: {redis: \"redis://127.0.0.1:6379\", nodes: a}\n", wantErr: `fleet.nodes: unknown key (did you mean "node"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("t.yaml", []byte(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse = %v, want no error", err)
				}
				if f.Fleet.Prefix == "" || f.Fleet.Node != "a" {
					t.Errorf("fleet = %+v, want defaults applied and node a", f.Fleet)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse = %v, want an error containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestFleetDefaults(t *testing.T) {
	t.Parallel()
	f, err := Parse("t.yaml", []byte(minimal+"state_dir: "+t.TempDir()+"\nfleet: {redis: \"redis://127.0.0.1:6379\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if f.Fleet.Prefix != "gh" || f.Fleet.Node != host || f.Fleet.Certificates || len(f.Fleet.ShareJails) != 0 {
		t.Errorf("fleet = %+v, want prefix gh, node %q, nothing shared", f.Fleet, host)
	}
}
