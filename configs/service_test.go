package configs

import (
	"bufio"
	"context"
	"gatehouse/rules/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The systemd unit is checked with systemd's own tools (Debian's systemd
// 252): `systemd-analyze verify` must accept it, and `systemd-analyze
// security --offline=yes` must rate it at most maxExposure — for the base
// unit and with the firewall drop-in — besides a plain reading of the
// settings the deployment depends on.

// maxExposure is the highest overall exposure level accepted for the base
// unit: 2.0 is the top of systemd's "OK" band. (Debian's own nginx and
// fail2ban units score 9.6, "UNSAFE".)
const maxExposure = 2.0

// installedBinary is the path the unit runs gatehouse from.
const installedBinary = "/usr/local/bin/gatehouse"

// unitSettings reads a unit file or drop-in: section → key → values in
// order. An empty assignment resets the key's list, as systemd does.
func unitSettings(t *testing.T, files ...string) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		section := ""
		for n, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			switch {
			case line == "" || line[0] == '#' || line[0] == ';':
				continue
			case line[0] == '[' && line[len(line)-1] == ']':
				section = line[1 : len(line)-1]
				if out[section] == nil {
					out[section] = map[string][]string{}
				}
				continue
			}
			key, val, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, "\\") {
				t.Fatalf("%s:%d: %q is not a key=value line of a section", file, n+1, line)
			}
			key, val = strings.TrimSpace(key), strings.TrimSpace(val)
			if val == "" {
				out[section][key] = nil
				continue
			}
			out[section][key] = append(out[section][key], val)
		}
	}
	return out
}

// unitVariant is the base unit alone or with drop-ins.
type unitVariant struct {
	name    string
	dropIns []string // files in configs/, installed as gatehouse.service.d/<name>
	caps    []string // capabilities granted, ambient and bounding
	// assertMax: the exposure must be at most maxExposure; otherwise
	// it is logged only.
	assertMax bool
	// groups are the supplementary groups granted ("": none).
	groups string
}

var unitVariants = []unitVariant{
	{name: "base", caps: []string{"CAP_NET_BIND_SERVICE"}, assertMax: true},
	{name: "firewall", dropIns: []string{"gatehouse-firewall.conf"}, caps: []string{"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"}},
	{name: "watch", dropIns: []string{"gatehouse-watch.conf"}, caps: []string{"CAP_NET_BIND_SERVICE"}, groups: "adm systemd-journal"},
}

// TestUnitSettings reads the unit as written: the least-privilege
// settings the deployment relies on, with the drop-in applied.
func TestUnitSettings(t *testing.T) {
	t.Parallel()
	for _, v := range unitVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			files := []string{"gatehouse.service"}
			files = append(files, v.dropIns...)
			svc := unitSettings(t, files...)["Service"]
			one := func(key, want string) {
				t.Helper()
				if got := svc[key]; !slices.Equal(got, []string{want}) {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
			one("User", "gatehouse")
			if got := svc["SupplementaryGroups"]; v.groups == "" && len(got) != 0 || v.groups != "" && !slices.Equal(got, []string{v.groups}) {
				t.Errorf("SupplementaryGroups = %q, want %q", got, v.groups)
			}
			one("NoNewPrivileges", "true")
			one("ProtectSystem", "strict")
			one("StateDirectory", "gatehouse")
			one("ProtectHome", "true")
			one("PrivateTmp", "true")
			one("PrivateDevices", "true")
			one("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX AF_NETLINK")
			one("ExecReload", "/bin/kill -HUP $MAINPID")
			one("ExecStartPre", installedBinary+" check -c /etc/gatehouse/gatehouse.yaml")
			one("ExecStart", installedBinary+" serve -c /etc/gatehouse/gatehouse.yaml")
			if got := svc["SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
				t.Errorf("SystemCallFilter = %q, want @system-service first", got)
			}
			for _, key := range []string{"AmbientCapabilities", "CapabilityBoundingSet"} {
				var got []string
				for _, val := range svc[key] {
					got = append(got, strings.Fields(val)...)
				}
				slices.Sort(got)
				if !slices.Equal(got, v.caps) {
					t.Errorf("%s = %q, want %q", key, got, v.caps)
				}
			}
		})
	}
}

