package match

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// update rewrites the golden files under testdata/ (go test -run Golden
// ./rules/ -update). Other test files of package rules use it too.
var update = flag.Bool("update", false, "rewrite golden files in testdata")

// allPresets compiles every built-in preset.
func allPresets(tb testing.TB) *ProbeMatcher {
	tb.Helper()
	m, err := CompileProbes(ProbeConfig{Presets: everyPreset()})
	if err != nil {
		tb.Fatalf("CompileProbes(all presets) error %v", err)
	}
	return m
}

// matchRaw canonicalises raw as a middleware would and matches it.
func matchRaw(m *ProbeMatcher, raw string) (rule string, ok bool, err error) {
	c, err := Canonical(RequestPath(raw))
	if err != nil {
		return "", false, err
	}
	rule, ok = m.Match(c.Probe)
	return rule, ok, nil
}

func TestProbeMatchBypassClasses(t *testing.T) {
	t.Parallel()
	m := allPresets(t)
	tests := []struct {
		name     string
		raw      string
		wantRule string // "" means no match
		unsafe   bool   // Canonical refuses it (400)
	}{
		{name: "double slash", raw: "//phpmyadmin", wantRule: "phpmyadmin:**/phpmyadmin*"},
		{name: "case", raw: "/PhpMyAdmin", wantRule: "phpmyadmin:**/phpmyadmin*"},
		{name: "case and version", raw: "/phpMyAdmin-4.9.0/index.php", wantRule: "phpmyadmin:**/phpmyadmin*"},
		{name: "encoded letters", raw: "/%70hpmyadmin/", wantRule: "phpmyadmin:**/phpmyadmin*"},
		{name: "encoded dot-dot above root", raw: "/%2e%2e/", unsafe: true},
		{name: "encoded dot-dot inside", raw: "/static/%2e%2e/.git/config", wantRule: "vcs:**/.git"},
		{name: "params", raw: "/wp-admin;x/", wantRule: "wordpress:**/wp-admin"},
		{name: "dot segment", raw: "/./.env", wantRule: "secrets:**/.env*"},
		{name: "trailing dot", raw: "/.env.", wantRule: "secrets:**/.env*"},
		{name: "trailing encoded space", raw: "/wp-login.php%20", wantRule: "wordpress:**/wp-login.php"},
		{name: "trailing dots and spaces", raw: "/wp-login.php.%20.", wantRule: "wordpress:**/wp-login.php"},
		{name: "nested", raw: "/blog/wp-login.php", wantRule: "wordpress:**/wp-login.php"},
		{name: "PATH_INFO", raw: "/wp-login.php/x", wantRule: "wordpress:**/wp-login.php"},
		{name: "nested git", raw: "/blog/.git/HEAD", wantRule: "vcs:**/.git"},
		{name: "git dir itself", raw: "/.git", wantRule: "vcs:**/.git"},
		{name: "git config", raw: "/.git/config", wantRule: "vcs:**/.git"},
		{name: "tomcat dot-dot-semicolon", raw: "/static/..;/.git/config", wantRule: "vcs:**/.git"},
		{name: "encoded slash", raw: "/.git%2fconfig", unsafe: true},
		{name: "double encoded", raw: "/%252egit/config", unsafe: true},
		{name: "raw backslash", raw: "/.git\\config", unsafe: true},
		{name: "query is not the path", raw: "/search?q=/wp-login.php", wantRule: ""},
		{name: "long s is not s", raw: "/%C5%BFhell.php", wantRule: "php:*.php"},
		{name: "Kelvin sign is not k", raw: "/%E2%84%AAerbynet", wantRule: ""},
		{name: "ascii kerbynet for contrast", raw: "/cgi/KERBYNET", wantRule: "cgi:**/kerbynet"},
		{name: "well-known excluded", raw: "/.well-known/acme-challenge/x", wantRule: ""},
		{name: "well-known cannot shield via dot-dot", raw: "/.well-known/../.env", wantRule: "secrets:**/.env*"},
		{name: "well-known with params", raw: "/.well-known;x/../.git", wantRule: "vcs:**/.git"},
		{name: "longest match names the rule", raw: "/wp-content/plugins/revslider/x.php", wantRule: "wordpress:/wp-content/plugins/revslider"},
		{name: "suffix anywhere", raw: "/dumps/db.sql.gz", wantRule: "secrets:*.sql.gz"},
		{name: "segment bound", raw: "/shell-history", wantRule: ""},
		{name: "segment bound exact", raw: "/shell", wantRule: "shells:/shell"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rule, ok, err := matchRaw(m, tc.raw)
			if tc.unsafe {
				if !errors.Is(err, ErrUnsafePath) {
					t.Errorf("Canonical(%q) error = %v, want ErrUnsafePath", tc.raw, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Canonical(%q) error %v", tc.raw, err)
			}
			if rule != tc.wantRule || ok != (tc.wantRule != "") {
				t.Errorf("Match(%q) = %q, %v, want %q", tc.raw, rule, ok, tc.wantRule)
			}
		})
	}
}

// benignPaths are paths of ordinary applications (static sites, SPAs,
// APIs, Go/Node/Python/Rails apps, dashboards) that no preset may block.
var benignPaths = []string{
	"/", "/index.html", "/index.htm", "/static/app.js", "/static/js/app.js",
	"/static/css/site.css", "/assets/index-3f2a1b.js", "/fonts/inter.woff2",
	"/images/logo.png", "/favicon.ico", "/apple-touch-icon.png", "/robots.txt",
	"/sitemap.xml", "/humans.txt", "/ads.txt", "/manifest.json", "/manifest.webmanifest",
	"/service-worker.js", "/config.json", "/feed.xml", "/rss",
	"/api/v1/users", "/api/v1/users/42", "/api/graphql", "/graphql", "/healthz", "/readyz",
	"/metrics", "/login", "/logout", "/signup", "/admin", "/admin/", "/admin/config",
	"/administration", "/administrator", "/dashboard/", "/settings", "/account/settings",
	"/user/profile", "/search", "/cart", "/checkout", "/blog/2024/01/hello-world/",
	"/docs/mysql/", "/docs/php/", "/docs/git/branching", "/docs/environment-variables",
	"/environment", "/backup-policy", "/mail-settings", "/mail", "/webmail-help",
	"/git/", "/gitlab", "/cvs-pharmacy", "/shell-oil-history", "/shellcheck",
	"/wordpress-vs-hugo", "/wp-engine-review", "/cgi-docs", "/console", "/scripts/main.js",
	"/vendor/jquery.js", "/uploads/photo.jpg", "/media/video.mp4", "/downloads/report.pdf",
	"/.well-known/acme-challenge/abcdef", "/.well-known/security.txt",
	"/.well-known/openid-configuration", "/ws", "/socket.io/", "/_next/static/chunks/main.js",
	"/_nuxt/app.js", "/static/.vite/manifest.json.map", "/debug", "/status", "/server",
	"/actuator/health", "/swagger-ui/index.html", "/openapi.json", "/data.zip",
	"/products/shell-case", "/u/~alice", "/%7Ealice/", "/a.b.c/d", "/caf%C3%A9",
	"/team/pmarchand", "/pmapper", "/myadmin-guide",
}

func TestProbeMatchBenign(t *testing.T) {
	t.Parallel()
	m := allPresets(t)
	for _, raw := range benignPaths {
		rule, ok, err := matchRaw(m, raw)
		if err != nil {
			t.Errorf("Canonical(%q) error %v", raw, err)
			continue
		}
		if ok {
			t.Errorf("Match(%q) = %q, want no match", raw, rule)
		}
	}
}

// corpusClass classifies every request path found in the fail2ban logs
// (access-log request lines and Apache's refused paths) and every file
// path of their error logs, docroot removed: the preset that must match,
// "" for paths no preset may block, or "400" for Canonical refusals.
// fail2ban's own match labels are not used: they classify log message
// types (a "client denied by server configuration" line is match:false
// even for /.htaccess), not paths.
var corpusClass = map[string]string{
	// Access logs and nginx error logs (request lines).
	"/":                                      "",
	"/123.html/trackback/":                   "", // bad bot by User-Agent, not by path
	"/filename.jpg":                          "",
	"/admin":                                 "",
	"/admin/config":                          "",
	"/index.htm":                             "",
	"/ab2h":                                  "",
	"/favicon.ico":                           "",
	"/dashboard/":                            "",
	"/index.php":                             "php", // the RFI is in the query; a .php path on a non-PHP site
	"/.env":                                  "secrets",
	"//admin/pma/scripts/setup.php":          "phpmyadmin",
	"//phpMyAdmin-2.8.2.3/scripts/setup.php": "phpmyadmin",
	"//pma/scripts/setup.php":                "phpmyadmin",
	"//mysqladmin/scripts/setup.php":         "phpmyadmin",
	"/cgi-bin/tools/tools.pl":                "cgi",
	"/cgi-bin/recent.cgi":                    "cgi",
	"/cgi-bin/php4":                          "cgi",
	"/roundcube/":                            "common",
	"/wp-content/themes/evolve/js/back-end/libraries/fileuploader/upload_handler.php": "wordpress",
	"/wp-config.php~": "wordpress",
	"/cgi-bin/.%2e/.%2e/.%2e/.%2e/.%2e/.%2e/.%2e/.%2e/.%2e/.%2e/bin/sh":                                                        "400",
	"/cgi-bin/%%32%65%%32%65/%%32%65%%32%65/%%32%65%%32%65/%%32%65%%32%65/%%32%65%%32%65/%%32%65%%32%65/%%32%65%%32%65/bin/sh": "400",
	// Apache and nginx error logs (file paths, docroot removed).
	"/azenv.php":                      "php",
	"/[client":                        "", // a garbled line of the apache-auth log
	"/extmail":                        "common",
	"/v-webmail":                      "common",
	"/vwebmail":                       "common",
	"/webmail":                        "common",
	"/mail":                           "", // fail2ban's (ext)?mail prefix; too generic for a preset
	"/mails":                          "",
	"/mail_this_entry":                "",
	"/pmapper-3.2-beta3":              "", // a mapping app, caught by fail2ban's broad "pma" prefix only
	"/phpmyadmin":                     "phpmyadmin",
	"/pma":                            "phpmyadmin",
	"/xxx/~":                          "secrets", // editor backup name
	"/cgi-bin/gitweb.cgiwp-login.php": "cgi",
	"/forum/mail.php":                 "php", // benign on a PHP site, which does not enable "php"
	"/timthumb.php":                   "php",
	"/wp-login.php":                   "wordpress",
	"/cgi-bin":                        "cgi",
	"/cgi-bin/luci":                   "cgi",
	"/cgi-bin/php":                    "cgi",
	"/cgi-bin/php-cgi":                "cgi",
	"/cgi-bin/php.cgi":                "cgi",
	"/cgi-bin/php5":                   "cgi",
	"/cgi-bin/kerbynet":               "cgi",
	"/webmail/.htaccess":              "secrets",
	"/index.php?n=http://eatmyfood.hostinginfive.com/pizza.htm?": "php",
}

// errorLogPath finds file paths in Apache and nginx error-log lines.
var errorLogPath = regexp.MustCompile(`(?:File does not exist: |script '|unable to stat: |stderr from |open\(\) "|\] ")(/[^\s,'":]+)`)

// docroots are removed from error-log file paths to get request paths.
var docroots = []string{
	"/home/e-smith/files/ibays/Primary", "/home/southern/public_html",
	"/var/www/site", "/var/www", "/srv/http/site", "/srv/http", "/usr/lib",
	"/path",
}

// corpusErrorLogPaths returns the request paths behind the file paths of
// the fail2ban error logs.
func corpusErrorLogPaths(t *testing.T) []string {
	t.Helper()
	dir := corpusDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "fail2ban", "logs", "*"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range errorLogPath.FindAllStringSubmatch(string(data), -1) {
			p := m[1]
			for _, root := range docroots {
				if rest, ok := strings.CutPrefix(p, root); ok {
					p = rest
					break
				}
			}
			if p == "" || seen[p] || strings.HasPrefix(p, "/var/") || strings.HasPrefix(p, "/home/") {
				continue
			}
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func TestProbeMatchCorpusFail2ban(t *testing.T) {
	t.Parallel()
	paths := append(corpusRequestPaths(t), corpusErrorLogPaths(t)...)
	if len(paths) < 30 {
		t.Fatalf("found %d paths in the fail2ban logs, want at least 30", len(paths))
	}
	m := allPresets(t)
	for _, raw := range paths {
		want, ok := corpusClass[raw]
		if !ok {
			t.Errorf("corpus path %q is not classified in corpusClass", raw)
			continue
		}
		rule, matched, err := matchRaw(m, raw)
		switch {
		case want == "400":
			if !errors.Is(err, ErrUnsafePath) {
				t.Errorf("Canonical(%q) error = %v, want ErrUnsafePath", raw, err)
			}
		case err != nil:
			t.Errorf("Canonical(%q) error %v", raw, err)
		case want == "" && matched:
			t.Errorf("Match(%q) = %q, want no match (benign)", raw, rule)
		case want != "" && !strings.HasPrefix(rule, want+":"):
			t.Errorf("Match(%q) = %q, %v, want a rule of preset %s", raw, rule, matched, want)
		}
	}
}

// crsLines reads a CRS .data word list (comments and blank lines
// skipped).
func crsLines(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir(t), "coreruleset", "data", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// crsPath turns a CRS phrase into a request path.
func crsPath(l string) string {
	if strings.HasPrefix(l, "/") {
		return l
	}
	return "/" + l
}

func TestProbeMatchCorpusCRSScanners(t *testing.T) {
	t.Parallel()
	m := allPresets(t)
	for _, l := range crsLines(t, "scanners-urls.data") {
		raw := crsPath(l)
		if strings.Contains(raw, "<") { // Nikto's "/<invalid>hello.html": no stable path
			continue
		}
		rule, _, err := matchRaw(m, raw)
		if err != nil || !strings.HasPrefix(rule, "common:") {
			t.Errorf("Match(%q) = %q, %v, want a rule of preset common", raw, rule, err)
		}
	}
	for _, l := range crsLines(t, "ai-critical-artifacts.data") {
		raw := crsPath(l)
		rule, ok, err := matchRaw(m, raw)
		if err != nil {
			t.Errorf("Canonical(%q) error %v", raw, err)
		}
		if ok && !strings.HasPrefix(rule, "secrets:") {
			t.Errorf("Match(%q) = %q, want a secrets rule or none", raw, rule)
		}
	}
}

// TestProbeCorpusGolden records what every corpus path matches (fail2ban
// paths, CRS scanner URLs, restricted files and AI artifacts as paths), so
// a preset change shows up as a reviewed diff of
// testdata/probe_corpus.golden. Refresh with -update.
func TestProbeCorpusGolden(t *testing.T) {
	t.Parallel()
	m := allPresets(t)
	var inputs []string
	inputs = append(inputs, corpusRequestPaths(t)...)
	inputs = append(inputs, corpusErrorLogPaths(t)...)
	for _, name := range []string{"scanners-urls.data", "restricted-files.data", "ai-critical-artifacts.data"} {
		for _, l := range crsLines(t, name) {
			inputs = append(inputs, crsPath(l))
		}
	}
	var b strings.Builder
	b.WriteString("# path\trule (\"-\": no match; \"400\": refused by Canonical)\n")
	matched, total := 0, 0
	for _, raw := range inputs {
		total++
		rule, ok, err := matchRaw(m, raw)
		switch {
		case err != nil:
			var ue *UnsafePathError
			errors.As(err, &ue)
			rule = "400 " + ue.Reason
		case !ok:
			rule = "-"
		default:
			matched++
		}
		fmt.Fprintf(&b, "%q\t%s\n", raw, rule)
	}
	fmt.Fprintf(&b, "# %d of %d matched\n", matched, total)
	golden := filepath.Join("testdata", "probe_corpus.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("probe matches differ from %s (run go test -run TestProbeCorpusGolden -update and review the diff):\n%s",
			golden, firstDiff(string(want), got))
	}
}

// firstDiff describes the first differing line of two texts.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(wl), len(gl)) {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n  want %q\n  got  %q", i+1, w, g)
		}
	}
	return "no difference"
}

