package config

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

// FuzzParseSize checks that ParseSize never panics, never returns a
// negative size, round-trips through FormatSize and ignores the case of
// the unit.
func FuzzParseSize(f *testing.F) {
	// Valid and invalid forms from the table: bare bytes, k/K/KB/KiB and
	// larger units, fractions, negatives, unknown units, overflow.
	for _, tc := range sizeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d, want a non-negative size", s, n)
		}
		if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v, want %d", n, FormatSize(n), back, err, n)
		}
		if up, err := ParseSize(strings.ToUpper(s)); err != nil || up != n {
			t.Errorf("ParseSize(%q) = %d, %v, want %d as ParseSize(%q)", strings.ToUpper(s), up, err, n, s)
		}
	})
}

// FuzzParsePrefix checks ParsePrefix against net/netip: a result is always
// masked and round-trips through String, and every masked, unmapped
// prefix netip accepts is accepted unchanged.
func FuzzParsePrefix(f *testing.F) {
	// CIDR and bare forms, mapped IPv4, host bits, bad lengths, zones.
	for _, tc := range prefixCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		if err != nil {
			if want, nerr := netip.ParsePrefix(s); nerr == nil && want == want.Masked() && !want.Addr().Is4In6() {
				t.Errorf("ParsePrefix(%q) = %v, but netip accepts %v", s, err, want)
			}
			return
		}
		if p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("ParsePrefix(%q) = %v, want a masked prefix without mapping or zone", s, p)
		}
		if back, err := ParsePrefix(p.String()); err != nil || back != p {
			t.Errorf("ParsePrefix(%q) = %v, %v, want %v", p.String(), back, err, p)
		}
	})
}

// FuzzParseHostPattern checks that parsing is idempotent: the normalised
// form of a pattern parses to itself.
func FuzzParseHostPattern(f *testing.F) {
	// Exact names, wildcards, IP literals, case and trailing dots, and the
	// invalid forms: ports, inner wildcards, non-ASCII, bad labels.
	for _, tc := range hostPatternCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHostPattern(s)
		if err != nil {
			return
		}
		if n := h.Name(); n == "" || strings.Contains(n, "*") || n != strings.ToLower(n) || strings.HasSuffix(n, ".") {
			t.Fatalf("ParseHostPattern(%q) = %q, want a lower-case name without \"*\" or a trailing dot", s, h)
		}
		if back, err := ParseHostPattern(h.String()); err != nil || back != h {
			t.Errorf("ParseHostPattern(%q) = %q, %v, want %q", h.String(), back, err, h)
		}
	})
}

// FuzzSecretRef checks ParseSecret on the reference forms that need no
// files: it never panics, never repeats an inline value in its error, and
// a sha256: secret holds exactly the digest written. file: references are
// left out so the fuzzer cannot open devices or /proc files.
func FuzzSecretRef(f *testing.F) {
	// Table cases: sha256 forms, inline values, bad env names, bad digests.
	for _, tc := range secretRefCases {
		f.Add(tc.ref)
	}
	// An environment variable that is set in every test environment.
	f.Add("env:PATH")
	f.Fuzz(func(t *testing.T, ref string) {
		if strings.HasPrefix(ref, "file:") {
			return // file: references read the file system; covered by the table tests
		}
		s, err := ParseSecret(ref)
		kind, arg, _ := strings.Cut(ref, ":")
		if err != nil {
			if !s.IsZero() {
				t.Errorf("ParseSecret(%q) returned a set secret with error %v", ref, err)
			}
			if kind != "env" && kind != "sha256" && ref != "" && err.Error() != "inline secrets are refused; "+secretHelp {
				t.Errorf("ParseSecret(%q) = %q, want the fixed inline message", ref, err)
			}
			return
		}
		if s.IsZero() || s.String() != "[redacted]" {
			t.Fatalf("ParseSecret(%q) = zero %v, String %q, want a set, redacted secret", ref, s.IsZero(), s.String())
		}
		switch kind {
		case "env":
			if v := os.Getenv(arg); s.Value() != v || !s.Matches(v) {
				t.Errorf("ParseSecret(%q).Value() does not match $%s", ref, arg)
			}
		case "sha256":
			want, _ := hex.DecodeString(arg) // ParseSecret accepted it
			if s.Value() != "" || !slices.Equal(s.digest[:], want) {
				t.Errorf("ParseSecret(%q) digest = %x, want %x", ref, s.digest, want)
			}
		default:
			t.Errorf("ParseSecret(%q) = nil error for kind %q", ref, kind)
		}
	})
}

