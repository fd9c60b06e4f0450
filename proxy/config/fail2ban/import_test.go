package fail2ban

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/proxy/config"
	"gatehouse/rules/watch/filter"
)

// TestImport maps the hand-written directory testdata/importdir: a
// shipped-looking sshd (built-in), a custom filter on a file and on the
// journal, recidive, a look-behind RE2 refuses, a multi-line filter,
// bantime -1, bantime.increment, ignoreip with a host name, a mail action
// and ban actions on different ports.
func TestImport(t *testing.T) {
	t.Parallel()
	im, err := Import(os.DirFS("testdata/importdir"), ImportConfig{Dir: "/etc/fail2ban"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	watches := map[string]config.Watch{}
	for _, w := range im.Watches {
		names = append(names, w.Watch.Name)
		watches[w.Watch.Name] = w.Watch
	}
	if want := []string{"sshd", "demo", "journal-demo", "recidive"}; !slices.Equal(names, want) {
		t.Fatalf("watches = %q, want %q", names, want)
	}
	if w := watches["sshd"]; w.Filter.Builtin != "sshd" || w.Mode != "normal" || !slices.Equal(w.Files, []string{"/var/log/auth.log"}) || w.Jail != "sshd" {
		t.Errorf("sshd = %+v %+v, want the built-in sshd in mode normal on /var/log/auth.log", w, w.Filter)
	}
	d := watches["demo"]
	if d.Filter.Builtin != "" || len(d.Filter.FailRegex) != 2 || len(d.Filter.IgnoreRegex) != 1 || d.Filter.DatePattern != "{^LN-BEG}" {
		t.Errorf("demo filter = %+v, want its two failregex, one ignoreregex and datepattern", d.Filter)
	}
	if want := `^\S+ demod\[\d+\]:login failed for <F-USER>\S+</F-USER> from <HOST>$`; d.Filter.FailRegex[0] != want {
		t.Errorf("demo failregex[0] = %q, want %q (interpolated)", d.Filter.FailRegex[0], want)
	}
	// Every carried watch compiles as serve compiles it, and judges.
	for _, w := range im.Watches {
		cfg, err := config.WatchFilterConfig(w.Watch)
		if err != nil {
			t.Fatalf("%s: %v", w.Watch.Name, err)
		}
		f, err := filter.Compile(cfg)
		if err != nil {
			t.Fatalf("%s: Compile: %v", w.Watch.Name, err)
		}
		if w.Watch.Name == "demo" {
			r := f.Match("host demod[12]:login failed for bob from 192.0.2.9")
			if r.Kind != filter.Fail || r.Host.String() != "192.0.2.9" || r.User != "bob" {
				t.Errorf("demo on a failed login = %+v, want fail by 192.0.2.9 for bob", r)
			}
			if r := f.Match("host demod[12]:login failed for test from 192.0.2.9"); r.Kind != filter.Ignored {
				t.Errorf("demo on the ignored user = %v, want ignored", r.Kind)
			}
		}
	}
	// The identifier is one term of an AND with the unit: the unit alone
	// is carried (an identifier alone could be forged by any user).
	if j := watches["journal-demo"].Journal; j == nil || !slices.Equal(j.Units, []string{"demo.service"}) || len(j.Identifiers) != 0 {
		t.Errorf("journal-demo journal = %+v, want demo.service alone", j)
	}
	if w := watches["recidive"]; w.Filter.Builtin != "recidive" || w.Journal == nil || len(w.Files) != 0 {
		t.Errorf("recidive = %+v, want the built-in recidive on gatehouse's journal", w)
	}
	jails := map[string]config.Jail{}
	for _, j := range im.Jails {
		jails[j.Name] = j.Jail
	}
	if j := jails["demo"]; j.MaxRetry != 3 || j.BanTime.D() != MaxBan || j.FindTime.D() != 10*time.Minute {
		t.Errorf("demo jail = %+v, want maxretry 3, bantime ten years (fail2ban's -1)", j)
	}
	if j := jails["journal-demo"]; j.Increment == nil || j.Increment.Factor != 2 || j.Increment.Max.D() != 7*24*time.Hour || j.BanTime.D() != 20*time.Minute {
		t.Errorf("journal-demo jail = %+v %+v, want a first ban of 20m (10m × factor 2), factor 2, max 7d", j, j.Increment)
	}
	if j := jails["recidive"]; j.BanTime.D() != 7*24*time.Hour || j.FindTime.D() != 24*time.Hour {
		t.Errorf("recidive jail = %+v, want bantime 1w, findtime 1d", j)
	}
	var allow []string
	for _, a := range im.Allow {
		allow = append(allow, a.Prefix.String())
	}
	if want := []string{"127.0.0.0/8", "::1/128", "192.0.2.7/32", "2001:db8::/32"}; !slices.Equal(allow, want) {
		t.Errorf("allow = %q, want %q (merged, each once)", allow, want)
	}
	if f := im.Firewall; f == nil || f.Backend != "nftables" || f.Ports != nil {
		t.Errorf("firewall = %+v, want nftables on every port (recidive's allports)", f)
	}
	if m := im.Mail; m == nil || !slices.Equal(m.To, []string{"ops@example.com"}) || m.From != "f2b@example.com" || !slices.Equal(m.Jails, []string{"demo"}) {
		t.Errorf("mail = %+v, want ops@example.com from f2b@example.com for demo", m)
	}
	var msgs []string
	for _, f := range im.NotCarried {
		msgs = append(msgs, f.String())
	}
	for _, want := range []string{
		"/etc/fail2ban/filter.d/lookbehind.conf:2: jail lookbehind: not carried: filter lookbehind: ",
		"/etc/fail2ban/filter.d/multi.conf:3: jail multi: not carried",
		`/etc/fail2ban/jail.d/enable.conf:3: jail sshd: ignoreip "backup.example.com" is not carried`,
		"/etc/fail2ban/jail.conf:39: jail recidive: logpath /var/log/fail2ban.log is not carried",
		"/etc/fail2ban/jail.d/enable.conf:2: jail sshd: fail2ban dropped ports 22 of a banned address; gatehouse's kernel sets drop every port",
		"gatehouse mails every ban; fail2ban mailed bans of demo only",
		`jail journal-demo: journalmatch "_SYSTEMD_UNIT=demo.service SYSLOG_IDENTIFIER=demod" is carried as _SYSTEMD_UNIT=demo.service: gatehouse selects by unit alone`,
		"/etc/fail2ban/jail.d/enable.conf:3: jail sshd: ignoreip is carried to allow, which no jail counts nor bans",
	} {
		if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, want) }) {
			t.Errorf("NotCarried lacks %q:\n%s", want, strings.Join(msgs, "\n"))
		}
	}
	if !strings.Contains(strings.Join(msgs, "\n"), "look-behind") {
		t.Errorf("the look-behind finding does not name RE2's reason:\n%s", strings.Join(msgs, "\n"))
	}
}

