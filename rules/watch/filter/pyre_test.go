package filter

import (
	"regexp"
	"strings"
	"testing"
)

// TestPythonRewrites compares the rewritten conditionals and look-ahead
// idioms with Python's re on every short text over the characters that
// matter: same verdict, same groups.
func TestPythonRewrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, re, stem, alphabet string
		n                        int
	}{
		{"up to the first literal", `^u (?P<u>(?:(?! fr ).)*?) fr (?P<h>\w+)$`, "u ", " frx", 7},
		{"self-overlapping literal", `^(?P<u>(?:(?!aab).)*?)aab(?P<r>.*)$`, "", "abc", 7},
		{"rest without the literal", `^x(?P<a>\w*)(?:(?:(?! fr ).)*)$`, "x", " frx", 7},
		{"optional group decides", `^(?P<c>i )?(?P<u>(?(c)\S+|[^:]+)) f(?(c):|;)$`, "", "i :;fx", 6},
		{"alternative decides", `^(?P<u>(?P<c>\S+)|(?:(?! f ).)*?) f (?P<h>\w)(?(c): |(?:(?:(?! f ).)*)$)`, "", " f:x", 8},
		{"unrelated choice first", `^(?:(?P<n>p)|\S+) (?P<ci>i )?(?P<u>(?P<cu>\S+)|(?(ci)(?:(?! f ).)*?|[^:]+)) f (?P<h>\w)(?(cu): |(?:(?:(?! f ).)*)$)`, "", " fip:x", 8},
		{"not a word", `^n (?:(?:\w+ (?!fo\b)){0,2}\w+) fo\.`, "n ", "fo .", 9},
		{"not a word at the end", `^n (?:(?:\w+ (?!fo\b)){0,2}\w+)`, "n ", "fo .", 8},
		{"both", `^F (?P<ci>i )?(?P<u>(?P<cu>\S+)|(?(ci)(?:(?! f ).)*?|[^:]+)) f (?P<h>\w)(?(cu): |(?:(?:(?! f ).)*)$)`, "F ", " fi:x", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := rewritePython(tc.re)
			if err != nil {
				t.Fatalf("rewritePython(%q): %v", tc.re, err)
			}
			re, err := regexp.Compile(out)
			if err != nil {
				t.Fatalf("regexp.Compile(%q): %v", out, err)
			}
			var lines []string
			for _, s := range suffixes(tc.alphabet, tc.n) {
				lines = append(lines, tc.stem+s)
			}
			want := pythonSearch(t, tc.re, lines)
			names := re.SubexpNames()
			pyNames := pythonGroupNames(tc.re)
			for i, l := range lines {
				m := re.FindStringSubmatchIndex(l)
				if (m == nil) != (want[i] == nil) {
					t.Fatalf("%q on %q: match %v, Python %v", out, l, m != nil, want[i] != nil)
				}
				if m == nil {
					continue
				}
				if got := l[m[0]:m[1]]; got != want[i][0] {
					t.Fatalf("%q on %q: match %q, Python %q", out, l, got, want[i][0])
				}
				for g, name := range pyNames {
					got := "\x00"
					for k, n := range names {
						if n == name && m[2*k] >= 0 {
							got = l[m[2*k]:m[2*k+1]]
							break
						}
					}
					if got != want[i][g+1] {
						t.Fatalf("%q on %q: group %s = %q, Python %q", out, l, name, got, want[i][g+1])
					}
				}
			}
		})
	}
	for _, re := range []string{
		`a(?:(?!b).)*c`,         // not followed by its literal nor the end
		`(?P<c>x)?y(?(d)a|b)`,   // no group decides
		`(?:x(?P<c>y)?)(?(c)a)`, // decided inside an optional part
		`(?=a)b`,
	} {
		if out, err := rewritePython(re); err == nil {
			t.Errorf("rewritePython(%q) = %q, want it refused", re, out)
		}
	}
}

// pythonGroupNames lists the capture groups of a Python expression in
// order, unnamed ones as "".
func pythonGroupNames(re string) []string {
	var out []string
	for i := 0; i < len(re); i++ {
		switch {
		case re[i] == '\\':
			i++
		case strings.HasPrefix(re[i:], "(?("):
			i += strings.IndexByte(re[i:], ')')
		case strings.HasPrefix(re[i:], "(?P<"):
			j := strings.IndexByte(re[i:], '>')
			out = append(out, re[i+4:i+j])
		case re[i] == '(' && (i+1 == len(re) || re[i+1] != '?'):
			out = append(out, "")
		}
	}
	return out
}

// FuzzRewritePython rewrites any expression: it never panics, and what it
// returns compiles with RE2.
func FuzzRewritePython(f *testing.F) {
	f.Add(`^F (?P<ci>i )?(?P<u>(?P<cu>\S+)|(?(ci)(?:(?! f ).)*?|[^:]+)) f (?P<h>\w)(?(cu): |(?:(?:(?! f ).)*)$)`)
	f.Add(`^n (?:(?:\w+ (?!fo\b)){0,2}\w+) fo\.`)
	f.Add(`a{2,}b{,3}c{x}(?#c)(?i:d)[]a](?=e)`)
	f.Fuzz(func(t *testing.T, re string) {
		out, err := rewritePython(re)
		if err != nil {
			return
		}
		if _, err := regexp.Compile(out); err != nil {
			t.Fatalf("rewritePython(%q) = %q, which RE2 refuses: %v", re, out, err)
		}
	})
}