// FuzzParse feeds arbitrary bytes to Parse: it never panics, an invalid
// config is always a non-empty, sorted Errors naming the file, a valid one
// has its defaults applied, and the outcome is deterministic.
func FuzzParse(f *testing.F) {
	// The error table: unknown keys, wrong kinds, bad scalars, duplicates,
	// empty files, second documents, syntax errors, aliases, tags.
	for _, tc := range parseErrorCases {
		f.Add([]byte(tc.in))
	}
	// Valid configs: the minimal one and one with most keys.
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "listen: {http: \":8080\"}\nlimits: {idle_timeout: 1d, max_header_bytes: 8k}\n" +
		"trusted_proxies: [10.0.0.0/8]\nadmin: {listen: \"off\"}\nlog: {access: off, level: warn}\n"))
	// The golden file with many mistakes at once.
	if b, err := os.ReadFile("testdata/errors.yaml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.yaml"
		cfg, err := Parse(name, data)
		if err == nil {
			if cfg == nil || len(cfg.Hosts) == 0 || cfg.Log.Level == "" || cfg.Limits.UpstreamIdleConns == 0 {
				t.Fatalf("Parse(%q) = %+v, want a defaulted config with hosts", data, cfg)
			}
			for _, h := range cfg.Hosts {
				if h.WebSocket == nil {
					t.Fatalf("Parse(%q): websocket default not applied", data)
				}
			}
			_ = cfg.Summary() // must not panic
			return
		}
		var errs Errors
		if cfg != nil || !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("Parse(%q) = %v, %T %v; want nil and a non-empty Errors", data, cfg, err, err)
		}
		for i, e := range errs {
			if e.File != name || e.Msg == "" || !strings.HasPrefix(e.Error(), name) {
				t.Errorf("Parse(%q) error %q, want file %q and a message", data, e, name)
			}
			if i > 0 && errs[i-1].Line > e.Line {
				t.Errorf("Parse(%q) errors not sorted by line:\n%v", data, err)
			}
		}
		if _, again := Parse(name, data); again == nil || again.Error() != err.Error() {
			t.Errorf("Parse(%q) twice = %v, then %v", data, err, again)
		}
	})
}

// FuzzParseRate checks that a parsed rate is positive, per second or per
// minute, and round-trips through its text.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"1r/s", "30r/m", "1000000r/s", "0r/s", "-1r/s", "1.5r/s", "r/s", "10/s", "10r/h", "+5r/s", "05r/m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r.PerSecond <= 0 || r.String() != s {
			t.Fatalf("ParseRate(%q) = %+v", s, r)
		}
		if w, q := r.Window(); (w != 1 && w != 60) || q < 1 {
			t.Errorf("ParseRate(%q).Window() = %d, %v", s, w, q)
		}
		if back, err := ParseRate(r.String()); err != nil || back != r {
			t.Errorf("ParseRate(%q) again = %+v, %v", s, back, err)
		}
	})
}

// FuzzParseAccessRule checks that an access rule round-trips through
// String and never names a prefix with host bits or a zone.
func FuzzParseAccessRule(f *testing.F) {
	for _, s := range []string{"allow 10.0.0.0/8", "deny all", "allow all", "deny 192.0.2.7", "deny ::ffff:10.0.0.1",
		"permit 1.2.3.4", "allow", "deny 10.0.0.1/8", "allow  fe80::1%eth0", " allow all "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAccessRule(s)
		if err != nil {
			return
		}
		if !a.All && (a.Prefix != a.Prefix.Masked() || a.Prefix.Addr().Zone() != "" || a.Prefix.Addr().Is4In6()) {
			t.Fatalf("ParseAccessRule(%q) = %v", s, a)
		}
		if back, err := ParseAccessRule(a.String()); err != nil || back != a {
			t.Errorf("ParseAccessRule(%q) = %v; again from %q: %v, %v", s, a, a.String(), back, err)
		}
	})
}