// installUnit copies the unit, with drop-ins, into a fresh directory, its
// binary path replaced by bin (verify wants ExecStart's program to
// exist), and returns the unit's path.
func installUnit(t *testing.T, v unitVariant, bin string) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile("gatehouse.service")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(data), installedBinary) < 2 {
		t.Fatalf("gatehouse.service does not run %s in ExecStartPre and ExecStart", installedBinary)
	}
	unit := filepath.Join(dir, "gatehouse.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(data), installedBinary, bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range v.dropIns {
		data, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		dropDir := filepath.Join(dir, "gatehouse.service.d")
		if err := os.MkdirAll(dropDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dropDir, d), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return unit
}

// exposureLine is systemd-analyze security's verdict line, e.g.
// "→ Overall exposure level for gatehouse.service: 1.5 OK 🙂".
var exposureLine = regexp.MustCompile(`Overall exposure level for (\S+): ([0-9]+(?:\.[0-9]+)?) (\S+)`)

// parseExposure finds the overall exposure level and its rating in
// systemd-analyze security's output.
func parseExposure(out string) (level float64, rating string, ok bool) {
	m := exposureLine.FindStringSubmatch(out)
	if m == nil {
		return 0, "", false
	}
	level, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		return 0, "", false
	}
	return level, m[3], true
}

func TestParseExposure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		level  float64
		rating string
		ok     bool
	}{
		{"ok", "✗ IPAddressDeny= ...  0.2\n\n→ Overall exposure level for gatehouse.service: 1.5 OK 🙂\n", 1.5, "OK", true},
		{"unsafe", "→ Overall exposure level for nginx.service: 9.6 UNSAFE 😨", 9.6, "UNSAFE", true},
		{"whole number", "→ Overall exposure level for x.service: 2 OK 🙂", 2, "OK", true},
		{"no verdict", "Failed to load unit\n", 0, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			level, rating, ok := parseExposure(tc.in)
			if level != tc.level || rating != tc.rating || ok != tc.ok {
				t.Errorf("parseExposure(%q) = %v, %q, %v; want %v, %q, %v", tc.in, level, rating, ok, tc.level, tc.rating, tc.ok)
			}
		})
	}
}

// TestSystemdAnalyze runs systemd-analyze verify and security on the
// unit, with the real gatehouse binary at its ExecStart path.
func TestSystemdAnalyze(t *testing.T) {
	analyze := testenv.Tool(t, "systemd-analyze")
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "gatehouse")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "gatehouse/cmd/gatehouse")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build gatehouse: %v\n%s", err, out)
	}
	for _, v := range unitVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			unit := installUnit(t, v, bin)
			run := func(args ...string) (string, error) {
				t.Helper()
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, analyze, args...)
				cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=")
				out, err := cmd.CombinedOutput()
				return string(out), err
			}

			// verify: exit 0 and no complaint about our unit.
			out, err := run("verify", unit)
			if err != nil {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
			sc := bufio.NewScanner(strings.NewReader(out))
			for sc.Scan() {
				if strings.Contains(sc.Text(), "gatehouse") {
					t.Errorf("systemd-analyze verify: %s", sc.Text())
				}
			}

			// security: the drop-in must be read (NET_ADMIN shows), and
			// the exposure be low.
			out, err = run("security", "--offline=yes", unit)
			if err != nil {
				t.Fatalf("systemd-analyze security --offline=yes: %v\n%s", err, out)
			}
			netAdmin := regexp.MustCompile(`(?m)^✗ CapabilityBoundingSet=~CAP_NET_ADMIN\b`).MatchString(out)
			if want := slices.Contains(v.caps, "CAP_NET_ADMIN"); netAdmin != want {
				t.Errorf("systemd-analyze security: CAP_NET_ADMIN flagged %v, want %v\n%s", netAdmin, want, out)
			}
			level, rating, ok := parseExposure(out)
			if !ok {
				t.Fatalf("systemd-analyze security: no overall exposure line in\n%s", out)
			}
			t.Logf("systemd-analyze security --offline=yes, %s unit: overall exposure %.1f %s", v.name, level, rating)
			for line := range strings.Lines(out) {
				if strings.HasPrefix(line, "✗") {
					t.Logf("  %s", strings.Join(strings.Fields(line), " "))
				}
			}
			if v.assertMax && (level > maxExposure || rating != "OK") {
				t.Errorf("%s unit: overall exposure %.1f %s, want at most %.1f OK", v.name, level, rating, maxExposure)
			}
		})
	}
}
