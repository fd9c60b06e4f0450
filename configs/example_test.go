package configs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/proxy/config"

	"golang.org/x/crypto/bcrypt"
)

// TestExampleConfig runs what `gatehouse check` runs on
// gatehouse.example.yaml, with the files it names made in a temporary
// directory, and pins that it stays the complete example: every section
// docs/configuration.md describes for a first deployment, and no
// trusted_proxies, which is unsafe when clients connect directly.
func TestExampleConfig(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("gatehouse.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{"etc", "state", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.NewReplacer(
		"/etc/gatehouse/", dir+"/etc/",
		"/var/lib/gatehouse", dir+"/state",
		"/var/log/gatehouse/", dir+"/log/",
	).Replace(string(data))
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"staging.htpasswd":    "alice:" + string(hash) + "\n",
		"monitoring.htpasswd": "ops:" + string(hash) + "\n",
		"ops.token":           "an-operator-token-of-some-length\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, "etc", name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse("gatehouse.example.yaml", []byte(text))
	if err != nil {
		t.Fatalf("gatehouse check on the example:\n%v", err)
	}

	if len(cfg.TrustedProxies) != 0 {
		t.Errorf("trusted_proxies = %v, want it commented out: unsafe when clients connect directly", cfg.TrustedProxies)
	}
	if !strings.Contains(string(data), "# trusted_proxies:") {
		t.Error("the example no longer shows trusted_proxies (commented, with its warning)")
	}
	var auth, hotlink int
	for _, h := range cfg.Hosts {
		if h.BasicAuth != nil {
			auth++
		}
		if h.Hotlink != nil {
			hotlink++
		}
	}
	for _, c := range []struct {
		what string
		ok   bool
	}{
		{"tls.acme", cfg.TLS != nil && cfg.TLS.ACME != nil},
		{"state_dir", cfg.StateDir != ""},
		{"three hosts or more", len(cfg.Hosts) >= 3},
		{"a host with basic_auth", auth > 0},
		{"a host with hotlink", hotlink > 0},
		{"probes", cfg.Probes != nil && len(cfg.Probes.Presets) > 0},
		{"the probes, auth and flood jails", cfg.Jails["probes"].MaxRetry > 0 && cfg.Jails["auth"].MaxRetry > 0 && cfg.Jails["flood"].Rate > 0},
		{"an admin token", len(cfg.Admin.Tokens) > 0},
		{"log.access_file", cfg.Log.AccessFile != ""},
	} {
		if !c.ok {
			t.Errorf("the example config lacks %s", c.what)
		}
	}
	for _, commented := range []string{"firewall:", "# signed_links:", "# notify:", "# certificates:"} {
		if !strings.Contains(string(data), commented) {
			t.Errorf("the example no longer shows %q", commented)
		}
	}
}
