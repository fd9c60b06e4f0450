package fail2ban

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReadFilter reads the hand-written filter in testdata/confdir: an
// include, a .local that extends the shipped failregex through
// %(known/failregex)s, a mode-selected tag, [Init], %% and an empty line
// inside a value.
func TestReadFilter(t *testing.T) {
	t.Parallel()
	fsys := os.DirFS("testdata/confdir")
	for _, tc := range []struct {
		name, mode, backend string
		want                []string
		wantSrc             map[string]string
	}{
		{"normal", "", "auto", []string{
			`^auth failed for <F-USER>\S+</F-USER> from <HOST>$`,
			`^bad key from <HOST>`,
			`^too many tries from <HOST>`,
		}, map[string]string{"failregex[0]": "filter.d/demo.conf:9", "failregex[1]": "filter.d/demo.conf:11", "failregex[2]": "filter.d/demo.local:4", "prefregex": "filter.d/demo.conf:8"}},
		{"strict", "strict", "systemd", []string{
			`^auth failed for <F-USER>\S+</F-USER> from <HOST>$`,
			`^bad key from <HOST>`,
			`^probe from <HOST>`,
			`^too many tries from <HOST>`,
		}, map[string]string{"failregex[2]": "filter.d/demo.conf:13"}},
	} {
		spec := FilterSpec{Name: "demo", Args: map[string]string{}}
		if tc.mode != "" {
			spec.Args["mode"] = tc.mode
		}
		def, findings, err := ReadFilter(fsys, spec, tc.backend)
		if err != nil {
			t.Fatalf("%s: ReadFilter: %v", tc.name, err)
		}
		if !slices.Equal(def.FailRegex, tc.want) {
			t.Errorf("%s: FailRegex = %q, want %q", tc.name, def.FailRegex, tc.want)
		}
		for k, want := range tc.wantSrc {
			if got := def.Src[k].String(); got != want {
				t.Errorf("%s: Src[%s] = %s, want %s", tc.name, k, got, want)
			}
		}
		if want := `^demod\[\d+\]:\s+<F-CONTENT>.+</F-CONTENT>$`; def.PrefRegex != want {
			t.Errorf("%s: PrefRegex = %q, want %q", tc.name, def.PrefRegex, want)
		}
		if def.DatePattern != "^%Y-%m-%d" || len(def.IgnoreRegex) != 0 || len(findings) != 0 {
			t.Errorf("%s: DatePattern %q, IgnoreRegex %q, findings %v", tc.name, def.DatePattern, def.IgnoreRegex, findings)
		}
		if want := []string{"_SYSTEMD_UNIT=demo.service"}; !slices.Equal(def.JournalMatch, want) {
			t.Errorf("%s: JournalMatch = %q, want %q", tc.name, def.JournalMatch, want)
		}
		if wantMode := map[string]string{"normal": "normal", "strict": "strict"}[tc.name]; def.Mode != wantMode {
			t.Errorf("%s: Mode = %q, want %q", tc.name, def.Mode, wantMode)
		}
	}
	if _, _, err := ReadFilter(fsys, FilterSpec{Name: "nope"}, ""); err == nil || !strings.Contains(err.Error(), "no filter.d/nope.conf") {
		t.Errorf("ReadFilter(nope) error = %v, want no filter.d/nope.conf", err)
	}
}

