package filter

import (
	"slices"
	"testing"
	"time"

	"gatehouse/rules/watch/filter/corpus"
)

// FuzzFastPaths checks that every shortcut Filter takes gives what the
// regex engine gives: the syslog date reader the default date pattern's
// span and time, the prefregex head the full prefregex's groups, and the
// literal pre-checks never refuse a line a regex matches. Seeds are the
// lines of fail2ban's sample logs of the built-in filters.
func FuzzFastPaths(f *testing.F) {
	for _, name := range []string{"sshd", "postfix", "dovecot", "vsftpd", "proftpd", "nginx-http-auth"} {
		if corpusDir(nil) == "" {
			break
		}
		for _, l := range corpusLogLines(f, name) {
			f.Add(l)
		}
	}
	// dates the reader must leave to the regex: year, fraction, bracket,
	// three-digit day, out of range
	f.Add("Jun 21 16:47:48 2024 host sshd[1]: x")
	f.Add("Jun 21 16:47:48.123 host sshd[1]: x")
	f.Add("Jun 21 16:47:48] host")
	f.Add("Jun 211 16:47:48 host")
	f.Add("Feb 30 24:00:00 host")
	f.Add("Feb 29 23:59:59\thost")
	var filters []*Filter
	for _, name := range Builtins() {
		modes, _, _ := Modes(name)
		for _, m := range modes {
			cfg, err := Builtin(name, m)
			if err != nil {
				f.Fatal(err)
			}
			cfg.Location, cfg.Now = time.UTC, func() time.Time { return time.Unix(corpus.Now, 0) }
			flt, err := Compile(cfg)
			if err != nil {
				f.Fatal(err)
			}
			filters = append(filters, flt)
		}
	}
	d, err := newDateDetector("{^LN-BEG}", time.UTC, func() time.Time { return time.Unix(corpus.Now, 0) })
	if err != nil {
		f.Fatal(err)
	}
	slow := *d
	slow.fast = false
	f.Fuzz(func(t *testing.T, line string) {
		if e, tm, ok := d.syslogDate(line); ok {
			s2, e2, tm2, found, ok2 := slow.find(line)
			if !found || !ok2 || s2 != 0 || e2 != e || !tm2.Equal(tm) {
				t.Fatalf("syslogDate(%q) = %d %v, the templates find %v %v %d:%d %v", line, e, tm, found, ok2, s2, e2, tm2)
			}
		}
		for _, flt := range filters {
			if flt.head != nil {
				full := flt.pref.re.FindStringSubmatchIndex(line)
				m, matched, ok := flt.head.match(line)
				if ok && (matched != (full != nil) || matched && !slices.Equal(m, full)) {
					t.Fatalf("prefregex head on %q = %v %v, full prefregex %v (%s)", line, m, matched, full, flt.pref.re)
				}
			}
			if flt.lits != nil {
				var all []string
				for _, r := range flt.fail {
					all = append(all, r.lits...)
				}
				if flt.lits.containedIn(line) != containsAny(line, all) {
					t.Fatalf("litSet.containedIn(%q) = %v, want %v", line, !containsAny(line, all), containsAny(line, all))
				}
			}
			for _, r := range flt.fail {
				if !r.re.MatchString(line) {
					continue
				}
				if r.lead != nil && !hasAnyPrefix(line, r.lead) || !hasSeq(line, r.seq) || r.lits != nil && !containsAny(line, r.lits) {
					t.Fatalf("pre-checks refuse %q, which %s matches (lead %q, seq %q, lits %q)", line, r.re, r.lead, r.seq, r.lits)
				}
			}
		}
	})
}

func TestRequiredSeq(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, re string
		want     []string
	}{
		{"concat", `^Failed \S+ for (?:invalid user )?\S+ from \d+: x`, []string{"Failed ", " for ", " from ", ": x"}},
		{"capture", `ab(cd)ef`, []string{"abcdef"}},
		{"plus", `ab(?:cd)+ef`, []string{"ab", "cd", "ef"}},
		{"optional breaks", `ab(?:cd)?ef`, []string{"ab", "ef"}},
		{"fold", `(?i:ab)cd`, []string{"cd"}},
		{"single chars dropped", `a\d+b`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := requiredSeq(tc.re); !slices.Equal(got, tc.want) {
				t.Errorf("requiredSeq(%q) = %q, want %q", tc.re, got, tc.want)
			}
		})
	}
	if !hasSeq("xx abab cd", []string{"ab", "ab", "cd"}) || hasSeq("abcd", []string{"cd", "ab"}) || hasSeq("aba", []string{"ab", "ba"}) {
		t.Error("hasSeq: order or overlap not respected")
	}
}
