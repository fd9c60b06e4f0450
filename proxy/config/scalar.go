package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"gatehouse/signer"
)

// This file holds the scalar leaf types of the config file. Each one parses
// its text strictly in UnmarshalYAML; the decoder in decode.go adds the
// file, line and field path to any error it returns. The pure parsers are
// exported so the admin API and the CLI accept exactly the same syntax.

// scalarText returns the text of a scalar node or an error naming what was
// expected instead. Null never gets here: the decoder leaves null values at
// their zero value.
func scalarText(n *yaml.Node, want string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("expected %s, found %s", want, describe(n))
	}
	return n.Value, nil
}

// Duration is a non-negative time span written in the config file. It
// accepts Go duration strings ("90s", "1h30m", "1.5h"), the units d (24h)
// and w (7d) that fail2ban and Caddy users expect ("7d", "1d12h"), and a
// bare whole number meaning seconds (fail2ban's "bantime = 600"). The zero
// Duration means the key was not set; each field says what that means.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d canonically, e.g. "1d2h3m4s"; see signer.FormatDuration.
func (d Duration) String() string { return signer.FormatDuration(time.Duration(d)) }

// UnmarshalYAML parses a scalar with signer.ParseDuration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalarText(n, "a duration such as 30s, 10m or 7d")
	if err != nil {
		return err
	}
	v, err := signer.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Size is a number of bytes written in the config file: a whole number
// with an optional binary unit, as nginx's "64k": 512, 512B, 64K, 64KB,
// 64KiB, 10M, 10MB, 1G, 1GB, 1T, 1TB (case-insensitive; 1KB = 1024 bytes).
// Fractions ("1.5MB") are refused with the whole-number spelling suggested,
// so a size never silently rounds.
type Size int64

// Bytes returns s as a number of bytes.
func (s Size) Bytes() int64 { return int64(s) }

// String formats s with the largest unit that divides it, e.g. "64KB".
func (s Size) String() string { return FormatSize(int64(s)) }

// UnmarshalYAML parses a scalar with ParseSize.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	t, err := scalarText(n, "a size such as 512, 64KB or 10MB")
	if err != nil {
		return err
	}
	v, err := ParseSize(t)
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

const sizeHelp = "write a whole number of bytes with an optional unit B, KB, MB, GB or TB (binary: 1KB = 1024), such as 512, 64KB or 10MB"

var sizeUnits = []struct {
	names []string
	mult  int64
}{
	{[]string{"", "b"}, 1},
	{[]string{"k", "kb", "kib"}, 1 << 10},
	{[]string{"m", "mb", "mib"}, 1 << 20},
	{[]string{"g", "gb", "gib"}, 1 << 30},
	{[]string{"t", "tb", "tib"}, 1 << 40},
}

