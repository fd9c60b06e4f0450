package fail2ban

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gatehouse/rules/testenv"
)

// debianConf returns a copy of the configuration directory Debian's
// fail2ban package installs (/etc/fail2ban; its files are GPL-2 and are
// not kept in this repository), with a jail.local enabling one jail per
// filter.d file and one per sshd mode, each on an empty log file.
func debianConf(t *testing.T) (dir string, jails map[string]string, refused []string) {
	t.Helper()
	const src = "/etc/fail2ban"
	if _, err := os.Stat(filepath.Join(src, "filter.d", "sshd.conf")); err != nil {
		testenv.Missing(t, "%s: Debian's fail2ban package is not installed (apt-get install fail2ban)", src)
	}
	dir = t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "empty.log")
	if err := os.WriteFile(log, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "filter.d", "*.conf"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no filter.d/*.conf in %s: %v", src, err)
	}
	jails = map[string]string{}
	var b strings.Builder
	for _, n := range names {
		name := strings.TrimSuffix(filepath.Base(n), ".conf")
		if _, _, err := ReadFilter(os.DirFS(dir), FilterSpec{Name: name}, "auto"); err != nil {
			// Files such as selinux-common.conf are included by others and
			// are no filter alone: fail2ban refuses them too (checked by
			// TestDebianFilters), and one such jail stops its whole dump.
			refused = append(refused, name)
			t.Logf("not a filter alone: %v", err)
			continue
		}
		jails["t-"+name] = name
		fmt.Fprintf(&b, "[t-%s]\nenabled = true\nfilter = %s\nlogpath = %s\nbackend = auto\n\n", name, name, log)
	}
	for _, mode := range []string{"normal", "ddos", "extra", "aggressive"} {
		jails["t-sshd-"+mode] = "sshd[mode=" + mode + "]"
		fmt.Fprintf(&b, "[t-sshd-%s]\nenabled = true\nfilter = sshd[mode=%s]\nlogpath = %s\n\n", mode, mode, log)
	}
	jails["t-sshd-journal"] = "sshd (systemd)"
	b.WriteString("[t-sshd-journal]\nenabled = true\nfilter = sshd\nbackend = systemd\n\n")
	if err := os.WriteFile(filepath.Join(dir, "jail.local"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "jail.d")); err != nil { // only the jails above
		t.Fatal(err)
	}
	return dir, jails, refused
}

// f2bDump is what fail2ban-client -d says fail2ban's server would be
// told about each jail's filter.
type f2bDump struct {
	fail, ignore, journal []string
	pref, date, maxlines  string
}

// dumpFail2ban runs fail2ban-client -d on dir and reads its stream
// (Python list literals, turned into JSON by Python itself).
func dumpFail2ban(t *testing.T, dir string) map[string]*f2bDump {
	t.Helper()
	client := testenv.Tool(t, "fail2ban-client")
	py := testenv.Tool(t, "python3")
	cmd := exec.CommandContext(t.Context(), "sh", "-c", `"$1" -c "$2" -d 2>/dev/null | "$3" -c 'import sys, ast, json
for l in sys.stdin:
    if l.startswith("["): print(json.dumps(ast.literal_eval(l)))'`, "sh", client, dir, py)
	out, err := cmd.Output() // a refused configuration prints nothing: callers compare
	if err != nil {
		t.Fatalf("fail2ban-client -d: %v", err)
	}
	dumps := map[string]*f2bDump{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var cmd []json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil || len(cmd) < 4 {
			continue
		}
		var verb, jail, opt string
		_ = json.Unmarshal(cmd[0], &verb) // a line of another shape is not a jail setting
		_ = json.Unmarshal(cmd[1], &jail)
		_ = json.Unmarshal(cmd[2], &opt)
		d := dumps[jail]
		if d == nil {
			d = &f2bDump{}
			dumps[jail] = d
		}
		var vals []string
		if verb == "multi-set" {
			_ = json.Unmarshal(cmd[3], &vals)
		} else {
			for _, raw := range cmd[3:] {
				var s string
				if json.Unmarshal(raw, &s) != nil {
					var n json.Number
					_ = json.Unmarshal(raw, &n)
					s = n.String()
				}
				vals = append(vals, s)
			}
		}
		switch opt {
		case "addfailregex":
			d.fail = append(d.fail, vals...)
		case "addignoreregex":
			d.ignore = append(d.ignore, vals...)
		case "addjournalmatch":
			d.journal = append(d.journal, strings.Join(vals, " "))
		case "prefregex":
			d.pref = vals[0]
		case "datepattern":
			d.date = vals[0]
		case "maxlines":
			d.maxlines = vals[0]
		}
	}
	return dumps
}

// TestDebianFilters reads every filter.d file Debian's fail2ban package
// installs, and sshd in each mode, and checks that every regex,
// prefregex, datepattern, maxlines and journalmatch is what fail2ban
// itself resolves (fail2ban-client -d on the same directory). It logs
// which filters use syntax RE2 cannot express.
func TestDebianFilters(t *testing.T) {
	dir, jails, refused := debianConf(t)
	for _, name := range refused {
		one := t.TempDir()
		if err := os.CopyFS(one, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		jl := fmt.Sprintf("[t-%s]\nenabled = true\nfilter = %s\nlogpath = %s\n", name, name, filepath.Join(dir, "empty.log"))
		if err := os.WriteFile(filepath.Join(one, "jail.local"), []byte(jl), 0o600); err != nil {
			t.Fatal(err)
		}
		if d := dumpFail2ban(t, one)["t-"+name]; d != nil && len(d.fail) > 0 {
			t.Errorf("ReadFilter refuses %s, fail2ban reads %d failregex", name, len(d.fail))
		}
	}
	want := dumpFail2ban(t, dir)
	got, findings, err := ReadJails(os.DirFS(dir))
	if err != nil {
		t.Fatalf("ReadJails: %v", err)
	}
	for _, f := range findings {
		if strings.Contains(f.Msg, "jail t-") && !strings.Contains(f.Msg, "usedns") && !strings.Contains(f.Msg, "maxlines") {
			t.Errorf("finding on a Debian filter: %v", f)
		}
	}
	seen := map[string]bool{}
	re2 := map[string][]string{}
	for _, w := range got {
		seen[w.Name] = true
		d := want[w.Name]
		if d == nil {
			if strings.HasPrefix(w.Name, "t-") && len(w.Filter.FailRegex) > 0 {
				t.Errorf("%s: read, but fail2ban-client -d sets nothing for it", w.Name)
			}
			continue
		}
		f := w.Filter
		if !slices.Equal(f.FailRegex, d.fail) {
			t.Errorf("%s (%s): failregex differs from fail2ban's\n got %q\nwant %q", w.Name, jails[w.Name], f.FailRegex, d.fail)
		}
		if !slices.Equal(f.IgnoreRegex, d.ignore) {
			t.Errorf("%s: ignoreregex = %q, fail2ban %q", w.Name, f.IgnoreRegex, d.ignore)
		}
		if f.PrefRegex != d.pref || f.DatePattern != d.date {
			t.Errorf("%s: prefregex %q datepattern %q, fail2ban %q %q", w.Name, f.PrefRegex, f.DatePattern, d.pref, d.date)
		}
		if ml := fmt.Sprint(f.MaxLines); (f.MaxLines != 0 || d.maxlines != "") && ml != d.maxlines {
			t.Errorf("%s: maxlines %s, fail2ban %q", w.Name, ml, d.maxlines)
		}
		if w.Journal && !slices.Equal(f.JournalMatch, d.journal) {
			t.Errorf("%s: journalmatch %q, fail2ban %q", w.Name, f.JournalMatch, d.journal)
		}
		for i, r := range append(slices.Clone(f.FailRegex), f.PrefRegex) {
			if r == "" {
				continue
			}
			if err := re2Check(r); err != nil {
				key := fmt.Sprintf("failregex[%d]", i)
				if i == len(f.FailRegex) {
					key = "prefregex"
				}
				re2[w.Name] = append(re2[w.Name], fmt.Sprintf("%s: %v", f.Src[key], err))
			}
		}
	}
	for name := range jails {
		if want[name] != nil && !seen[name] {
			t.Errorf("%s: fail2ban reads it, ReadJails left it out", name)
		}
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range re2 {
			if !yield(k) {
				return
			}
		}
	}) {
		t.Logf("RE2 cannot express %s: %s", name, strings.Join(re2[name], "; "))
	}
	t.Logf("%d jails compared with fail2ban-client -d, %d with syntax RE2 cannot express", len(got), len(re2))
}

// fail2banTags are fail2ban's own regex tags, replaced by plain groups
// before asking RE2 about the rest of the syntax.
var fail2banTags = regexp.MustCompile(`</?F-[A-Za-z_]+>|<(?:HOST|ADDR|IP4|IP6|DNS|CIDR|SUBNET|SKIPLINES)>`)

func re2Check(r string) error {
	s := fail2banTags.ReplaceAllStringFunc(r, func(tag string) string {
		switch {
		case strings.HasPrefix(tag, "</"):
			return ")"
		case strings.HasPrefix(tag, "<F-"):
			return "("
		}
		return `(\S+)`
	})
	_, err := regexp.Compile(s)
	return err
}