// examplePath returns a path that the literal pattern pat must match.
func examplePath(pat string) string {
	switch {
	case strings.HasPrefix(pat, "**/"):
		return "/deep/dir" + examplePath(pat[2:])
	case strings.HasPrefix(pat, "*"):
		return "/dir/name" + pat[1:]
	case strings.HasSuffix(pat, "*"):
		return strings.TrimSuffix(pat, "*") + "x1"
	case strings.HasSuffix(pat, "/"):
		return pat + "x"
	default:
		return pat
	}
}

func TestPresetsWellFormed(t *testing.T) {
	t.Parallel()
	total := 0
	for _, name := range PresetNames() {
		pats, ok := PresetPatterns(name)
		if !ok || len(pats) == 0 {
			t.Fatalf("PresetPatterns(%q) = %d patterns, %v", name, len(pats), ok)
		}
		total += len(pats)
		m, err := CompileProbes(ProbeConfig{Presets: []string{name}})
		if err != nil {
			t.Fatalf("CompileProbes(preset %s) error %v", name, err)
		}
		seen := map[string]bool{}
		for _, pat := range pats {
			if seen[pat] {
				t.Errorf("preset %s lists %q twice", name, pat)
			}
			seen[pat] = true
			if pat != strings.ToLower(pat) {
				t.Errorf("preset %s pattern %q is not lower case", name, pat)
			}
			if strings.HasPrefix(pat, "re:") {
				t.Errorf("preset %s pattern %q: presets hold literals only (regexes cost every request)", name, pat)
				continue
			}
			// Every pattern is reachable: its example path matches,
			// through Canonical, and no exclude hides it.
			ex := examplePath(pat)
			rule, ok, err := matchRaw(m, ex)
			if err != nil || !ok {
				t.Errorf("preset %s pattern %q: Match(%q) = %q, %v, %v, want a match", name, pat, ex, rule, ok, err)
			}
		}
	}
	if total < 500 {
		t.Errorf("presets hold %d patterns, want at least 500", total)
	}
	if !slices.IsSorted(PresetNames()) {
		t.Errorf("PresetNames() = %v, want sorted", PresetNames())
	}
	// PresetPatterns returns a copy: changing it changes nothing.
	p, _ := PresetPatterns("vcs")
	p[0] = "/changed"
	if q, _ := PresetPatterns("vcs"); q[0] == "/changed" {
		t.Error("PresetPatterns returned the preset table itself, want a copy")
	}
}

func TestCompileProbesErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     ProbeConfig
		wantErr string
	}{
		{"unknown preset", ProbeConfig{Presets: []string{"wordpres"}}, `compile probes: presets[0] "wordpres": unknown preset (known: cgi, common,`},
		{"preset twice", ProbeConfig{Presets: []string{"vcs", "vcs"}}, `presets[1] "vcs": listed twice`},
		{"no slash", ProbeConfig{Paths: []string{"admin"}}, `paths[0] "admin": pattern must start with`},
		{"root", ProbeConfig{Paths: []string{"/"}}, `"/" would match every path`},
		{"root raw", ProbeConfig{Paths: []string{"/*"}}, `"/" would match every path`},
		{"anywhere root", ProbeConfig{Paths: []string{"**/"}}, `"**/" would match every path`},
		{"empty suffix", ProbeConfig{Paths: []string{"*"}}, "empty pattern"},
		{"empty", ProbeConfig{Paths: []string{""}}, "pattern must start with"},
		{"double slash", ProbeConfig{Paths: []string{"/a//b"}}, `"//" can never match`},
		{"dot segment", ProbeConfig{Paths: []string{"/a/../b"}}, "dot segment can never match"},
		{"trailing dot", ProbeConfig{Paths: []string{"/.env."}}, "ending in a dot or space"},
		{"dots only", ProbeConfig{Paths: []string{"/.../x"}}, "only dots and spaces"},
		{"params", ProbeConfig{Paths: []string{"/a;b"}}, `";" can never match`},
		{"backslash", ProbeConfig{Paths: []string{"/a\\b"}}, `"\" can never match`},
		{"encoded", ProbeConfig{Paths: []string{"/a%2fb"}}, `"%XX" can never match`},
		{"control", ProbeConfig{Paths: []string{"/a\nb"}}, "control character"},
		{"infix star", ProbeConfig{Paths: []string{"/a*b"}}, `"*" is only allowed`},
		{"suffix ends in slash", ProbeConfig{Paths: []string{"*.d/"}}, `suffix must not end with "/"`},
		{"bad UTF-8", ProbeConfig{Paths: []string{"/\xff"}}, "invalid UTF-8"},
		{"bad regex", ProbeConfig{Paths: []string{"/ok", "re:("}}, `paths[1] "re:(": error parsing regexp`},
		{"upper-case regex", ProbeConfig{Paths: []string{"re:^/Admin"}}, "upper-case letters"},
		{"exclude not a prefix", ProbeConfig{Exclude: []string{"*.php"}}, `exclude[0] "*.php": exclude must be a path prefix`},
		{"exclude regex", ProbeConfig{Exclude: []string{"re:^/x"}}, `exclude[0] "re:^/x"`},
		{"exclude bad", ProbeConfig{Exclude: []string{"/a//b"}}, `exclude[0] "/a//b": "//" can never match`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := CompileProbes(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("CompileProbes(%+v) = %v, %v, want error containing %q", tc.cfg, m, err, tc.wantErr)
			}
		})
	}
}

