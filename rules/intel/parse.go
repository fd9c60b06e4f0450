package intel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Format names a list format.
type Format string

// The formats Parse reads.
const (
	// FormatPlain is one address or CIDR prefix per line, with "#" and
	// ";" comments (whole-line or trailing), blank lines and CRLF line
	// ends: FireHOL netsets, Spamhaus' text DROP ("1.10.16.0/20 ;
	// SBL256894"), Cloudflare's ips-v4 and ips-v6, a hand-written file.
	FormatPlain Format = "plain"
	// FormatSpamhausDropJSON is Spamhaus' DROP in NDJSON
	// (drop_v4.json, drop_v6.json): one {"cidr":…,"sblid":…,"rir":…}
	// object per line and a final {"type":"metadata",…,"records":N}
	// line.
	FormatSpamhausDropJSON Format = "spamhaus-drop-json"
	// FormatCrowdSec is a CrowdSec LAPI decisions answer: the array of
	// GET /v1/decisions or the object of GET /v1/decisions/stream (its
	// "new" list; ask with startup=true for the full state). Only
	// decisions of type ban with scope Ip or Range are read.
	FormatCrowdSec Format = "crowdsec"
	// FormatFastlyJSON is Fastly's public IP list,
	// {"addresses":[…],"ipv6_addresses":[…]}.
	FormatFastlyJSON Format = "fastly-json"
	// FormatCloudFrontJSON is CloudFront's list-cloudfront-ips,
	// {"CLOUDFRONT_GLOBAL_IP_LIST":[…],"CLOUDFRONT_REGIONAL_EDGE_IP_LIST":[…]}
	// (IPv4 only).
	FormatCloudFrontJSON Format = "cloudfront-json"
	// FormatAWSCloudFront is AWS' ip-ranges.json, of which only the
	// prefixes of service CLOUDFRONT are read (IPv4 and IPv6).
	FormatAWSCloudFront Format = "aws-ip-ranges-cloudfront"
)

// Formats lists every format Parse reads, for config validation messages.
func Formats() []Format {
	return []Format{FormatPlain, FormatSpamhausDropJSON, FormatCrowdSec,
		FormatFastlyJSON, FormatCloudFrontJSON, FormatAWSCloudFront}
}

// ParseFormat returns the format named s, or an error that lists the
// formats there are.
func ParseFormat(s string) (Format, error) {
	names := make([]string, 0, 6)
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
		names = append(names, string(f))
	}
	return "", fmt.Errorf("%w %q: not one of %s", ErrUnknownFormat, s, strings.Join(names, ", "))
}

// Default limits, applied when a Limits field is zero.
const (
	// DefaultMaxPrefixes is the default cap on prefixes in one list.
	DefaultMaxPrefixes = 1_000_000
	// DefaultMaxBytes is the default cap on a list's size: a million
	// IPv6 prefixes with comments fit.
	DefaultMaxBytes = 64 << 20
	// maxLine is the longest line the line formats accept; a longer
	// one (a minified HTML page, a binary file) refuses the list.
	maxLine = 64 << 10
)

// Limits bound what Parse reads. The zero value means the defaults.
type Limits struct {
	// MaxBytes is the largest input read, in bytes. Default
	// DefaultMaxBytes.
	MaxBytes int64
	// MaxPrefixes is the most prefixes a list may hold. Default
	// DefaultMaxPrefixes.
	MaxPrefixes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxPrefixes <= 0 {
		l.MaxPrefixes = DefaultMaxPrefixes
	}
	return l
}

// Errors Parse returns, wrapped in a *ParseError or alone.
var (
	// ErrTooLarge: the input is longer than Limits.MaxBytes.
	ErrTooLarge = errors.New("list larger than its size cap")
	// ErrTooMany: the list holds more than Limits.MaxPrefixes prefixes.
	ErrTooMany = errors.New("list holds more prefixes than its cap")
	// ErrMalformed: the list is not in its format (too many bad
	// lines, a broken JSON document, a count that does not match).
	ErrMalformed = errors.New("malformed list")
	// ErrUnknownFormat: Parse was asked for a format it does not know.
	ErrUnknownFormat = errors.New("unknown list format")
)

