package config

import (
	"math"
	"net/netip"
	"strings"
	"testing"
)

var sizeCases = []struct {
	name    string
	in      string
	want    int64
	wantErr string
}{
	{name: "bytes", in: "512", want: 512},
	{name: "bytes with B", in: "512B", want: 512},
	{name: "lower-case b", in: "512b", want: 512},
	{name: "nginx k", in: "64k", want: 64 << 10},
	{name: "upper-case K", in: "64K", want: 64 << 10},
	{name: "KB", in: "64KB", want: 64 << 10},
	{name: "KiB", in: "64KiB", want: 64 << 10},
	{name: "MB", in: "10MB", want: 10 << 20},
	{name: "lower-case m", in: "10m", want: 10 << 20},
	{name: "GB", in: "1GB", want: 1 << 30},
	{name: "TB", in: "2TB", want: 2 << 40},
	{name: "zero", in: "0", want: 0},
	{name: "maximum", in: "9223372036854775807", want: math.MaxInt64},

	{name: "empty", in: "", wantErr: `invalid size "": empty`},
	{name: "negative", in: "-1KB", wantErr: "negative sizes are not allowed"},
	{name: "fraction with exact form", in: "1.5MB", wantErr: "fractions are not allowed; write 1536KB"},
	{name: "fraction of a byte", in: "1.5", wantErr: "fractions are not allowed; write a whole number"},
	{name: "dot without fraction", in: "1.", wantErr: "fractions are not allowed"},
	{name: "unknown unit", in: "10XB", wantErr: `unknown unit "XB"`},
	{name: "space before unit", in: "64 KB", wantErr: `unknown unit " KB"`},
	{name: "kelvin sign is not k", in: "64\u212aB", wantErr: "unknown unit \"\u212aB\""},
	{name: "invalid UTF-8 unit", in: "0\xb20", wantErr: `unknown unit "\xb20"`},
	{name: "no number", in: "KB", wantErr: "expected a number"},
	{name: "overflow", in: "9223372036854775807KB", wantErr: "too large"},
	{name: "overflow digits", in: "99999999999999999999", wantErr: "too large"},
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range sizeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSize(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseSize(%q) = %v, %v, want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSize(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0B"},
		{512, "512B"},
		{64 << 10, "64KB"},
		{3 << 19, "1536KB"},
		{10 << 20, "10MB"},
		{1 << 30, "1GB"},
		{5 << 40, "5TB"},
		{1<<20 + 1, "1048577B"},
	} {
		if got := FormatSize(tc.in); got != tc.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

var prefixCases = []struct {
	name    string
	in      string
	want    string
	wantErr string
}{
	{name: "IPv4 CIDR", in: "10.0.0.0/8", want: "10.0.0.0/8"},
	{name: "bare IPv4", in: "203.0.113.7", want: "203.0.113.7/32"},
	{name: "IPv6 CIDR", in: "2001:db8::/32", want: "2001:db8::/32"},
	{name: "bare IPv6", in: "2001:db8::1", want: "2001:db8::1/128"},
	{name: "mapped address folded", in: "::ffff:203.0.113.7", want: "203.0.113.7/32"},
	{name: "mapped prefix folded", in: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
	{name: "everything v4", in: "0.0.0.0/0", want: "0.0.0.0/0"},
	{name: "everything v6", in: "::/0", want: "::/0"},

	{name: "host bits v4", in: "10.0.0.1/8", wantErr: `invalid prefix "10.0.0.1/8": host bits are set; did you mean 10.0.0.0/8?`},
	{name: "host bits v6", in: "2001:db8::1/32", wantErr: "did you mean 2001:db8::/32?"},
	{name: "length too long", in: "10.0.0.0/33", wantErr: `prefix length "33" is not a number between 0 and 32`},
	{name: "negative length", in: "10.0.0.0/-1", wantErr: `prefix length "-1"`},
	{name: "signed length", in: "10.0.0.0/+8", wantErr: `prefix length "+8"`},
	{name: "empty length", in: "10.0.0.0/", wantErr: `prefix length ""`},
	{name: "garbage", in: "abc", wantErr: "not an IP address or CIDR prefix"},
	{name: "empty", in: "", wantErr: "not an IP address or CIDR prefix"},
	{name: "zone", in: "fe80::1%eth0", wantErr: "zones are not allowed"},
	{name: "short mapped prefix", in: "::ffff:0:0/95", wantErr: "at least 96"},
}

func TestParsePrefix(t *testing.T) {
	t.Parallel()
	for _, tc := range prefixCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePrefix(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParsePrefix(%q) = %v, %v, want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != netip.MustParsePrefix(tc.want) {
				t.Fatalf("ParsePrefix(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

var hostPatternCases = []struct {
	name     string
	in       string
	want     string // String()
	wantName string
	wildcard bool
	wantErr  string
}{
	{name: "exact", in: "app.example.com", want: "app.example.com", wantName: "app.example.com"},
	{name: "case and trailing dot", in: "App.Example.COM.", want: "app.example.com", wantName: "app.example.com"},
	{name: "wildcard", in: "*.example.com", want: "*.example.com", wantName: "example.com", wildcard: true},
	{name: "wildcard normalised", in: "*.Example.com.", want: "*.example.com", wantName: "example.com", wildcard: true},
	{name: "single label", in: "localhost", want: "localhost", wantName: "localhost"},
	{name: "punycode", in: "xn--bcher-kva.example", want: "xn--bcher-kva.example", wantName: "xn--bcher-kva.example"},
	{name: "hyphen inside", in: "a-b.example.com", want: "a-b.example.com", wantName: "a-b.example.com"},
	{name: "IPv4 literal", in: "203.0.113.7", want: "203.0.113.7", wantName: "203.0.113.7"},
	{name: "IPv4 with trailing dot", in: "203.0.113.7.", want: "203.0.113.7", wantName: "203.0.113.7"},
	{name: "bracketed IPv6", in: "[2001:DB8::1]", want: "2001:db8::1", wantName: "2001:db8::1"},
	{name: "bare IPv6", in: "2001:db8:0::1", want: "2001:db8::1", wantName: "2001:db8::1"},

	{name: "empty", in: "", wantErr: `invalid host "": empty`},
	{name: "only a dot", in: ".", wantErr: "empty"},
	{name: "catch-all", in: "*", wantErr: "a catch-all host is not supported"},
	{name: "inner wildcard", in: "a.*.example.com", wantErr: `"*" is only allowed as a whole first label`},
	{name: "partial wildcard", in: "*example.com", wantErr: `"*" is only allowed`},
	{name: "double wildcard", in: "*.*.example.com", wantErr: `"*" is only allowed`},
	{name: "non-ASCII", in: "bücher.example", wantErr: "punycode (xn--...)"},
	{name: "port", in: "example.com:8080", wantErr: "a host pattern has no port"},
	{name: "IPv6 with port", in: "[::1]:80", wantErr: "a host pattern has no port"},
	{name: "underscore", in: "ex_ample.com", wantErr: `label "ex_ample" has '_'; allowed are a-z, 0-9 and "-"`},
	{name: "leading hyphen", in: "-a.example.com", wantErr: `label "-a" starts or ends with "-"`},
	{name: "empty label", in: "a..example.com", wantErr: "empty label"},
	{name: "label too long", in: strings.Repeat("a", 64) + ".example.com", wantErr: "longer than 63 characters"},
	{name: "name too long", in: strings.Repeat("a23456789.", 26) + "com", wantErr: "longer than 253 characters"},
	{name: "bad IPv4", in: "10.0.0.300", wantErr: "cannot end with an all-digit label"},
	{name: "wildcard IP", in: "*.203.0.113.7", wantErr: "a wildcard cannot be an IP address"},
	{name: "bracketed IPv4", in: "[203.0.113.7]", wantErr: "is not an IPv6 address"},
	{name: "zone", in: "fe80::1%eth0", wantErr: "zones are not allowed"},
	{name: "space", in: "app example.com", wantErr: `has ' '`},
}

func TestParseHostPattern(t *testing.T) {
	t.Parallel()
	for _, tc := range hostPatternCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseHostPattern(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseHostPattern(%q) = %v, %v, want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got.String() != tc.want || got.Name() != tc.wantName || got.Wildcard() != tc.wildcard {
				t.Fatalf("ParseHostPattern(%q) = %q (name %q, wildcard %v), %v, want %q (name %q, wildcard %v)",
					tc.in, got, got.Name(), got.Wildcard(), err, tc.want, tc.wantName, tc.wildcard)
			}
		})
	}
}

var upstreamCases = []struct {
	name    string
	in      string
	want    string
	wantErr string
}{
	{name: "http with port", in: "http://127.0.0.1:3000", want: "http://127.0.0.1:3000"},
	{name: "https name", in: "https://app.internal", want: "https://app.internal"},
	{name: "IPv6", in: "http://[::1]:8080", want: "http://[::1]:8080"},
	{name: "base path", in: "http://127.0.0.1:3000/base/", want: "http://127.0.0.1:3000/base/"},
	{name: "case folded", in: "HTTP://App.Example.COM:80", want: "http://app.example.com:80"},
	{name: "compose service name", in: "http://my_app:3000", want: "http://my_app:3000"},

	{name: "empty", in: "", wantErr: `invalid upstream "": empty`},
	{name: "no scheme", in: "127.0.0.1:3000", wantErr: "no scheme; write http://127.0.0.1:3000 or https://127.0.0.1:3000"},
	{name: "other scheme", in: "ftp://files.example.com", wantErr: `scheme "ftp" is not http or https`},
	{name: "user info", in: "http://user:pw@127.0.0.1", wantErr: "user info is not allowed"},
	{name: "query", in: "http://127.0.0.1/?a=b", wantErr: "a query is not allowed"},
	{name: "empty query", in: "http://127.0.0.1/?", wantErr: "a query is not allowed"},
	{name: "fragment", in: "http://127.0.0.1/#top", wantErr: "a fragment is not allowed"},
	{name: "empty fragment", in: "http://127.0.0.1/#", wantErr: "a fragment is not allowed"},
	{name: "no host", in: "http:///path", wantErr: "no host"},
	{name: "port zero", in: "http://127.0.0.1:0", wantErr: `port "0" is not a number between 1 and 65535`},
	{name: "port too large", in: "http://127.0.0.1:99999", wantErr: `port "99999"`},
	{name: "empty port", in: "http://127.0.0.1:", wantErr: "empty port"},
	{name: "space in host", in: "http://exa mple.com", wantErr: "invalid character"},
}

func TestParseUpstream(t *testing.T) {
	t.Parallel()
	for _, tc := range upstreamCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseUpstream(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseUpstream(%q) = %v, %v, want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("ParseUpstream(%q) = %q, %v, want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestUpstreamURLIsACopy(t *testing.T) {
	t.Parallel()
	u, err := ParseUpstream("http://127.0.0.1:3000/base")
	if err != nil {
		t.Fatal(err)
	}
	u.URL().Path = "/changed"
	if got := u.String(); got != "http://127.0.0.1:3000/base" {
		t.Errorf("Upstream.String() after changing URL() = %q, want %q", got, "http://127.0.0.1:3000/base")
	}
	if got := (Upstream{}).URL(); got != nil {
		t.Errorf("Upstream{}.URL() = %v, want nil", got)
	}
}