// ParseSize parses a size in bytes; see Size for the syntax.
func ParseSize(s string) (int64, error) {
	fail := func(format string, args ...any) (int64, error) {
		return 0, fmt.Errorf("invalid size %q: %s", s, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return fail("empty; %s", sizeHelp)
	}
	if s[0] == '-' {
		return fail("negative sizes are not allowed")
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	num, unit := s[:i], s[i:]
	frac := ""
	dot := strings.HasPrefix(unit, ".")
	if dot {
		j := 1
		for j < len(unit) && unit[j] >= '0' && unit[j] <= '9' {
			j++
		}
		frac, unit = unit[1:j], unit[j:]
	}
	if num == "" {
		return fail("expected a number; %s", sizeHelp)
	}
	// Units are ASCII; lower-casing anything else could match a unit
	// (U+212A KELVIN SIGN folds to "k") or change the length (invalid
	// UTF-8; regression: testdata/fuzz/FuzzParseSize).
	lower := strings.ToLower(unit)
	if !isASCII(unit) {
		lower = "?"
	}
	mult := int64(0)
	for k, u := range sizeUnits {
		if slices.Contains(u.names, lower) {
			if dot {
				return fail("fractions are not allowed%s", fractionHint(num, frac, k))
			}
			mult = u.mult
		}
	}
	if mult == 0 {
		return fail("unknown unit %q; %s", unit, sizeHelp)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return fail("too large")
	}
	return n * mult, nil
}

// fractionHint suggests the whole-number spelling of num.frac in unit
// sizeUnits[k], if there is one: "1.5MB" → "; write 1536KB".
func fractionHint(num, frac string, k int) string {
	if frac == "" || len(num)+len(frac) > 15 { // float64 stays exact below this
		return "; " + sizeHelp
	}
	v, err := strconv.ParseFloat(num+"."+frac, 64)
	if err != nil {
		return "; " + sizeHelp
	}
	bytes := v * float64(sizeUnits[k].mult)
	if bytes != math.Trunc(bytes) {
		return "; " + sizeHelp
	}
	return "; write " + FormatSize(int64(bytes))
}

// FormatSize formats n bytes with the largest binary unit that divides it
// exactly: 512 → "512B", 65536 → "64KB", 1572864 → "1536KB". The result
// parses back with ParseSize to exactly n (for n >= 0).
func FormatSize(n int64) string {
	for k := len(sizeUnits) - 1; k > 0; k-- {
		if m := sizeUnits[k].mult; n != 0 && n%m == 0 {
			return strconv.FormatInt(n/m, 10) + strings.ToUpper(sizeUnits[k].names[1])
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// Prefix is an IP network written as a CIDR prefix ("203.0.113.0/24") or a
// bare address (one host: /32 or /128). IPv4-mapped IPv6 is folded to IPv4
// ("::ffff:203.0.113.7" is 203.0.113.7/32), and a prefix with host bits set
// is an error rather than silently masked, because "10.0.0.1/8" is usually
// a typo for either 10.0.0.1/32 or 10.0.0.0/8. The zero Prefix is invalid
// (IsValid reports false) and means "not set".
type Prefix struct {
	netip.Prefix
}

// UnmarshalYAML parses a scalar with ParsePrefix.
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalarText(n, "an IP address or CIDR prefix such as 203.0.113.0/24")
	if err != nil {
		return err
	}
	v, err := ParsePrefix(s)
	if err != nil {
		return err
	}
	p.Prefix = v
	return nil
}

// ParsePrefix parses a CIDR prefix or a bare IP address; see Prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	fail := func(format string, args ...any) (netip.Prefix, error) {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q: %s", s, fmt.Sprintf(format, args...))
	}
	addrText, bitsText, hasBits := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addrText)
	if err != nil {
		return fail("not an IP address or CIDR prefix such as 203.0.113.0/24 or 2001:db8::1")
	}
	if a.Zone() != "" {
		return fail("IPv6 zones are not allowed")
	}
	bits := a.BitLen()
	if hasBits {
		bits, err = strconv.Atoi(bitsText)
		if err != nil || !isDigits(bitsText) || bits > a.BitLen() {
			return fail("prefix length %q is not a number between 0 and %d", bitsText, a.BitLen())
		}
	}
	if a.Is4In6() {
		if bits < 96 {
			return fail("an IPv4-mapped prefix needs a length of at least 96")
		}
		a, bits = a.Unmap(), bits-96
	}
	p := netip.PrefixFrom(a, bits)
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q: host bits are set; did you mean %s?", s, m)
	}
	return p, nil
}

// HostPattern is a host name to route: an exact name ("app.example.com"),
// a wildcard with a single leading "*." label ("*.example.com"), or an IP
// literal ("203.0.113.7", "[2001:db8::1]"). It is stored normalised: ASCII
// lower case, one trailing dot stripped, IPv6 without brackets. Ports are
// refused (routing ignores the port), and so are non-ASCII names: write
// them in punycode (xn--...). The zero HostPattern means "not set".
type HostPattern struct {
	name     string
	wildcard bool
}

// Name returns the normalised name without the "*." of a wildcard.
func (h HostPattern) Name() string { return h.name }

// Wildcard reports whether h is a "*.name" pattern.
func (h HostPattern) Wildcard() bool { return h.wildcard }

// String returns the normalised pattern, with "*." for a wildcard.
func (h HostPattern) String() string {
	if h.wildcard {
		return "*." + h.name
	}
	return h.name
}

