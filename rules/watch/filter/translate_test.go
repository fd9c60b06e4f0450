package filter

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"none", Config{}, "no failregex"},
		{"lookahead", Config{FailRegex: []string{`^ok <HOST>`, `^x (?!y)<HOST>`}}, "failregex[1]: offset 3: negative look-ahead"},
		{"lookbehind", Config{FailRegex: []string{`(?<=a)<HOST>`}}, "look-behind"},
		{"backref", Config{FailRegex: []string{`(a)\1 <HOST>`}}, `back-reference \1`},
		{"conditional", Config{FailRegex: []string{`(?:(?P<x>a)|b)*(?(x)b|c) <HOST>`}}, "conditional group"},
		{"atomic", Config{FailRegex: []string{`(?>a+) <HOST>`}}, "atomic group"},
		{"possessive", Config{FailRegex: []string{`a++ <HOST>`}}, "possessive quantifier"},
		{"no host", Config{FailRegex: []string{`^failed`}}, "failregex[0]: no <HOST>"},
		{"ignore", Config{FailRegex: []string{`<HOST>`}, IgnoreRegex: []string{`(?=x)`}}, "ignoreregex[0]"},
		{"prefregex", Config{PrefRegex: `(`, FailRegex: []string{`<HOST>`}}, "prefregex[0]"},
		{"maxlines", Config{FailRegex: []string{`<HOST>`}, MaxLines: 2}, "maxlines 2"},
		{"datepattern", Config{FailRegex: []string{`<HOST>`}, DatePattern: `%Q`}, "%Q is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Compile(%+v) = %v, want error containing %q", tc.cfg, err, tc.wantErr)
			}
		})
	}
	var re *RegexError
	if _, err := Compile(Config{FailRegex: []string{`(?=x)<HOST>`}}); !errors.As(err, &re) || re.Index != 0 || re.Field != "failregex" {
		t.Errorf("Compile error %v is not a RegexError for failregex[0]", err)
	}
}

func TestCustomFilter(t *testing.T) {
	t.Parallel()
	f, err := Compile(Config{
		FailRegex:   []string{`^\s*auth failed for <F-USER>\S+</F-USER> from <HOST>$`},
		IgnoreRegex: []string{`from 192\.0\.2\.9$`},
		DatePattern: `^%Y-%m-%d %H:%M:%S`,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line, host, name, user string
		kind                   Kind
	}{
		{"2024-05-01 10:00:00 auth failed for bob from 203.0.113.7", "203.0.113.7", "", "bob", Fail},
		{"2024-05-01 10:00:00 auth failed for bob from ::ffff:203.0.113.8", "203.0.113.8", "", "bob", Fail},
		{"2024-05-01 10:00:00 auth failed for bob from [2001:db8::1]", "2001:db8::1", "", "bob", Fail},
		{"2024-05-01 10:00:00 auth failed for eve from mail.example.com", "", "mail.example.com", "eve", Fail},
		{"2024-05-01 10:00:00 auth failed for bob from 192.0.2.9", "", "", "", Ignored},
		{"2024-05-01 10:00:00 auth ok for bob from 203.0.113.7", "", "", "", NoMatch},
	} {
		r := f.Match(tc.line)
		host := ""
		if r.Host.IsValid() {
			host = r.Host.String()
		}
		if r.Kind != tc.kind || host != tc.host || r.HostName != tc.name || (tc.kind == Fail && r.User != tc.user) {
			t.Errorf("Match(%q) = %v %q %q user %q, want %v %q %q user %q", tc.line, r.Kind, host, r.HostName, r.User, tc.kind, tc.host, tc.name, tc.user)
		}
		if tc.kind == Fail && r.Time.Format("2006-01-02 15:04:05") != "2024-05-01 10:00:00" {
			t.Errorf("Match(%q).Time = %v, want 2024-05-01 10:00:00", tc.line, r.Time)
		}
	}
}

// FuzzTranslate checks the translation of fail2ban expressions: it never
// panics, it is deterministic, text without tags or escapes is unchanged,
// and every <HOST> becomes the three address groups.
// An escaped "\<" is a literal bracket here, so "\<HOST>" is not a tag
// (fail2ban would expand it after the backslash); the seed under
// testdata/fuzz pins that.
func FuzzTranslate(f *testing.F) {
	// fail2ban tags and custom groups
	f.Add(`^Failed \S+ for <F-USER>.*?</F-USER> from <HOST>( port \d+)?$`)
	f.Add(`<ADDR> <IP4> <IP6> <DNS> <SUBNET> <F-ID/> <F-PORT/> </F-X> <unknown>`)
	// Python-only syntax
	f.Add(`(?!x)(?<=y)(?P=n)\1(?(c)a|b)(?>a)a*+`)
	// character classes and escapes
	f.Add(`[<HOST>\]](?:\<HOST>)\Z`)
	f.Fuzz(func(t *testing.T, s string) {
		out, err := translate(s)
		out2, err2 := translate(s)
		if out != out2 || (err == nil) != (err2 == nil) {
			t.Fatalf("translate(%q) is not deterministic", s)
		}
		if err != nil {
			var te *TranslateError
			if !errors.As(err, &te) || te.Offset < 0 || te.Offset >= len(s) {
				t.Fatalf("translate(%q) error %v has no offset inside the input", s, err)
			}
			return
		}
		if !strings.ContainsAny(s, `<\`) && out != s {
			t.Fatalf("translate(%q) = %q, want it unchanged", s, out)
		}
		if re, err := regexp.Compile(out); err == nil && strings.Contains(s, "<HOST>") && !strings.Contains(s, `\<`) {
			names := strings.Join(re.SubexpNames(), ",")
			if !strings.Contains(names, "ip4") || !strings.Contains(names, "ip6") || !strings.Contains(names, "dns") {
				t.Fatalf("translate(%q) = %q lost the address groups", s, out)
			}
		}
	})
}
