package filter

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"gatehouse/rules/testenv"
)

// pythonSearch returns, for each line, the groups of Python's re.search of
// pattern on it (nil: no match; a group that did not take part is "\x00").
func pythonSearch(t *testing.T, pattern string, lines []string) [][]string {
	t.Helper()
	py := testenv.Tool(t, "python3")
	in, err := json.Marshal(map[string]any{"re": pattern, "lines": lines})
	if err != nil {
		t.Fatal(err)
	}
	const script = `
import json, re, sys
d = json.load(sys.stdin)
r = re.compile(d["re"])
out = []
for l in d["lines"]:
    m = r.search(l)
    out.append(None if m is None else [l[m.start():m.end()]] + [("\x00" if g is None else g) for g in m.groups()])
json.dump(out, sys.stdout)
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(string(in))
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var out [][]string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// suffixes returns every string of up to n bytes over alphabet.
func suffixes(alphabet string, n int) []string {
	out := []string{""}
	level := []string{""}
	for range n {
		var next []string
		for _, s := range level {
			for _, c := range alphabet {
				next = append(next, s+string(c))
			}
		}
		out = append(out, next...)
		level = next
	}
	return out
}

// TestTrailingNegLookahead compares the rewritten trailing negative
// look-ahead with Python's re on every short continuation of the literals
// it names: same verdict, same groups.
func TestTrailingNegLookahead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, re, stem, alphabet string
		n                        int
	}{
		{"alternatives sharing a start", `^a (\w+) b:(?! xy| xz|q\.)`, "a w b:", " xyzq.", 4},
		{"prefix of another", `(\d+)x(?!ab|abc)`, "12x", "abc", 4},
		{"escaped and punctuation", `^k=(\S*)(?!\(\)|-=)`, "k=", "()-=", 3},
		{"empty alternative", `^a(?!)`, "a", "a", 1},
		{"in a branch", `^z|y(?!ab)`, "y", "ab", 3},
		{"local flag elsewhere", `^(?i:ab) c(?!D)`, "aB c", "Dd", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := translate(tc.re)
			if err != nil {
				t.Fatalf("translate(%q): %v", tc.re, err)
			}
			re, err := regexp.Compile(out)
			if err != nil {
				t.Fatalf("regexp.Compile(%q): %v", out, err)
			}
			var lines []string
			for _, s := range suffixes(tc.alphabet, tc.n) {
				lines = append(lines, tc.stem+s, "-"+tc.stem+s)
			}
			want := pythonSearch(t, tc.re, lines)
			for i, l := range lines {
				m := re.FindStringSubmatch(l)
				if (m == nil) != (want[i] == nil) {
					t.Fatalf("%q on %q: match %v, Python %v", out, l, m != nil, want[i] != nil)
				}
				if m == nil {
					continue
				}
				idx := re.FindStringSubmatchIndex(l)
				for g := 1; g < len(m); g++ {
					got := m[g]
					if idx[2*g] < 0 {
						got = "\x00"
					}
					if got != want[i][g] {
						t.Fatalf("%q on %q: group %d = %q, Python %q", out, l, g, got, want[i][g])
					}
				}
			}
		})
	}
	for _, re := range []string{`a(?!b)c`, `a(?!b+)`, `(?i)a(?!b)`, `a(?!<HOST>)`} {
		if _, err := translate(re); err == nil || !strings.Contains(err.Error(), "negative look-ahead") {
			t.Errorf("translate(%q) = %v, want the negative look-ahead refused", re, err)
		}
	}
}

// TestUpperWordNot compares upperWordNot with the look-ahead it replaces in
// the postfix filter, on every short word over the letters that matter.
func TestUpperWordNot(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^` + upperWordNot("DATA", "AUTH") + ` `)
	var lines []string
	for _, s := range suffixes("ADTHUX", 5) {
		lines = append(lines, s+" from")
	}
	want := pythonSearch(t, `^(?!(?:DATA|AUTH)\b)[A-Z]+ `, lines)
	for i, l := range lines {
		if got := re.MatchString(l); got != (want[i] != nil) {
			t.Errorf("upperWordNot(DATA, AUTH) on %q = %v, Python %v", l, got, want[i] != nil)
		}
	}
}
