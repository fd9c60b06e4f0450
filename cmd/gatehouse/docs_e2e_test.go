//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The documentation's examples are run, so that they cannot rot: every
// fenced block of README.md, SECURITY.md and docs/*.md is either run,
// checked or explicitly marked as not runnable here, and an unmarked
// command block fails the test. docs/README.md explains the markers to
// writers; in short:
//
//	```sh test                  run with bash -e; must exit 0
//	```console test             run each "$ " command, compare its output
//	```… test serve=FILE        start `gatehouse serve -c FILE` first
//	```sh skip=REASON           not run, for one of skipReasons
//	```yaml                     a complete config: gatehouse check must pass
//	```yaml file=NAME           saved for the blocks after it
//	```yaml fragment            part of a config: must parse as YAML
//	```text, nginx, js, go      shown only
//
// Each page runs in its own scratch directory, which the paths the docs
// use for a real installation (/etc/gatehouse, /var/lib/gatehouse,
// /var/log/gatehouse) are moved into; the blocks of a page share it and the
// variables they export, like one terminal session.

// docFiles are the pages whose examples are run, relative to the
// repository root.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md", "SECURITY.md"}
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil || len(pages) < 5 {
		t.Fatalf("docs/*.md = %v, %v", pages, err)
	}
	for _, p := range pages {
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, rel)
	}
	return files
}

// repoRoot is the repository root, from the package directory.
const repoRoot = "../.."

// skipReasons are the reasons a command block may give for not running.
var skipReasons = map[string]string{
	"system":   "installs into or reads from the machine's /etc, /usr or /var",
	"docker":   "needs Docker",
	"terminal": "asks for a password on the terminal",
	"demo":     "runs make in the foreground on the demo's fixed ports",
	"pending":  "a command this build does not have yet",
	"bench":    "runs the benchmarks: minutes each, root, and the compared servers installed",
}

// installPaths are the paths of a real installation that the docs use;
// the test moves them into each page's scratch directory.
var installPaths = []string{"/etc/gatehouse", "/var/lib/gatehouse", "/var/log/gatehouse"}

// docBlock is one fenced block of a page.
type docBlock struct {
	line  int    // of the opening fence
	lang  string // "sh", "console", "yaml" …
	attrs map[string]string
	text  string
}

// parseBlocks returns the fenced blocks of a Markdown file.
func parseBlocks(path string) ([]docBlock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var blocks []docBlock
	var cur *docBlock
	var body strings.Builder
	var indent string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if cur == nil {
			if info, ok := strings.CutPrefix(trimmed, "```"); ok {
				fields := strings.Fields(info)
				cur = &docBlock{line: n, attrs: map[string]string{}}
				indent = line[:len(line)-len(trimmed)]
				if len(fields) > 0 {
					cur.lang = fields[0]
				}
				for _, f := range fields[min(1, len(fields)):] {
					k, v, _ := strings.Cut(f, "=")
					cur.attrs[k] = v
				}
				body.Reset()
			}
			continue
		}
		if trimmed == "```" {
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		body.WriteString(strings.TrimPrefix(line, indent))
		body.WriteByte('\n')
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: fence not closed", path, cur.line)
	}
	return blocks, sc.Err()
}

// TestDocs runs the examples of every page.
func TestDocs(t *testing.T) {
	t.Parallel()
	for _, file := range docFiles(t) {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			blocks, err := parseBlocks(filepath.Join(repoRoot, file))
			if err != nil {
				t.Fatal(err)
			}
			newDocSession(t, file).run(blocks)
		})
	}
}

// docSession is the scratch directory and shell state of one page.
type docSession struct {
	t       *testing.T
	file    string
	dir     string
	envFile string
	mapPath *strings.Replacer
	// saved names the files written by yaml file=NAME blocks, and whether
	// a later test block used them.
	saved map[string]bool
}

func newDocSession(t *testing.T, file string) *docSession {
	dir := t.TempDir()
	var pairs []string
	for _, p := range installPaths {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, p, filepath.Join(dir, p))
	}
	return &docSession{
		t:       t,
		file:    file,
		dir:     dir,
		envFile: filepath.Join(dir, ".doc-env"),
		mapPath: strings.NewReplacer(pairs...),
		saved:   map[string]bool{},
	}
}