// TestImportChangedFilter: a filter changed by a .local, or a jail's own
// failregex, is carried as regexes, never as the built-in filter of the
// same name.
func TestImportChangedFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file, text, wantNote string
	}{
		{"filter .local", "filter.d/sshd.local", "[Definition]\nfailregex = ^Bad login from <HOST>$\n", "filter.d/sshd.local changes it"},
		{"jail failregex", "jail.local", "[sshd]\nfailregex = ^Bad login from <HOST>$\n", "the jail sets failregex (jail.local:2)"},
		{"filter argument", "jail.local", "[sshd]\nfilter = sshd[mode=normal, publickey=any]\n", "the jail passes publickey to it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS("testdata/importdir")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			im, err := Import(os.DirFS(dir), ImportConfig{})
			if err != nil {
				t.Fatal(err)
			}
			w := im.Watches[0]
			if w.Watch.Name != "sshd" || w.Watch.Filter.Builtin != "" || len(w.Watch.Filter.FailRegex) == 0 || w.Watch.Mode != "" {
				t.Fatalf("sshd = %+v %+v, want regexes, not the built-in", w.Watch, w.Watch.Filter)
			}
			if !slices.ContainsFunc(w.Notes, func(n string) bool { return strings.Contains(n, tc.wantNote) }) {
				t.Errorf("notes = %q, want one saying %q", w.Notes, tc.wantNote)
			}
		})
	}
}

// TestImportSkip: jails a caller maps itself are left out without a
// finding.
func TestImportSkip(t *testing.T) {
	t.Parallel()
	im, err := Import(os.DirFS("testdata/importdir"), ImportConfig{Skip: func(d WatchDef) bool { return d.Name != "sshd" }})
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Watches) != 1 || im.Watches[0].Watch.Name != "sshd" || len(im.Jails) != 1 || im.Mail != nil {
		t.Errorf("Import with Skip = %+v, want sshd alone and no mail", im)
	}
	for _, f := range im.NotCarried {
		if !strings.Contains(f.Msg, "jail sshd") && !strings.Contains(f.Msg, "maxlines") {
			t.Errorf("finding on a skipped jail: %v", f)
		}
	}
}

func TestPortList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    []int
		all     bool
		wantErr string
	}{
		{"ssh", []int{22}, false, ""},
		{"http,https", []int{80, 443}, false, ""},
		{"0:65535", nil, true, ""},
		{"8000:8002, 22", []int{8000, 8001, 8002, 22}, false, ""},
		{"1000:9000", nil, false, "lists ports one by one"},
		{"gopher", nil, false, "not a number nor a service name"},
	} {
		got, all, err := portList(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("portList(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || all != tc.all || !slices.Equal(got, tc.want) {
			t.Errorf("portList(%q) = %v, %v, %v; want %v, %v", tc.in, got, all, err, tc.want, tc.all)
		}
	}
}

// TestImportReviewed: a journal sshd jail reads the built-in filter's
// units (Debian's unit is ssh.service; sshd.service is an alias fail2ban
// met through _COMM=sshd), and a first ban grown by bantime.factor past
// bantime.maxtime is capped, so the output passes check.
func TestImportReviewed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/importdir")); err != nil {
		t.Fatal(err)
	}
	local := "[DEFAULT]\nbantime.increment = true\nbantime.factor = 2\nbantime.maxtime = 1w\n\n[sshd]\nbackend = systemd\nbantime = 10d\n"
	if err := os.WriteFile(filepath.Join(dir, "jail.local"), []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	im, err := Import(os.DirFS(dir), ImportConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w := im.Watches[0]
	if w.Watch.Name != "sshd" || w.Watch.Journal == nil || len(w.Watch.Journal.Units) != 0 || len(w.Watch.Journal.Identifiers) != 0 {
		t.Fatalf("sshd = %+v, journal %+v; want journal: {} (the built-in units)", w.Watch, w.Watch.Journal)
	}
	j := im.Jails[0]
	if j.Jail.BanTime.D() != 7*24*time.Hour || j.Jail.Increment == nil || j.Jail.Increment.Max.D() != 7*24*time.Hour {
		t.Errorf("sshd jail = %+v, want the first ban capped at maxtime 1w", j.Jail)
	}
	if _, err := config.Parse("out.yaml", im.YAML()); err != nil {
		t.Errorf("imported config does not pass check: %v", err)
	}
}
