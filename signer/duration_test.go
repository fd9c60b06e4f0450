package signer

import (
	"math"
	"strings"
	"testing"
	"time"
)

// durationCases are shared with FuzzParseDuration as seeds.
var durationCases = []struct {
	name    string
	in      string
	want    time.Duration
	wantErr string
}{
	{name: "seconds", in: "90s", want: 90 * time.Second},
	{name: "go composite", in: "1h30m", want: 90 * time.Minute},
	{name: "days", in: "7d", want: 7 * 24 * time.Hour},
	{name: "weeks", in: "2w", want: 14 * 24 * time.Hour},
	{name: "days and hours", in: "1d12h", want: 36 * time.Hour},
	{name: "week and days", in: "1w2d", want: 9 * 24 * time.Hour},
	{name: "fraction", in: "1.5h", want: 90 * time.Minute},
	{name: "fraction of a day", in: "0.5d", want: 12 * time.Hour},
	{name: "leading dot", in: ".5s", want: 500 * time.Millisecond},
	{name: "trailing dot", in: "5.s", want: 5 * time.Second},
	{name: "sub-second units", in: "1s500ms", want: 1500 * time.Millisecond},
	{name: "microseconds", in: "3us", want: 3 * time.Microsecond},
	{name: "micro sign", in: "3µs", want: 3 * time.Microsecond},
	{name: "greek mu", in: "3μs", want: 3 * time.Microsecond},
	{name: "nanoseconds", in: "7ns", want: 7},
	{name: "bare seconds", in: "600", want: 600 * time.Second},
	{name: "bare zero", in: "0", want: 0},
	{name: "zero with unit", in: "0s", want: 0},
	{name: "maximum", in: "106751d23h47m16s854ms775us807ns", want: math.MaxInt64},
	{name: "maximum in ns", in: "9223372036854775807ns", want: math.MaxInt64},
	{name: "maximum bare seconds", in: "9223372036", want: 9223372036 * time.Second},

	{name: "empty", in: "", wantErr: `invalid duration "": empty`},
	{name: "negative", in: "-5s", wantErr: "negative durations are not allowed"},
	{name: "plus sign", in: "+5s", wantErr: "a sign is not allowed"},
	{name: "unknown unit", in: "5x", wantErr: `unknown unit "x"; write a number with a unit`},
	{name: "upper-case unit", in: "5S", wantErr: `unknown unit "S"`},
	{name: "missing unit", in: "1h30", wantErr: "missing unit"},
	{name: "bare fraction", in: "1.5", wantErr: "missing unit"},
	{name: "space", in: "1h 30m", wantErr: `unknown unit "h "`},
	{name: "garbage", in: "abc", wantErr: `expected a number at "abc"`},
	{name: "dot without digits", in: ".s", wantErr: `expected a number at ".s"`},
	{name: "overflow days", in: "106752d", wantErr: "too large; the maximum is 106751d23h47m16s854ms775us807ns"},
	{name: "overflow bare seconds", in: "9223372037", wantErr: "too large"},
	{name: "overflow digits", in: "99999999999999999999s", wantErr: "too large"},
	{name: "overflow sum", in: "106751d24h", wantErr: "too large"},
	{name: "overflow fraction", in: "106751.99999d", wantErr: "too large"},
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range durationCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDuration(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseDuration(%q) = %v, %v, want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseDuration(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{90 * time.Minute, "1h30m"},
		{36 * time.Hour, "1d12h"},
		{8 * 24 * time.Hour, "8d"},
		{1500 * time.Millisecond, "1s500ms"},
		{time.Nanosecond, "1ns"},
		{time.Hour + time.Microsecond, "1h1us"},
		{math.MaxInt64, "106751d23h47m16s854ms775us807ns"},
		{-5 * time.Second, "-5s"},
	} {
		if got := FormatDuration(tc.in); got != tc.want {
			t.Errorf("FormatDuration(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseDuration checks that ParseDuration never panics, never returns
// a negative duration, round-trips through FormatDuration, and agrees
// exactly with time.ParseDuration on every unsigned input the time package
// accepts.
func FuzzParseDuration(f *testing.F) {
	// Valid and invalid forms from the table: Go units, d and w, fractions,
	// bare seconds, the maximum, signs, unknown units, overflow.
	for _, tc := range durationCases {
		f.Add(tc.in)
	}
	// Canonical output of FormatDuration.
	f.Add(FormatDuration(36*time.Hour + 1500*time.Millisecond))
	// Long fractions, where float rounding could differ from the time package.
	f.Add("0.123456789012345678901234567890h")
	f.Add("1.9999999999999999999s")
	// Forms a signing request or the CLI sends: the ten-year cap, exponents,
	// spaces, a trailing dot, leading zeros.
	for _, s := range []string{"3650d", "3651d", "1e3s", "1h 2m", "1.", "00001m", "0.0000000001s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if d != 0 {
				t.Errorf("ParseDuration(%q) = %v with error %v, want 0", s, d, err)
			}
			if want, terr := time.ParseDuration(s); terr == nil && want >= 0 && s != "" && s[0] != '+' && s[0] != '-' {
				t.Errorf("ParseDuration(%q) = %v, but time.ParseDuration accepts it as %v", s, err, want)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, want a non-negative duration", s, d)
		}
		if back, err := ParseDuration(FormatDuration(d)); err != nil || back != d {
			t.Errorf("ParseDuration(FormatDuration(%v) = %q) = %v, %v, want %v", d, FormatDuration(d), back, err, d)
		}
		if want, terr := time.ParseDuration(s); terr == nil && want != d {
			t.Errorf("ParseDuration(%q) = %v, want %v as time.ParseDuration", s, d, want)
		}
	})
}

// TestParseExpires pins the ten-year cap of signing requests on top of
// ParseDuration's syntax.
func TestParseExpires(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "15m", want: 15 * time.Minute},
		{in: "1w2d", want: 9 * 24 * time.Hour},
		{in: "600", want: 10 * time.Minute},
		{in: "3650d", want: maxRequestExpires},
		{in: "315360000", want: maxRequestExpires},
		{in: "", wantErr: "empty"},
		{in: "-1h", wantErr: "negative durations are not allowed"},
		{in: "1H", wantErr: `unknown unit "H"`},
		{in: "3651d", wantErr: `invalid duration "3651d": more than ten years`},
		{in: "315360001", wantErr: "more than ten years"},
		{in: "99999999999999999999h", wantErr: "too large"},
	}
	for _, tc := range tests {
		got, err := ParseExpires(tc.in)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParseExpires(%q) = %v, %v, want error containing %q", tc.in, got, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("ParseExpires(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
		}
	}
}