func (s *docSession) run(blocks []docBlock) {
	t := s.t
	for _, b := range blocks {
		where := fmt.Sprintf("%s:%d", s.file, b.line)
		if _, test := b.attrs["test"]; test {
			for name := range s.saved {
				if strings.Contains(b.text, name) || b.attrs["serve"] == name {
					s.saved[name] = true
				}
			}
		}
		switch b.lang {
		case "sh", "console":
			_, test := b.attrs["test"]
			reason, skip := b.attrs["skip"]
			switch {
			case test && skip, !test && !skip:
				t.Errorf("%s: a %s block needs either \"test\" or \"skip=REASON\" (one of %v)", where, b.lang, slices.Sorted(maps.Keys(skipReasons)))
			case skip:
				if _, ok := skipReasons[reason]; !ok {
					t.Errorf("%s: skip=%q is not one of %v", where, reason, slices.Sorted(maps.Keys(skipReasons)))
				}
			default:
				s.runCommands(where, b)
			}
		case "yaml":
			s.yamlBlock(where, b)
		case "text", "nginx", "js", "go":
		default:
			t.Errorf("%s: fenced block without a known language (%q): mark it sh, console, yaml or text", where, b.lang)
		}
	}
	for name, used := range s.saved {
		if !used {
			t.Errorf("%s: yaml file=%s is never used by a later test block, so nothing checks it", s.file, name)
		}
	}
}

