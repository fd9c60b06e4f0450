package filter

import (
	"fmt"
	"strings"
)

// Address expressions the host tags expand to. They follow fail2ban's
// failregex.py R_HOST table: an IPv4 address optionally written as an
// IPv4-mapped IPv6 address, an IPv6 address optionally in brackets, and a DNS
// name. fail2ban's IPv6 expression ends in `(?<=:):`; every repetition of the
// group before it ends in a colon, so the look-behind always holds and a
// plain colon is the same language.
const (
	reIP4  = `(?:\d{1,3}\.){3}\d{1,3}`
	reIP6  = `(?:[0-9a-fA-F]{1,4}::?|:){1,7}(?:[0-9a-fA-F]{1,4}|:)`
	reCIDR = `(?P<cidr>\d+)`

	tagIP4  = `(?:::f{4,6}:)?(?P<ip4>` + reIP4 + `)`
	tagIP6  = `(?P<ip6>` + reIP6 + `)`
	tagDNS  = `(?P<dns>[\w\-.^_]*\w)`
	tagAddr = `\[?(?:` + tagIP4 + `|` + tagIP6 + `)\]?`
	tagHost = `(?:` + tagAddr + `|` + tagDNS + `)`
	tagSub  = `\[?(?:` + tagIP4 + `|` + tagIP6 + `)(?:/` + reCIDR + `)?\]?`
)

// staticTags are the tags replaced by a fixed expression, keyed by the text
// between the angle brackets.
var staticTags = map[string]string{
	"HOST": tagHost, "ADDR": tagAddr, "F-ADDR/": tagAddr,
	"IP4": tagIP4, "F-IP4/": tagIP4, "IP6": tagIP6, "F-IP6/": tagIP6,
	"DNS": tagDNS, "F-DNS/": tagDNS, "CIDR": reCIDR, "F-CIDR/": reCIDR,
	"SUBNET": tagSub, "F-SUBNET/": tagSub,
	"F-ID/": `(?P<fid>\S+)`, "F-PORT/": `(?P<fport>\w+)`,
}

// TranslateError says why a fail2ban regular expression cannot be compiled
// with Go's regexp (RE2). Offset is the byte offset in the expression as
// written.
type TranslateError struct {
	Offset int
	What   string
}

func (e *TranslateError) Error() string {
	return fmt.Sprintf("offset %d: %s", e.Offset, e.What)
}

// groupName maps an F- tag name to the capture group fail2ban stores it
// under: lower case, with ID and PORT renamed (failregex.py R_MAP).
func groupName(tag string) string {
	n := strings.ToLower(tag)
	switch n {
	case "id":
		return "fid"
	case "port":
		return "fport"
	}
	return n
}

// translate rewrites a fail2ban regular expression (Python syntax with
// fail2ban tags) into RE2 syntax. Tags expand as fail2ban expands them with
// usedns=yes; unknown tags stay literal, as in fail2ban. Python constructs
// RE2 lacks are errors naming the construct.
func translate(re string) (string, error) {
	head, tail := re, ""
	if h, lits, ok := trailingNegLookahead(re); ok {
		head, tail = h, notPrefix(lits...)
	}
	if err := checkSyntax(head); err != nil {
		// what RE2 lacks may still have an exact rewrite
		exp, err2 := expandTags(re)
		if err2 != nil {
			return "", err2
		}
		out, err3 := rewritePython(exp)
		if err3 != nil {
			return "", err
		}
		return out, nil
	}
	out, err := expandTags(head)
	if err != nil {
		return "", err
	}
	return out + tail, nil
}

// expandTags replaces fail2ban's tags of re by RE2 expressions and
// Python's \Z by \z.
func expandTags(re string) (string, error) {
	var b strings.Builder
	open := map[string]bool{}
	for i := 0; i < len(re); {
		c := re[i]
		if c == '\\' && i+1 < len(re) {
			// Python's \Z is RE2's \z; everything else escaped passes through.
			if re[i+1] == 'Z' {
				b.WriteString(`\z`)
			} else {
				b.WriteString(re[i : i+2])
			}
			i += 2
			continue
		}
		if c == '<' {
			if end := tagEnd(re, i); end > 0 {
				tag := re[i+1 : end]
				if rep, ok := staticTags[tag]; ok {
					b.WriteString(rep)
					i = end + 1
					continue
				}
				if tag == "SKIPLINES" {
					return "", &TranslateError{i, "<SKIPLINES> needs maxlines > 1, which is not supported"}
				}
				if name, ok := strings.CutPrefix(tag, "/F-"); ok && isTagName(name) {
					if open[name] {
						b.WriteByte(')')
						i = end + 1
						continue
					}
				} else if name, ok := strings.CutPrefix(tag, "F-"); ok && isTagName(name) {
					open[name] = true
					b.WriteString("(?P<" + groupName(name) + ">")
					i = end + 1
					continue
				}
			}
		}
		b.WriteByte(c)
		i++
	}
	return b.String(), nil
}