// UnmarshalYAML parses a scalar with ParseHostPattern.
func (h *HostPattern) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalarText(n, "a host name such as app.example.com or *.example.com")
	if err != nil {
		return err
	}
	v, err := ParseHostPattern(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHostPattern parses and normalises a host pattern; see HostPattern.
func ParseHostPattern(s string) (HostPattern, error) {
	fail := func(format string, args ...any) (HostPattern, error) {
		return HostPattern{}, fmt.Errorf("invalid host %q: %s", s, fmt.Sprintf(format, args...))
	}
	if !isASCII(s) {
		return fail("non-ASCII names must be written in punycode (xn--...)")
	}
	name := strings.ToLower(s)
	if strings.HasPrefix(name, "[") {
		addr, rest, _ := strings.Cut(name[1:], "]")
		if rest != "" {
			return fail("a host pattern has no port")
		}
		a, err := netip.ParseAddr(addr)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return fail("%q is not an IPv6 address", addr)
		}
		return HostPattern{name: a.String()}, nil
	}
	name = strings.TrimSuffix(name, ".")
	if a, err := netip.ParseAddr(name); err == nil {
		if a.Zone() != "" {
			return fail("IPv6 zones are not allowed")
		}
		return HostPattern{name: a.String()}, nil
	}
	if strings.Contains(name, ":") {
		return fail("a host pattern has no port")
	}
	h := HostPattern{name: name}
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		h = HostPattern{name: rest, wildcard: true}
	}
	switch {
	case name == "":
		return fail("empty")
	case name == "*":
		return fail("a catch-all host is not supported; list the names (an unknown host is refused, never sent to a random app)")
	case strings.Contains(h.name, "*"):
		return fail(`"*" is only allowed as a whole first label, as in *.example.com`)
	}
	if _, err := netip.ParseAddr(h.name); err == nil && h.wildcard {
		return fail("a wildcard cannot be an IP address")
	}
	if err := checkDNSName(h.name); err != nil {
		return fail("%v", err)
	}
	return h, nil
}

// checkDNSName checks a lower-case name without a trailing dot against the
// host name rules of RFC 1123 §2.1: labels of 1 to 63 letters, digits and
// hyphens, not starting or ending with a hyphen, at most 253 characters,
// and (RFC 3696 §2) a last label that is not all digits.
func checkDNSName(name string) error {
	if len(name) > 253 {
		return fmt.Errorf("longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return errors.New("empty label (two dots in a row, or a leading dot)")
		case len(l) > 63:
			return fmt.Errorf("label %q is longer than 63 characters", l)
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Errorf("label %q starts or ends with \"-\"", l)
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return fmt.Errorf("label %q has %q; allowed are a-z, 0-9 and \"-\"", l, c)
			}
		}
	}
	if isDigits(labels[len(labels)-1]) {
		return errors.New("not an IP address, and a host name cannot end with an all-digit label")
	}
	return nil
}

// Upstream is the base URL of an upstream server: scheme http or https, a
// host and optional port, and an optional base path. User info, a query
// and a fragment are refused (credentials belong in a Secret, and the
// proxy has nowhere sane to put the rest). The scheme and host are
// lower-cased. The zero Upstream means "not set".
type Upstream struct {
	u *url.URL
}

// URL returns a copy of the upstream URL, or nil for the zero Upstream.
func (u Upstream) URL() *url.URL {
	if u.u == nil {
		return nil
	}
	c := *u.u
	return &c
}

// String returns the upstream URL, or "" for the zero Upstream.
func (u Upstream) String() string {
	if u.u == nil {
		return ""
	}
	return u.u.String()
}

// UnmarshalYAML parses a scalar with ParseUpstream.
func (u *Upstream) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalarText(n, "an upstream URL such as http://127.0.0.1:3000")
	if err != nil {
		return err
	}
	v, err := ParseUpstream(s)
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// ParseUpstream parses an upstream base URL; see Upstream.
func ParseUpstream(s string) (Upstream, error) {
	fail := func(format string, args ...any) (Upstream, error) {
		return Upstream{}, fmt.Errorf("invalid upstream %q: %s", s, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return fail("empty; write a URL such as http://127.0.0.1:3000")
	}
	if !strings.Contains(s, "://") {
		return fail("no scheme; write http://%s or https://%s", s, s)
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail("%v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fail("scheme %q is not http or https", u.Scheme)
	case u.User != nil:
		return fail("user info is not allowed in an upstream URL")
	case u.Host == "":
		return fail("no host")
	case u.RawQuery != "" || u.ForceQuery:
		return fail("a query is not allowed in an upstream URL")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fail("a fragment is not allowed in an upstream URL")
	case strings.HasSuffix(u.Host, ":"):
		return fail("empty port")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fail("port %q is not a number between 1 and 65535", p)
		}
	}
	if u.Hostname() == "" {
		return fail("no host")
	}
	u.Host = strings.ToLower(u.Host)
	return Upstream{u: u}, nil
}