func TestProbeMatchCustom(t *testing.T) {
	t.Parallel()
	m, err := CompileProbes(ProbeConfig{
		Paths: []string{
			"/Old-Admin/",          // 0: raw prefix, upper case in config
			"/api/internal",        // 1: segment-bounded
			"/tmp*",                // 2: raw prefix
			"**/node_modules",      // 3: any depth
			"*.bak",                // 4: suffix
			"re:^/u/[0-9]+/export", // 5
			"re:(?i)^/legacy/",     // 6
			"re:^/api/internal/x",  // 7: shadowed by 1 (literals first)
		},
		Exclude: []string{"/tmp/public/", "/Old-Admin/assets"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		raw, want string
	}{
		{"/old-admin/x", "paths[0]"},
		{"/OLD-ADMIN/x", "paths[0]"},
		{"/old-admin", "paths[0]"}, // "/x/" also covers "/x"
		{"/old-admin.", "paths[0]"},
		{"/old-adminx", ""},
		{"/old-admin/assets/a.css", ""},
		{"/old-admin/assetsx", "paths[0]"},
		{"/api/internal", "paths[1]"},
		{"/api/internal/x", "paths[1]"},
		{"/api/internalx", ""},
		{"/tmp", "paths[2]"},
		{"/tmpfiles/a", "paths[2]"},
		{"/tmp/public/a", ""},
		{"/tmp/public", ""}, // the exclude "/tmp/public/" covers it too, as every "/x/" list entry does
		{"/tmp/publicx", "paths[2]"},
		{"/a/node_modules/x/package.json", "paths[3]"},
		{"/node_modules", "paths[3]"},
		{"/a/node_modulesx", ""},
		{"/a.bak", "paths[4]"},
		{"/a.BAK", "paths[4]"},
		{"/a.bak/b", "paths[4]"},
		{"/a.bakx", ""},
		{"/u/12/export", "paths[5]"},
		{"/x/u/12/export", ""},
		{"/LEGACY/a", "paths[6]"},
		{"/.well-known/a.bak", ""},
	}
	for _, tc := range tests {
		rule, ok, err := matchRaw(m, tc.raw)
		if err != nil || rule != tc.want || ok != (tc.want != "") {
			t.Errorf("Match(%q) = %q, %v, %v, want %q", tc.raw, rule, ok, err, tc.want)
		}
	}
	if got := m.Rules(); got != 8 {
		t.Errorf("Rules() = %d, want 8", got)
	}
	var nilM *ProbeMatcher
	if rule, ok := nilM.Match("/.git"); ok || rule != "" || nilM.Rules() != 0 {
		t.Errorf("nil ProbeMatcher: Match = %q, %v; Rules = %d; want no match", rule, ok, nilM.Rules())
	}
}

func TestProbeMatchExcludePresets(t *testing.T) {
	t.Parallel()
	// A PHP site that still wants the other presets carves its app out.
	m, err := CompileProbes(ProbeConfig{Presets: everyPreset(), Exclude: []string{"/forum/", "/index.php"}})
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]bool{
		"/forum/mail.php":         false,
		"/index.php":              false,
		"/index.php/x":            false,
		"/forum/.git/config":      false, // excludes are path-based: all rules yield
		"/phpinfo.php":            true,
		"/forum.php":              true,
		"/.well-known/x/.env":     false,
		"/.well-known/../wp-json": true,
	} {
		rule, ok, err := matchRaw(m, raw)
		if err != nil || ok != want {
			t.Errorf("Match(%q) = %q, %v, %v, want match %v", raw, rule, ok, err, want)
		}
	}
}

func TestProbeMatchConcurrent(t *testing.T) {
	t.Parallel()
	m, err := CompileProbes(ProbeConfig{Presets: everyPreset(), Paths: []string{"re:^/x[0-9]+$"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				p := []string{"/static/app.js", "/.git/config", "/x12", "/wp-login.php"}[(i+g)%4]
				rule, ok := m.Match(p)
				if want := p != "/static/app.js"; ok != want {
					errs <- fmt.Sprintf("Match(%q) = %q, %v, want match %v", p, rule, ok, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func FuzzProbeMatch(f *testing.F) {
	// Probes and their bypass forms.
	for _, s := range []string{"/.git/config", "//phpmyadmin", "/PhpMyAdmin", "/./.env", "/.env.", "/wp-login.php%20", "/admin;x/", "/blog/wp-admin/", "/x.php/y", "/a.sql.gz"} {
		f.Add(s)
	}
	// Benign paths, including near misses of presets.
	for _, s := range benignPaths {
		f.Add(s)
	}
	// Excluded and refused paths.
	for _, s := range []string{"/.well-known/acme-challenge/x", "/.well-known/../.env", "/%2e%2e/", "/a%2fb"} {
		f.Add(s)
	}
	// Real request paths from the fail2ban logs.
	for _, s := range corpusRequestPaths(nil) {
		f.Add(s)
	}
	m, err := CompileProbes(ProbeConfig{Presets: everyPreset(), Paths: []string{"re:^/x[0-9]+/", "/custom/"}, Exclude: []string{"/static/"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		// Match must not panic on any string, canonical or not.
		m.Match(raw)
		c, err := Canonical(raw)
		if err != nil {
			return
		}
		r1, ok1 := m.Match(c.Probe)
		r2, ok2 := m.Match(c.Probe)
		if r1 != r2 || ok1 != ok2 {
			t.Fatalf("Match(%q) = %q, %v then %q, %v", c.Probe, r1, ok1, r2, ok2)
		}
		if ok1 != (r1 != "") {
			t.Fatalf("Match(%q) = %q, %v: ok and rule disagree", c.Probe, r1, ok1)
		}
		// Matching is a function of the canonical path: normalising the
		// probe form again gives the same answer.
		again, err := Canonical(escapePath(c.Probe))
		if err != nil {
			t.Fatalf("Canonical(escape(%q)) error %v", c.Probe, err)
		}
		if r3, ok3 := m.Match(again.Probe); r3 != r1 || ok3 != ok1 {
			t.Fatalf("Match(%q) = %q, %v, but Match of it normalised again (%q) = %q, %v", c.Probe, r1, ok1, again.Probe, r3, ok3)
		}
	})
}

// extraPatterns returns n random literal patterns of every kind, none of
// which matches the benchmark paths.
func extraPatterns(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789-_"
	word := func() string {
		b := make([]byte, 4+r.IntN(12))
		for i := range b {
			b[i] = letters[r.IntN(len(letters))]
		}
		return string(b)
	}
	out := make([]string, 0, n)
	for i := range n {
		switch i % 4 {
		case 0:
			out = append(out, "/"+word()+"/"+word())
		case 1:
			out = append(out, "/"+word()+"*")
		case 2:
			out = append(out, "**/"+word()+".x")
		default:
			out = append(out, "*."+word())
		}
	}
	return out
}

func BenchmarkProbeMatch(b *testing.B) {
	for _, bc := range []struct {
		name  string
		extra int
		re    []string
		path  string
	}{
		{"miss/presets", 0, nil, "/static/js/app/main.js"},
		{"miss/presets+5000", 5000, nil, "/static/js/app/main.js"},
		{"miss/presets+50000", 50000, nil, "/static/js/app/main.js"},
		{"miss/presets+3regex", 0, []string{"re:^/old-[0-9]+/", "re:/debug/[a-z]+$", "re:^/u/[0-9]+/export"}, "/static/js/app/main.js"},
		{"miss-long/presets", 0, nil, "/api/v1/organisations/42/projects/7/issues/1234/comments"},
		{"miss-long/presets+5000", 5000, nil, "/api/v1/organisations/42/projects/7/issues/1234/comments"},
		{"hit/presets", 0, nil, "/blog/wp-content/plugins/revslider/temp/update_extract/x.php"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			paths := append(extraPatterns(bc.extra), bc.re...)
			m, err := CompileProbes(ProbeConfig{Presets: everyPreset(), Paths: paths})
			if err != nil {
				b.Fatal(err)
			}
			wantHit := strings.HasPrefix(bc.name, "hit")
			if _, ok := m.Match(bc.path); ok != wantHit {
				b.Fatalf("Match(%q) = %v, want %v", bc.path, ok, wantHit)
			}
			b.ReportMetric(float64(m.Rules()), "patterns")
			b.ReportAllocs()
			for b.Loop() {
				m.Match(bc.path)
			}
		})
	}
}

func BenchmarkCompileProbes(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompileProbes(ProbeConfig{Presets: everyPreset()}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDotfilesPreset(t *testing.T) {
	m, err := CompileProbes(ProbeConfig{Presets: []string{"dotfiles"}})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"/.env": true, "/.git/config": true, "/a/b/.htaccess": true, "/x/.svn/entries": true,
		"/.well-known/acme-challenge/tok": false, "/.well-known/security.txt": false,
		"/a.b/c": false, "/index.html": false, "/a/b.": false,
	} {
		c, err := Canonical(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := m.MatchRequest(p, c); got != want {
			t.Errorf("%s: probe = %v, want %v", p, got, want)
		}
	}
}

// everyPreset is every preset but dotfiles, which also blocks the
// dot-directories some sites serve (/.vite/, /.fabric/): the corpora
// below check the presets meant to be safe on any site, with the others.
func everyPreset() []string {
	return slices.DeleteFunc(PresetNames(), func(n string) bool { return n == "dotfiles" })
}