func TestReadJails(t *testing.T) {
	t.Parallel()
	jails, findings, err := ReadJails(os.DirFS("testdata/confdir"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]WatchDef{}
	for _, j := range jails {
		got[j.Name] = j
	}
	if len(got) != 3 {
		t.Fatalf("ReadJails = %d jails, want demo, demo-strict, demo-journal", len(got))
	}
	d := got["demo"]
	if !slices.Equal(d.Files, []string{"/var/log/demo.log", "/var/log/demo-*.log"}) || d.Journal || d.MaxRetry != 3 ||
		d.FindTime != 10*time.Minute || d.BanTime != 10*time.Minute || d.Filter.Mode != "normal" || len(d.Filter.FailRegex) != 3 {
		t.Errorf("demo = %+v", d)
	}
	if d.Src["maxretry"].String() != "jail.local:3" || d.Src["logpath"].String() != "jail.conf:10" {
		t.Errorf("demo Src = %v", d.Src)
	}
	s := got["demo-strict"]
	if s.Filter.Mode != "strict" || len(s.Filter.FailRegex) != 4 || s.BanTime != 90*time.Minute || s.MaxRetry != 5 {
		t.Errorf("demo-strict = %+v", s)
	}
	j := got["demo-journal"]
	if !j.Journal || len(j.Files) != 0 || !slices.Equal(j.Filter.JournalMatch, []string{"_SYSTEMD_UNIT=demo.service"}) {
		t.Errorf("demo-journal = %+v", j)
	}
	// Actions are passed on in Settings for the importer to map; an
	// action this directory does not define is a finding naming its line.
	var msgs []string
	for _, f := range findings {
		msgs = append(msgs, f.String())
	}
	if want := "jail demo-journal: jail.conf:20: [demo-journal] action: %(action_mw)s names no option"; len(msgs) != 1 || !strings.Contains(msgs[0], want) {
		t.Errorf("findings = %q, want one containing %q", msgs, want)
	}
	if v, ok := j.Settings["action"]; ok {
		t.Errorf("demo-journal Settings[action] = %q, want unset (unresolvable)", v)
	}
	if got := d.Settings["action"]; got != "" {
		t.Errorf("demo Settings[action] = %q, want unset", got)
	}
}

func TestParseFilterSpec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, name, wantErr string
		args              map[string]string
	}{
		{"sshd", "sshd", "", map[string]string{}},
		{"sshd[mode=aggressive]", "sshd", "", map[string]string{"mode": "aggressive"}},
		{`sshd[mode=extra, publickey="any", __pam_auth='pam_ldap']`, "sshd", "", map[string]string{"mode": "extra", "publickey": "any", "__pam_auth": "pam_ldap"}},
		{"sshd[mode=x", "", "not closed", nil},
		{"[mode=x]", "", "empty filter name", nil},
		{"sshd[junk]", "", "is not name=value", nil},
	} {
		got, err := ParseFilterSpec(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseFilterSpec(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.Name != tc.name || len(got.Args) != len(tc.args) {
			t.Errorf("ParseFilterSpec(%q) = %+v, %v; want %s %v", tc.in, got, err, tc.name, tc.args)
			continue
		}
		for k, v := range tc.args {
			if got.Args[k] != v {
				t.Errorf("ParseFilterSpec(%q).Args[%s] = %q, want %q", tc.in, k, got.Args[k], v)
			}
		}
	}
}

// TestParseConf pins configparser's rules where they differ from a
// naive INI reader: "#" is no inline comment, an empty line inside a
// value is kept, a key set twice in one file is refused.
func TestParseConf(t *testing.T) {
	t.Parallel()
	f, err := parseConf("x.conf", []byte("[a]\nre = ^x #y\n  ; comment\n\n  ^z ; tail\nb: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.section("a").keys["re"].String(); got != "^x #y\n\n^z" {
		t.Errorf("re = %q, want %q", got, "^x #y\n\n^z")
	}
	for _, tc := range []struct{ src, wantErr string }{
		{"[a]\nx = 1\nx = 2\n", "x.conf:3: [a] x is set twice"},
		{"[a]\n[a]\n", "x.conf:2: section [a] already exists"},
		{"x = 1\n", "x.conf:1: a value before the first [section]"},
		{"[a]\n= 1\n", `x.conf:2: "= 1" is not`},
	} {
		if _, err := parseConf("x.conf", []byte(tc.src)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("parseConf(%q) error = %v, want %q", tc.src, err, tc.wantErr)
		}
	}
}

// FuzzParseConf checks that any file parses or fails at a line inside
// it, and that every value read back resolves or fails with a position.
func FuzzParseConf(f *testing.F) {
	// Sections, continuations with empty lines, comments, interpolation
	// (self, cross-section, %%), tags.
	for _, s := range []string{
		"[Definition]\nfailregex = a\n\n  b\n",
		"[a]\nx = %(y)s\ny = %(x)s\n", "[a]\nx = %(default/y)s\n[DEFAULT]\ny = 1\n",
		"[a]\nx = 100%%\ny = 5%\n", "[a\n", " x\n", "[a]\nb = <c-<d>>\nd = e\nc-e = f\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		cf, err := parseConf("f.conf", []byte(src))
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Line < 1 || e.Line > strings.Count(src, "\n")+2 {
				t.Fatalf("error %v: no line inside the file", err)
			}
			return
		}
		cs := newConfSet(nil)
		cs.merge(cf)
		for _, s := range cf.sections {
			for k := range s.keys {
				v, ok, err := cs.get(s.name, k, nil)
				if !ok {
					t.Fatalf("get(%s, %s) lost a key", s.name, k)
				}
				if err == nil && strings.Count(v.String(), "\n")+1 != len(v) {
					t.Fatalf("get(%s, %s) = %d lines for %q", s.name, k, len(v), v.String())
				}
			}
		}
	})
}
