package fail2ban

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	src := `# jail.local
[DEFAULT]
ignoreip = 127.0.0.1/8 ::1
    192.0.2.0/24   ; office
bantime  = 1h
web_ports = http,https

[nginx-http-auth]
Enabled = true
port    = %(web_ports)s
filter  = %(__name__)s[mode=aggressive]
maxretry: 3 # inline
`
	f, err := Parse("jail.local", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section("nginx-http-auth")
	for _, tc := range []struct {
		key, want string
		line      int
	}{
		{"enabled", "true", 9},
		{"port", "http,https", 10},
		{"filter", "nginx-http-auth[mode=aggressive]", 11},
		{"maxretry", "3", 12},
		{"bantime", "1h", 5},
		{"ignoreip", "127.0.0.1/8 ::1\n192.0.2.0/24", 3},
	} {
		v, line, ok, err := f.Get(s, tc.key)
		if err != nil || !ok || v != tc.want || line != tc.line {
			t.Errorf("Get(%q) = %q, line %d, %v, %v; want %q, line %d", tc.key, v, line, ok, err, tc.want, tc.line)
		}
	}
	if _, _, ok, _ := f.Get(s, "findtime"); ok {
		t.Errorf("Get(findtime) found a key nobody set")
	}

	for _, tc := range []struct{ name, src, wantErr string }{
		{"no section", "a = 1\n", "jail.local:1: a value before the first [section]"},
		{"bad header", "[x\n", "jail.local:1: section header"},
		{"not key value", "[x]\njunk\n", `jail.local:2: "junk" is not "key = value"`},
		{"orphan continuation", "[x]\n\n  more\n", "jail.local:3: indented line continues no value"},
	} {
		if _, err := Parse("jail.local", []byte(tc.src)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Parse error = %v, want %q", tc.name, err, tc.wantErr)
		}
	}

	loop, err := Parse("j", []byte("[x]\na = %(b)s\nb = %(a)s\nc = %(nope)s\nd = 5%\n"))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"a": "nested", "c": "names no key", "d": "must be written %%"} {
		if _, _, _, err := loop.Get(loop.Section("x"), key); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Get(%s) error = %v, want %q", key, err, want)
		}
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"600", 10 * time.Minute, false},
		{"-1", -1, false},
		{"10m", 10 * time.Minute, false},
		{"1h 30m", 90 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"2d", 48 * time.Hour, false},
		{"1w", 7 * 24 * time.Hour, false},
		{"10 minutes", 10 * time.Minute, false},
		{"1.5h", 90 * time.Minute, false},
		{"hour", time.Hour, false},
		{"5 fortnights", 0, true},
		{"", 0, true},
		{"1x", 0, true},
	} {
		got, err := ParseTime(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseTime(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// FuzzParse checks that any jail file parses or fails with a
// line inside the file, that every key of every section can be read, and
// that times are never negative other than "permanent" (-1).
func FuzzParse(f *testing.F) {
	// Sections, continuations, interpolation, comments, times.
	for _, s := range []string{
		"[DEFAULT]\nignoreip = 127.0.0.1/8\n  ::1\n[sshd]\nenabled = true\n",
		"[a]\nx = %(y)s\ny = %(x)s\n", "[a]\nbantime = 1h 30m ; c\n", "a = 1", "[a\n", "[a]\n  x\n",
		"[a]\nfilter = %(__name__)s[mode=x]\nfindtime: 1 day\n", "[a]\nb = 100%%\nc = 5%\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		jf, err := Parse("j", []byte(src))
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Line < 1 || e.Line > strings.Count(src, "\n")+2 {
				t.Fatalf("error %v: no line inside the file", err)
			}
			return
		}
		for _, s := range jf.Sections {
			for key := range s.keys {
				v, _, ok, err := jf.Get(s, key)
				if !ok {
					t.Fatalf("Get(%q) lost a key", key)
				}
				if err == nil {
					if d, err := ParseTime(v); err == nil && d < -1 {
						t.Fatalf("ParseTime(%q) = %v", v, d)
					}
				}
			}
		}
	})
}

// TestRaw checks that Raw returns a value as written, jail.conf's
// references unresolved, falling back to [DEFAULT], where Get fails.
func TestRaw(t *testing.T) {
	t.Parallel()
	jf, err := Parse("jail.local", []byte("[DEFAULT]\naction = %(action_mw)s\n\n[nginx-http-auth]\nenabled = true\n\n[sshd]\naction = %(action_)s\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		section, want string
		line          int
	}{
		{"nginx-http-auth", "%(action_mw)s", 2},
		{"sshd", "%(action_)s", 8},
	} {
		v, line, ok := jf.Raw(jf.Section(tc.section), "action")
		if !ok || v != tc.want || line != tc.line {
			t.Errorf("Raw(%s, action) = %q, %d, %v; want %q, %d, true", tc.section, v, line, ok, tc.want, tc.line)
		}
		if _, _, _, err := jf.Get(jf.Section(tc.section), "action"); err == nil {
			t.Errorf("Get(%s, action) resolved a reference this file does not define", tc.section)
		}
	}
	if _, _, ok := jf.Raw(jf.Section("sshd"), "destemail"); ok {
		t.Errorf("Raw(sshd, destemail) found a key nobody set")
	}
}
