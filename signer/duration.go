package signer

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// This file holds the one duration syntax of gatehouse: the config file,
// the admin API, the dashboard, the CLI and signing requests all parse
// with ParseDuration, so each accepts exactly what the others do. It
// lives here because signer imports none of our packages and proxy/config
// already imports signer.

const durationHelp = "write a number with a unit (ns, us, ms, s, m, h, d or w) such as 90s, 1h30m or 7d, or a bare whole number of seconds"

// durationUnits maps each unit ParseDuration accepts to its length.
// "µs" (U+00B5) and "μs" (U+03BC) are accepted like time.ParseDuration does.
var durationUnits = map[string]uint64{
	"ns": uint64(time.Nanosecond),
	"us": uint64(time.Microsecond),
	"µs": uint64(time.Microsecond),
	"μs": uint64(time.Microsecond),
	"ms": uint64(time.Millisecond),
	"s":  uint64(time.Second),
	"m":  uint64(time.Minute),
	"h":  uint64(time.Hour),
	"d":  uint64(24 * time.Hour),
	"w":  uint64(7 * 24 * time.Hour),
}

// DurationError is ParseDuration's error: the input and why it is not a
// duration, so that callers can name the flag or field at fault.
type DurationError struct {
	Input, Reason string
}

func (e *DurationError) Error() string {
	return fmt.Sprintf("invalid duration %q: %s", e.Input, e.Reason)
}

// ParseDuration parses a non-negative duration: a sequence of decimal
// numbers, each with an optional fraction and a unit (ns, us, µs, ms, s, m,
// h, d = 24h, w = 7d), such as "300ms", "1h30m", "1.5h" or "1w2d"; or a
// bare whole number of seconds ("600"). Signs, spaces, upper-case units and
// values over about 292 years are errors.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	fail := func(format string, args ...any) (time.Duration, error) {
		return 0, &DurationError{Input: orig, Reason: fmt.Sprintf(format, args...)}
	}
	tooLarge := func() (time.Duration, error) {
		return fail("too large; the maximum is %s", FormatDuration(math.MaxInt64))
	}
	switch {
	case s == "":
		return fail("empty; %s", durationHelp)
	case s[0] == '-':
		return fail("negative durations are not allowed")
	case s[0] == '+':
		return fail("a sign is not allowed; %s", durationHelp)
	}
	if isDigits(s) { // bare seconds, fail2ban style
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n > math.MaxInt64/uint64(time.Second) {
			return tooLarge()
		}
		return time.Duration(n) * time.Second, nil
	}
	// The loop follows time.ParseDuration step by step, so the two agree
	// exactly on every input both accept (FuzzParseDuration checks it).
	var total uint64
	for s != "" {
		at := s
		// The number: digits, optionally a '.' and more digits.
		var v, f uint64 // integer part, fraction digits
		scale := 1.0    // 10^(number of fraction digits kept)
		var ok, pre, post bool
		v, s, ok, pre = leadingInt(s)
		if !ok {
			return tooLarge()
		}
		if s != "" && s[0] == '.' {
			f, scale, s, post = leadingFraction(s[1:])
		}
		if !pre && !post {
			return fail("expected a number at %q; %s", at, durationHelp)
		}
		// The unit: everything up to the next number.
		i := 0
		for i < len(s) && s[i] != '.' && (s[i] < '0' || s[i] > '9') {
			i++
		}
		u := s[:i]
		s = s[i:]
		if u == "" {
			return fail("missing unit; %s", durationHelp)
		}
		unit, known := durationUnits[u]
		if !known {
			return fail("unknown unit %q; %s", u, durationHelp)
		}
		if v > 1<<63/unit {
			return tooLarge()
		}
		v *= unit
		if f > 0 {
			// float64 is needed for fractional units; as in the time
			// package, the result is truncated towards zero.
			v += uint64(float64(f) * (float64(unit) / scale))
			if v > 1<<63 {
				return tooLarge()
			}
		}
		total += v
		if total > 1<<63 {
			return tooLarge()
		}
	}
	if total > math.MaxInt64 {
		return tooLarge()
	}
	return time.Duration(total), nil
}

// leadingInt consumes the leading decimal digits of s. ok is false when
// the number exceeds 1<<63; found reports whether a digit was consumed.
func leadingInt(s string) (x uint64, rest string, ok, found bool) {
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if x > 1<<63/10 {
			return 0, "", false, true
		}
		x = x*10 + uint64(s[i]-'0')
		if x > 1<<63 {
			return 0, "", false, true
		}
	}
	return x, s[i:], true, i > 0
}

// leadingFraction consumes the leading digits of a fraction, keeping as
// many as fit (the rest cannot change the result).
func leadingFraction(s string) (x uint64, scale float64, rest string, found bool) {
	i := 0
	scale = 1
	overflow := false
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if overflow {
			continue
		}
		if x > (1<<63-1)/10 {
			overflow = true
			continue
		}
		y := x*10 + uint64(s[i]-'0')
		if y > 1<<63 {
			overflow = true
			continue
		}
		x = y
		scale *= 10
	}
	return x, scale, s[i:], i > 0
}

// FormatDuration formats d with whole units from days down to nanoseconds,
// largest first, omitting zero units: "1d2h3m4s", "1s500ms", "0s". The
// result parses back with ParseDuration to exactly d (for d >= 0).
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	u := uint64(d)
	if d < 0 {
		b.WriteByte('-')
		u = -u
	}
	for _, unit := range []struct {
		name string
		len  uint64
	}{
		{"d", uint64(24 * time.Hour)},
		{"h", uint64(time.Hour)},
		{"m", uint64(time.Minute)},
		{"s", uint64(time.Second)},
		{"ms", uint64(time.Millisecond)},
		{"us", uint64(time.Microsecond)},
		{"ns", 1},
	} {
		if n := u / unit.len; n > 0 {
			b.WriteString(strconv.FormatUint(n, 10))
			b.WriteString(unit.name)
			u -= n * unit.len
		}
	}
	return b.String()
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