// trailingNegLookahead splits re = head + "(?!a|b…)" where the look-ahead
// ends the expression and holds only literal alternatives. Nothing follows
// it, so it is the same as matching, after head, a text that does not
// start with a, b…, which notPrefix spells in RE2 (consuming a character
// or two more, which changes no verdict and no group). An expression
// starting with a global (?i) is left alone: the literals would have to
// fold case.
func trailingNegLookahead(re string) (head string, lits []string, ok bool) {
	if !strings.HasSuffix(re, ")") || strings.HasPrefix(re, "(?i") {
		return "", nil, false
	}
	for start := strings.LastIndex(re, "(?!"); start >= 0; start = strings.LastIndex(re[:start], "(?!") {
		if escaped(re, start) {
			continue
		}
		body := re[start+3 : len(re)-1]
		var cur strings.Builder
		good := true
		for i := 0; i < len(body) && good; i++ {
			c := body[i]
			switch {
			case c == '\\' && i+1 < len(body) && !isWord(body[i+1]):
				cur.WriteByte(body[i+1])
				i++
			case c == '|':
				lits = append(lits, cur.String())
				cur.Reset()
			case strings.IndexByte(`\.^$*+?{}[]()<`, c) >= 0:
				good = false
			default:
				cur.WriteByte(c)
			}
		}
		lits = append(lits, cur.String())
		if good {
			return re[:start], lits, true
		}
		return "", nil, false
	}
	return "", nil, false
}

// tagEnd returns the index of the '>' closing a tag opened at re[i], or -1.
// Tags are fail2ban's `</?[\w\-]+/?>`.
func tagEnd(re string, i int) int {
	j := i + 1
	if j < len(re) && re[j] == '/' {
		j++
	}
	start := j
	for j < len(re) && (isWord(re[j]) || re[j] == '-') {
		j++
	}
	if j == start {
		return -1
	}
	if j < len(re) && re[j] == '/' {
		j++
	}
	if j < len(re) && re[j] == '>' {
		return j
	}
	return -1
}

func isWord(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// isTagName reports whether s is a custom tag name fail2ban accepts after
// "F-": upper case letters, digits, '_' and '-'.
func isTagName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkSyntax finds Python regular expression constructs that RE2 cannot
// express: look-arounds, back-references, conditionals, atomic groups and
// possessive quantifiers. RE2 rejects some of them itself, but with a message
// about its own syntax; this names what the fail2ban expression asked for.
func checkSyntax(re string) error {
	for i := 0; i < len(re); i++ {
		c := re[i]
		switch {
		case c == '\\' && i+1 < len(re):
			n := re[i+1]
			if n >= '1' && n <= '9' {
				return &TranslateError{i, fmt.Sprintf("back-reference \\%c: RE2 cannot match back-references", n)}
			}
			i++
		case c == '[':
			i = classEnd(re, i)
		case c == '(' && strings.HasPrefix(re[i:], "(?"):
			rest := re[i+2:]
			var what string
			switch {
			case strings.HasPrefix(rest, "="):
				what = "look-ahead (?=…)"
			case strings.HasPrefix(rest, "!"):
				what = "negative look-ahead (?!…)"
			case strings.HasPrefix(rest, "<="):
				what = "look-behind (?<=…)"
			case strings.HasPrefix(rest, "<!"):
				what = "negative look-behind (?<!…)"
			case strings.HasPrefix(rest, "P="):
				what = "named back-reference (?P=…)"
			case strings.HasPrefix(rest, "("):
				what = "conditional group (?(…)…|…)"
			case strings.HasPrefix(rest, ">"):
				what = "atomic group (?>…)"
			case strings.HasPrefix(rest, "#"):
				what = "comment group (?#…)"
			}
			if what != "" {
				return &TranslateError{i, what + ": RE2 has no such construct"}
			}
		case (c == '+') && i > 0 && strings.IndexByte("*+?}", re[i-1]) >= 0 && !escaped(re, i-1):
			return &TranslateError{i, "possessive quantifier: RE2 has no such construct"}
		}
	}
	return nil
}

// classEnd returns the index of the ']' that closes the character class
// opened by the '[' at re[i], or len(re) when none does. A ']' right after
// '[' or '[^' is a literal; a backslash escapes the next byte.
func classEnd(re string, i int) int {
	i++
	if i < len(re) && re[i] == '^' {
		i++
	}
	if i < len(re) && re[i] == ']' {
		i++
	}
	for ; i < len(re); i++ {
		switch re[i] {
		case '\\':
			i++
		case ']':
			return i
		}
	}
	return len(re)
}

// escaped reports whether re[i] is preceded by an odd number of backslashes.
func escaped(re string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && re[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}