// yamlBlock checks a config block.
func (s *docSession) yamlBlock(where string, b docBlock) {
	t := s.t
	if _, ok := b.attrs["fragment"]; ok {
		var v any
		if err := yaml.Unmarshal([]byte(b.text), &v); err != nil {
			t.Errorf("%s: yaml fragment does not parse: %v", where, err)
		}
		return
	}
	if name := b.attrs["file"]; name != "" {
		path := s.path(name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s.mapPath.Replace(b.text)), 0o600); err != nil {
			t.Fatal(err)
		}
		s.saved[name] = false
		return
	}
	if len(b.attrs) > 0 {
		t.Errorf("%s: unknown yaml attributes %v (fragment or file=NAME)", where, b.attrs)
		return
	}
	path := filepath.Join(s.dir, ".doc-check.yaml")
	if err := os.WriteFile(path, []byte(s.mapPath.Replace(b.text)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := s.shell(where, "gatehouse check -c .doc-check.yaml", nil); code != 0 {
		t.Errorf("%s: a complete config (mark parts of one \"yaml fragment\"): gatehouse check = %d:\n%s", where, code, out)
	}
}

// path is name in the scratch directory (an installation path moved
// into it, or a relative name under it).
func (s *docSession) path(name string) string {
	if filepath.IsAbs(name) {
		return s.mapPath.Replace(name)
	}
	return filepath.Join(s.dir, name)
}

// runCommands runs a sh or console test block, with a gateway first if
// it names one.
func (s *docSession) runCommands(where string, b docBlock) {
	t := s.t
	text := s.mapPath.Replace(b.text)
	var extraEnv []string
	if cfg := b.attrs["serve"]; cfg != "" {
		var ok bool
		text, extraEnv, ok = s.serve(where, cfg, text)
		if !ok {
			return
		}
	}
	if b.lang == "sh" {
		if out, code := s.shell(where, "set -e -o pipefail\n"+text, extraEnv); code != 0 {
			t.Errorf("%s: sh block exited %d:\n%s", where, code, out)
		}
		return
	}
	cmds, err := parseConsole(text)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	var script strings.Builder
	for i, c := range cmds {
		fmt.Fprintf(&script, "%s\nprintf '\\n@@doc-cmd %d %%d@@\\n' $?\n", c.cmd, i)
	}
	out, code := s.shell(where, script.String(), extraEnv)
	if code != 0 {
		t.Errorf("%s: console block exited %d:\n%s", where, code, out)
		return
	}
	results := consoleMarker.FindAllStringSubmatchIndex(out, -1)
	if len(results) != len(cmds) {
		t.Errorf("%s: %d of %d commands ran; output:\n%s", where, len(results), len(cmds), out)
		return
	}
	start := 0
	for i, m := range results {
		got := out[start:m[0]]
		start = m[1]
		rc, _ := strconv.Atoi(out[m[2]:m[3]])
		c := cmds[i]
		if rc != c.exit {
			t.Errorf("%s: $ %s\nexit status %d, want %d; output:\n%s", where, c.cmd, rc, c.exit, got)
			continue
		}
		if !outputMatches(c.want, got) {
			t.Errorf("%s: $ %s\noutput:\n%s\nwant (… is any text):\n%s", where, c.cmd, got, strings.Join(c.want, "\n"))
		}
	}
}

var consoleMarker = regexp.MustCompile(`\n?@@doc-cmd \d+ (\d+)@@\n`)

// consoleCmd is one "$ " command of a console block and its output.
type consoleCmd struct {
	cmd  string
	exit int
	want []string
}

var exitComment = regexp.MustCompile(`#\s*exit (\d+)\s*$`)

// parseConsole splits a console block into commands (a trailing "\"
// continues one on the next line) and the output lines after each.
func parseConsole(text string) ([]consoleCmd, error) {
	var cmds []consoleCmd
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		cmd, ok := strings.CutPrefix(line, "$ ")
		if !ok {
			if len(cmds) == 0 {
				return nil, fmt.Errorf("console block starts with %q, not a \"$ \" command", line)
			}
			cmds[len(cmds)-1].want = append(cmds[len(cmds)-1].want, line)
			continue
		}
		for strings.HasSuffix(cmd, "\\") && i+1 < len(lines) {
			i++
			cmd += "\n" + lines[i]
		}
		c := consoleCmd{cmd: cmd}
		if m := exitComment.FindStringSubmatch(cmd); m != nil {
			c.exit, _ = strconv.Atoi(m[1])
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// outputMatches compares output with the wanted lines, where "…" stands
// for any text within a line; trailing spaces and trailing empty lines
// do not count.
func outputMatches(want []string, got string) bool {
	gotLines := strings.Split(strings.TrimRight(got, "\n "), "\n")
	if strings.TrimSpace(got) == "" {
		gotLines = nil
	}
	for len(want) > 0 && strings.TrimSpace(want[len(want)-1]) == "" {
		want = want[:len(want)-1]
	}
	if len(gotLines) != len(want) {
		return false
	}
	for i, w := range want {
		parts := strings.Split(strings.TrimRight(w, " "), "…")
		for j, p := range parts {
			parts[j] = regexp.QuoteMeta(p)
		}
		re := regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
		if !re.MatchString(strings.TrimRight(gotLines[i], " ")) {
			return false
		}
	}
	return true
}

// shell runs script with bash (without -e, which sh blocks add and
// console blocks must not have: their commands may fail on purpose) in
// the scratch directory, the built
// gatehouse first on PATH and the variables earlier blocks exported, and
// returns its output (standard output and error, interleaved) and exit
// status.
func (s *docSession) shell(where, script string, extraEnv []string) (string, int) {
	t := s.t
	t.Helper()
	full := fmt.Sprintf("[ ! -f %[1]q ] || . %[1]q\n%[2]s\nexport -p > %[1]q\n", s.envFile, script)
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", full)
	cmd.Dir = s.dir
	env := slices.DeleteFunc(gatehouseEnv(), func(kv string) bool {
		return strings.HasPrefix(kv, "GATEHOUSE_ADMIN=") || strings.HasPrefix(kv, "GATEHOUSE_TOKEN=") || strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "HOME=")
	})
	cmd.Env = append(env, "PATH="+filepath.Dir(gatehouseBin)+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+s.dir)
	cmd.Env = append(cmd.Env, extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return out.String(), ee.ExitCode()
	default:
		t.Fatalf("%s: bash: %v\n%s", where, err, out.String())
		return "", -1
	}
}

// serve starts `gatehouse serve` with the config saved as cfgName, on
// free loopback ports, and returns text with the config's listen.http and
// admin.listen addresses replaced by the bound ones.
func (s *docSession) serve(where, cfgName, text string) (string, []string, bool) {
	t := s.t
	path := s.path(cfgName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: serve=%s: %v (save it with a yaml file=%[2]s block first)", where, cfgName, err)
		return "", nil, false
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		t.Errorf("%s: serve=%s: %v", where, cfgName, err)
		return "", nil, false
	}
	httpAddr := setScalar(doc.Content[0], "listen", "http", "127.0.0.1:0")
	adminAddr := setScalar(doc.Content[0], "admin", "listen", "127.0.0.1:0")
	if httpAddr == "" || adminAddr == "" {
		t.Errorf("%s: serve=%s: the config must set listen.http and admin.listen, which the test replaces with free ports", where, cfgName)
		return "", nil, false
	}
	served, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	servedPath := filepath.Join(s.dir, ".doc-served-"+filepath.Base(cfgName))
	if err := os.WriteFile(servedPath, served, 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayIn(t, s.dir, servedPath)
	text = strings.NewReplacer(httpAddr, g.httpAddr, adminAddr, g.adminAddr).Replace(text)
	return text, nil, true
}

// setScalar sets the scalar at section.key of a mapping to value and
// returns what it was ("" when missing).
func setScalar(root *yaml.Node, section, key, value string) string {
	if root.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != section || root.Content[i+1].Kind != yaml.MappingNode {
			continue
		}
		m := root.Content[i+1]
		for j := 0; j+1 < len(m.Content); j += 2 {
			if m.Content[j].Value == key && m.Content[j+1].Kind == yaml.ScalarNode {
				old := m.Content[j+1].Value
				m.Content[j+1].Value = value
				return old
			}
		}
	}
	return ""
}

// TestDocsHarness pins the harness's own parsing, so that a broken
// harness cannot pass every page.
func TestDocsHarness(t *testing.T) {
	t.Parallel()
	cmds, err := parseConsole("$ a \\\n  b   # exit 3\nout 1\n\n$ c\n")
	if err != nil || len(cmds) != 2 || cmds[0].cmd != "a \\\n  b   # exit 3" || cmds[0].exit != 3 || len(cmds[0].want) != 2 || cmds[1].cmd != "c" {
		t.Errorf("parseConsole = %+v, %v", cmds, err)
	}
	if _, err := parseConsole("out\n$ a\n"); err == nil {
		t.Error("parseConsole accepted output before any command")
	}
	for _, tc := range []struct {
		want []string
		got  string
		ok   bool
	}{
		{[]string{"banned 1.2.3.4 until …"}, "banned 1.2.3.4 until 2030-01-01T00:00:00Z\n", true},
		{[]string{"a", ""}, "a  \n\n", true},
		{[]string{"a"}, "b\n", false},
		{[]string{"a"}, "a\nb\n", false},
		{[]string{"x…z"}, "x\n z\n", false},
		{nil, "", true},
		{nil, "late output\n", false},
	} {
		if got := outputMatches(tc.want, tc.got); got != tc.ok {
			t.Errorf("outputMatches(%q, %q) = %v, want %v", tc.want, tc.got, got, tc.ok)
		}
	}
}

// TestDocsLinks checks that every relative link of the pages names a file
// that exists and, with a #fragment, a heading of that file.
func TestDocsLinks(t *testing.T) {
	t.Parallel()
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	anchors := map[string]map[string]bool{}
	headingsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		a := map[string]bool{}
		if data, err := os.ReadFile(path); err == nil {
			inFence := false
			for line := range strings.Lines(string(data)) {
				if strings.HasPrefix(strings.TrimLeft(line, " "), "```") {
					inFence = !inFence
				}
				if !inFence && strings.HasPrefix(line, "#") {
					slug := headingSlug(strings.TrimLeft(strings.TrimSpace(line), "# "))
					for n := 1; a[slug]; n++ {
						slug = fmt.Sprintf("%s-%d", strings.TrimSuffix(slug, fmt.Sprintf("-%d", n-1)), n)
					}
					a[slug] = true
				}
			}
		}
		anchors[path] = a
		return a
	}
	for _, file := range docFiles(t) {
		src := filepath.Join(repoRoot, file)
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(data), "\n") {
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				path, frag, _ := strings.Cut(target, "#")
				full := src
				if path != "" {
					full = filepath.Join(filepath.Dir(src), path)
				}
				if _, err := os.Stat(full); errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s:%d: link to %s: no such file", file, n+1, target)
					continue
				}
				if frag != "" && strings.HasSuffix(full, ".md") && !headingsOf(full)[frag] {
					t.Errorf("%s:%d: link to %s: no heading with anchor #%s", file, n+1, target, frag)
				}
			}
		}
	}
}