// ParseError says where in a list parsing stopped. Line is 1-based; 0
// when the error is about the whole list.
type ParseError struct {
	Format Format
	Line   int
	Err    error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s list: line %d: %v", e.Format, e.Line, e.Err)
	}
	return fmt.Sprintf("%s list: %v", e.Format, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Parsed is a list Parse accepted.
type Parsed struct {
	// Prefixes are the list's prefixes in the order listed; an address
	// is its /32 or /128.
	Prefixes []netip.Prefix
	// Skipped counts malformed lines that were tolerated (plain
	// format only; see Parse).
	Skipped int
	// FirstSkipped describes the first tolerated malformed line, for
	// one log line; nil when none was skipped.
	FirstSkipped error
	// Ignored counts well-formed entries that are not for us: CrowdSec
	// decisions of another type or scope.
	Ignored int
}

// Parse reads a list in format f from r, bounded by lim.
//
// The plain format tolerates a few malformed lines, as a list maintained
// by hand or by a script may carry one: up to 3 plus one per 100 good
// lines are skipped and counted in Parsed.Skipped. More than that, or any
// malformed line in a list without one good entry, refuses the whole list
// with the first bad line's number: an HTML error page served with status
// 200 is refused, never loaded as an empty or tiny set. The JSON formats
// are written by programs, so any malformed entry refuses the list.
//
// A list of only comments is valid and empty; whether an empty list may
// replace a full one is the caller's decision (Source's shrink guard).
func Parse(r io.Reader, f Format, lim Limits) (*Parsed, error) {
	lim = lim.withDefaults()
	lr := &capReader{r: r, left: lim.MaxBytes}
	switch f {
	case FormatPlain:
		return parsePlain(lr, lim)
	case FormatSpamhausDropJSON:
		return parseSpamhaus(lr, lim)
	}
	body, err := io.ReadAll(lr)
	if err != nil {
		return nil, &ParseError{Format: f, Err: err}
	}
	switch f {
	case FormatCrowdSec:
		return parseCrowdSec(body, lim)
	case FormatFastlyJSON:
		return parseFastly(body, lim)
	case FormatCloudFrontJSON:
		return parseCloudFront(body, lim)
	case FormatAWSCloudFront:
		return parseAWS(body, lim)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownFormat, f)
}

// capReader reads at most left bytes from r and fails with ErrTooLarge
// when r holds more.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more tells a list of exactly the cap from a
		// longer one.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, ErrTooLarge
		}
		if err == nil {
			return 0, nil
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// parseAddrOrPrefix reads "1.2.3.4", "1.2.3.0/24", "2001:db8::/32";
// host bits of a prefix are masked off later by NewSet. A zone is
// refused: it has no place in a list of Internet addresses.
func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %q has a zone", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// lines calls fn with each line of r, without its line end, and its
// 1-based number; fn's error stops the walk.
func lines(r io.Reader, f Format, fn func(line []byte, n int) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		if err := fn(bytes.TrimSuffix(sc.Bytes(), []byte{'\r'}), n); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return &ParseError{Format: f, Line: n + 1, Err: fmt.Errorf("%w: line longer than %d bytes", ErrMalformed, maxLine)}
		}
		if errors.Is(err, ErrTooLarge) {
			return &ParseError{Format: f, Err: err}
		}
		return &ParseError{Format: f, Line: n + 1, Err: err}
	}
	return nil
}

func parsePlain(r io.Reader, lim Limits) (*Parsed, error) {
	out := &Parsed{}
	firstBad := 0
	err := lines(r, FormatPlain, func(line []byte, n int) error {
		if i := bytes.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			return nil
		}
		p, err := parseAddrOrPrefix(string(line))
		if err != nil {
			if out.Skipped == 0 {
				firstBad = n
				out.FirstSkipped = &ParseError{Format: FormatPlain, Line: n, Err: fmt.Errorf("%w: %q is not an address or prefix", ErrMalformed, clip(line))}
			}
			out.Skipped++
			// Stop early on garbage: no tolerance can save the
			// list once the bad lines outnumber what any good
			// lines still to come could excuse.
			if out.Skipped > 3+lim.MaxPrefixes/100 {
				return out.FirstSkipped
			}
			return nil
		}
		if len(out.Prefixes) == lim.MaxPrefixes {
			return &ParseError{Format: FormatPlain, Line: n, Err: ErrTooMany}
		}
		out.Prefixes = append(out.Prefixes, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out.Skipped > 0 && (len(out.Prefixes) == 0 || out.Skipped > 3+len(out.Prefixes)/100) {
		return nil, &ParseError{Format: FormatPlain, Line: firstBad,
			Err: fmt.Errorf("%w: %d malformed lines against %d entries, first: %v", ErrMalformed, out.Skipped, len(out.Prefixes), out.FirstSkipped.(*ParseError).Err)}
	}
	return out, nil
}

// clip shortens a bad line for an error message.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
