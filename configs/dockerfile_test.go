package configs

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gatehouse/proxy/config"
)

// There is no Docker engine in CI, so the Dockerfile is checked as text:
// the health check runs the binary the image installs (exec form: the
// distroless image has no shell), the config the image runs is valid and
// is the one the health check reads, EXPOSE lists exactly the ports that
// config listens on from outside the container, and .dockerignore keeps
// the history and built binaries out of the build context without
// dropping what the build needs.

// dockerInstruction is one instruction of a Dockerfile: its keyword and
// its arguments, continuation lines joined.
type dockerInstruction struct {
	cmd  string
	args string
}

// readDockerfile returns the instructions of the final stage.
func readDockerfile(t *testing.T, path string) []dockerInstruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstruction
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		cur += line
		cmd, args, _ := strings.Cut(cur, " ")
		cur = ""
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			out = nil // only the final stage is the image
		}
		out = append(out, dockerInstruction{cmd: cmd, args: strings.TrimSpace(args)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// execForm parses an exec-form argument list (a JSON array of strings).
func execForm(t *testing.T, what, s string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(s), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("%s %s is not exec form (a JSON array): the distroless image has no shell", what, s)
	}
	return argv
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	var (
		binary, cfgPath, envCfg string
		expose                  []string
		health, entry, cmd      []string
		copied                  = map[string]string{} // destination → source
	)
	for _, in := range readDockerfile(t, "../Dockerfile") {
		switch in.cmd {
		case "COPY":
			f := strings.Fields(in.args)
			src := f[len(f)-2]
			copied[f[len(f)-1]] = src
			if src == "configs/docker.yaml" {
				cfgPath = f[len(f)-1]
			}
			if slices.Contains(f, "--from=build") {
				binary = f[len(f)-1]
			}
		case "ENV":
			if v, ok := strings.CutPrefix(in.args, "GATEHOUSE_CONFIG="); ok {
				envCfg = v
			}
		case "EXPOSE":
			expose = append(expose, strings.Fields(in.args)...)
		case "HEALTHCHECK":
			_, after, ok := strings.Cut(in.args, "CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK %s has no CMD", in.args)
			}
			health = execForm(t, "HEALTHCHECK CMD", strings.TrimSpace(after))
		case "ENTRYPOINT":
			entry = execForm(t, "ENTRYPOINT", in.args)
		case "CMD":
			cmd = execForm(t, "CMD", in.args)
		}
	}
	if binary != installedBinary {
		t.Errorf("the image installs gatehouse at %q, want %s", binary, installedBinary)
	}
	if !slices.Equal(health, []string{installedBinary, "healthcheck"}) {
		t.Errorf("HEALTHCHECK CMD = %q, want [%s healthcheck]", health, installedBinary)
	}
	if !slices.Equal(entry, []string{installedBinary}) || len(cmd) == 0 || cmd[0] != "serve" {
		t.Errorf("ENTRYPOINT %q CMD %q, want gatehouse serve", entry, cmd)
	}
	// serve and healthcheck both find the config through
	// $GATEHOUSE_CONFIG: it must be the file the image ships.
	if cfgPath == "" || envCfg != cfgPath || slices.Contains(cmd, "-c") {
		t.Fatalf("config: shipped at %q, GATEHOUSE_CONFIG=%q, CMD %q; want the shipped file in GATEHOUSE_CONFIG and no -c", cfgPath, envCfg, cmd)
	}

	cfg, err := config.Load("../" + copied[cfgPath])
	if err != nil {
		t.Fatalf("the image's config: %v", err)
	}
	var want []string
	for _, addr := range []string{cfg.Listen.HTTP, cfg.Listen.HTTPS, cfg.Admin.Listen} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			continue // "" or "off"
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			continue // not reachable from outside the container
		}
		want = append(want, port)
	}
	slices.Sort(want)
	slices.Sort(expose)
	if !slices.Equal(expose, want) {
		t.Errorf("EXPOSE %v, want the ports %s listens on from outside the container: %v", expose, copied[cfgPath], want)
	}
	adminHost, _, _ := net.SplitHostPort(cfg.Admin.Listen)
	if ip := net.ParseIP(adminHost); ip == nil || !ip.IsLoopback() {
		t.Errorf("the image's admin.listen %q is not on loopback", cfg.Admin.Listen)
	}
}

// dockerignored reports whether a .dockerignore pattern excludes path:
// the pattern matches the path or one of its parent directories, and a
// leading "**/" matches at any depth.
func dockerignored(pattern, path string) bool {
	parts := strings.Split(path, "/")
	for i := 1; i <= len(parts); i++ {
		prefix := strings.Join(parts[:i], "/")
		if ok, _ := filepath.Match(pattern, prefix); ok {
			return true
		}
		if rest, deep := strings.CutPrefix(pattern, "**/"); deep {
			for j := 0; j < i; j++ {
				if ok, _ := filepath.Match(rest, strings.Join(parts[j:i], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}

func TestDockerignore(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Errorf(".dockerignore re-includes %q; this test does not model exceptions", line)
		}
		patterns = append(patterns, line)
	}
	ignored := func(path string) bool {
		return slices.ContainsFunc(patterns, func(p string) bool { return dockerignored(p, path) })
	}
	for _, p := range []string{".git/HEAD", "bin/gatehouse", "proxy/config/testdata/errors.yaml", "cmd/gatehouse/e2e_test.go", "docs/performance.md"} {
		if !ignored(p) {
			t.Errorf("%s reaches the build context; .dockerignore should exclude it", p)
		}
	}
	// What the build uses: the module files, every non-test Go source,
	// the embedded files, and the image's config.
	need := []string{"go.mod", "go.sum", "configs/docker.yaml", "configs/default.yaml"}
	err = filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, "../"))
		if d.IsDir() {
			if rel == ".git" || rel == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") && !strings.Contains(rel, "/testdata/") ||
			strings.HasPrefix(rel, "proxy/ui/templates/") || strings.HasPrefix(rel, "proxy/ui/static/") {
			need = append(need, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range need {
		if ignored(p) {
			t.Errorf(".dockerignore excludes %s, which the image's build needs", p)
		}
	}
}