// headingSlug is GitHub's anchor for a heading: lower case, spaces to
// "-", punctuation other than "-" and "_" removed.
func headingSlug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 0x7f:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDocsMetrics checks docs/operations.md's metric table against the
// code: every metric name the program registers is listed, and every
// listed one is registered.
func TestDocsMetrics(t *testing.T) {
	t.Parallel()
	name := regexp.MustCompile(`"(gatehouse_[a-z0-9_]+)"`)
	inCode := map[string]string{}
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range name.FindAllStringSubmatch(string(data), -1) {
			if !strings.HasSuffix(m[1], "_session") && !strings.HasSuffix(m[1], "_login") { // cookie names
				inCode[m[1]] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(inCode) < 10 {
		t.Fatalf("found %d metric names in the code; the walk is broken", len(inCode))
	}
	ops, err := os.ReadFile(filepath.Join(repoRoot, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(gatehouse_[a-z0-9_]+)` \\|")
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(ops), -1) {
		documented[m[1]] = true
	}
	for _, n := range slices.Sorted(maps.Keys(inCode)) {
		if !documented[n] {
			t.Errorf("%s (registered in %s) is not in docs/operations.md's metric table", n, inCode[n])
		}
	}
	for n := range documented {
		if _, ok := inCode[n]; !ok {
			t.Errorf("%s is in docs/operations.md's metric table but no code registers it", n)
		}
	}
}
