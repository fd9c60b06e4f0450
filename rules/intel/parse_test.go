package intel

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParsePlain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		in          string
		want        []string
		wantSkipped int
		wantErr     string
	}{
		{
			name: "netset with comments and CRLF",
			in:   "# header\r\n\r\n203.0.113.0/24\r\n198.51.100.7\r\n",
			want: []string{"203.0.113.0/24", "198.51.100.7/32"},
		},
		{
			name: "spamhaus text drop",
			in:   "; Spamhaus DROP List 2025/04/15\n; Last-Modified: Tue, 15 Apr 2025\n1.10.16.0/20 ; SBL256894\n1.19.0.0/16 ; SBL434604\n",
			want: []string{"1.10.16.0/20", "1.19.0.0/16"},
		},
		{
			name: "trailing hash comment and blanks",
			in:   "  2001:db8::/32\t# documentation\n\t198.51.100.0/24#x\n",
			want: []string{"2001:db8::/32", "198.51.100.0/24"},
		},
		{
			name: "only comments is an empty list",
			in:   "# nothing listed today\n",
		},
		{
			name:        "a few malformed lines are skipped",
			in:          "203.0.113.0/24\nnot-an-ip\n198.51.100.1\n",
			want:        []string{"203.0.113.0/24", "198.51.100.1/32"},
			wantSkipped: 1,
		},
		{
			name:    "an HTML error page is refused",
			in:      "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n</body>\n</html>\n",
			wantErr: "plain list: line 1: malformed list: 6 malformed lines against 0 entries",
		},
		{
			name:    "one bad line and nothing good is refused",
			in:      "# list\nSorry, rate limited\n",
			wantErr: "line 2: malformed list: 1 malformed lines against 0 entries",
		},
		{
			name:    "mostly garbage with a few addresses is refused",
			in:      "203.0.113.1\nx\ny\nz\nw\n",
			wantErr: "line 2: malformed list: 4 malformed lines against 1 entries",
		},
		{
			name:    "two fields on a line",
			in:      "203.0.113.1 198.51.100.1\n",
			wantErr: `line 1: malformed list: 1 malformed lines against 0 entries, first: malformed list: "203.0.113.1 198.51.100.1" is not an address or prefix`,
		},
		{
			name:    "zone refused",
			in:      "fe80::1%eth0\n",
			wantErr: "line 1:",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := Parse(strings.NewReader(tc.in), FormatPlain, Limits{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("Parse(%q) error %v is not ErrMalformed", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got, want := prefixStrings(l.Prefixes), tc.want; !slices.Equal(got, want) {
				t.Errorf("Parse(%q) = %v, want %v", tc.in, got, want)
			}
			if l.Skipped != tc.wantSkipped {
				t.Errorf("Parse(%q).Skipped = %d, want %d", tc.in, l.Skipped, tc.wantSkipped)
			}
		})
	}
}

func prefixStrings(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func TestParseLimits(t *testing.T) {
	t.Parallel()
	list := "203.0.113.1\n203.0.113.2\n203.0.113.3\n"
	if _, err := Parse(strings.NewReader(list), FormatPlain, Limits{MaxPrefixes: 2}); !errors.Is(err, ErrTooMany) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("Parse(3 prefixes, cap 2) error = %v, want ErrTooMany at line 3", err)
	}
	if _, err := Parse(strings.NewReader(list), FormatPlain, Limits{MaxBytes: int64(len(list) - 1)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Parse(%d bytes, cap %d) error = %v, want ErrTooLarge", len(list), len(list)-1, err)
	}
	if l, err := Parse(strings.NewReader(list), FormatPlain, Limits{MaxBytes: int64(len(list)), MaxPrefixes: 3}); err != nil || len(l.Prefixes) != 3 {
		t.Errorf("Parse at exactly its caps = %v, %v, want 3 prefixes", l, err)
	}
	js := `{"addresses":["203.0.113.0/24"],"ipv6_addresses":[]}`
	if _, err := Parse(strings.NewReader(js), FormatFastlyJSON, Limits{MaxBytes: 10}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Parse(fastly over cap) error = %v, want ErrTooLarge", err)
	}
	if _, err := Parse(strings.NewReader(strings.Repeat("9", maxLine+1)), FormatPlain, Limits{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("Parse(one %d-byte line) error = %v, want ErrMalformed", maxLine+1, err)
	}
	if _, err := Parse(strings.NewReader(""), Format("csv"), Limits{}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("Parse(format csv) error = %v, want ErrUnknownFormat", err)
	}
}

func TestParseSpamhaus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr string
	}{
		{
			name: "v4 and v6 with metadata",
			in: `{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}
{"cidr":"2a06:e480::/29","sblid":"SBL301771","rir":"ripencc"}
{"type":"metadata","timestamp":1744682874,"size":85741,"records":2,"copyright":"(c) 2025 The Spamhaus Project SLU"}
`,
			want: 2,
		},
		{
			name: "no metadata",
			in:   "{\"cidr\":\"1.10.16.0/20\",\"sblid\":\"SBL256894\",\"rir\":\"apnic\"}\r\n",
			want: 1,
		},
		{
			name:    "truncated: records disagree",
			in:      `{"cidr":"1.10.16.0/20"}` + "\n" + `{"type":"metadata","records":1406}` + "\n",
			wantErr: "line 2: malformed list: metadata says 1406 records, the list holds 1",
		},
		{
			name:    "cut mid-line",
			in:      `{"cidr":"1.10.16.0/20"}` + "\n" + `{"cidr":"1.19.0`,
			wantErr: "line 2: malformed list:",
		},
		{
			name:    "bad cidr",
			in:      `{"cidr":"1.10.16.0/40"}`,
			wantErr: `line 1: malformed list: cidr "1.10.16.0/40"`,
		},
		{
			name:    "plain text is not this format",
			in:      "1.10.16.0/20 ; SBL256894\n",
			wantErr: "line 1: malformed list:",
		},
		{
			name:    "entry after metadata",
			in:      `{"type":"metadata"}` + "\n" + `{"cidr":"1.10.16.0/20"}`,
			wantErr: "line 2: malformed list: entry after the metadata line 1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := Parse(strings.NewReader(tc.in), FormatSpamhausDropJSON, Limits{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(l.Prefixes) != tc.want {
				t.Errorf("Parse gave %d prefixes, want %d", len(l.Prefixes), tc.want)
			}
		})
	}
}

func TestParseCrowdSec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		in          string
		want        []string
		wantIgnored int
		wantErr     string
	}{
		{
			name: "decisions array",
			in: `[{"duration":"3h59m55s","id":1,"origin":"crowdsec","scenario":"crowdsecurity/ssh-bf","scope":"Ip","type":"ban","value":"198.51.100.7"},
{"duration":"1h","id":2,"origin":"cscli","scenario":"manual","scope":"Range","type":"ban","value":"203.0.113.0/24"},
{"duration":"1h","id":3,"origin":"crowdsec","scenario":"x","scope":"Ip","type":"captcha","value":"198.51.100.8"},
{"duration":"1h","id":4,"origin":"cscli","scenario":"x","scope":"Country","type":"ban","value":"XX"},
{"duration":"-5m12s","id":5,"origin":"crowdsec","scenario":"crowdsecurity/ssh-bf","scope":"Ip","type":"ban","value":"198.51.100.9"}]`,
			want:        []string{"198.51.100.7/32", "203.0.113.0/24"},
			wantIgnored: 3,
		},
		{
			name: "stream object reads new",
			in:   `{"deleted":[{"scope":"Ip","type":"ban","value":"198.51.100.9"}],"new":[{"scope":"ip","type":"ban","value":"2001:db8::1"}]}`,
			want: []string{"2001:db8::1/128"},
		},
		{name: "no decisions", in: "null\n"},
		{name: "empty stream", in: `{"deleted":null,"new":null}`},
		{
			name:    "bad value names its line",
			in:      "[\n{\"scope\":\"Ip\",\"type\":\"ban\",\"value\":\"198.51.100.7\"},\n{\"scope\":\"Ip\",\"type\":\"ban\",\"value\":\"not-ip\"}\n]",
			wantErr: `line 3: malformed list: decision value "not-ip"`,
		},
		{name: "truncated", in: `[{"scope":"Ip","type":"ban","value":"198.51.100.7"},{"sco`, wantErr: "line 1: malformed list: truncated JSON document"},
		{name: "error object", in: `{"message":"access forbidden"}`, wantErr: `an object without "new" or "deleted"`},
		{name: "empty body", in: "", wantErr: "empty answer"},
		{name: "trailing data", in: "[]\n[]", wantErr: "line 2: malformed list: data after the JSON document"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := Parse(strings.NewReader(tc.in), FormatCrowdSec, Limits{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := prefixStrings(l.Prefixes); !slices.Equal(got, tc.want) {
				t.Errorf("Parse = %v, want %v", got, tc.want)
			}
			if l.Ignored != tc.wantIgnored {
				t.Errorf("Ignored = %d, want %d", l.Ignored, tc.wantIgnored)
			}
		})
	}
}

func TestParseProviderFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		f       Format
		in      string
		want    []string
		wantErr string
	}{
		{
			name: "fastly",
			f:    FormatFastlyJSON,
			in:   `{"addresses":["23.235.32.0/20"],"ipv6_addresses":["2a04:4e40::/32"]}`,
			want: []string{"23.235.32.0/20", "2a04:4e40::/32"},
		},
		{name: "fastly without addresses", f: FormatFastlyJSON, in: `{"ipv6_addresses":[]}`, wantErr: `no "addresses" key`},
		{name: "fastly bad entry", f: FormatFastlyJSON, in: "{\"addresses\":[\n\"23.235.32.0/20\",\n\"23.235.32.0/33\"]}", wantErr: `line 3: malformed list: "23.235.32.0/33"`},
		{
			name: "cloudfront list",
			f:    FormatCloudFrontJSON,
			in:   `{"CLOUDFRONT_GLOBAL_IP_LIST":["120.52.22.96/27"],"CLOUDFRONT_REGIONAL_EDGE_IP_LIST":["13.113.196.64/26"]}`,
			want: []string{"120.52.22.96/27", "13.113.196.64/26"},
		},
		{name: "cloudfront wrong document", f: FormatCloudFrontJSON, in: `{"addresses":[]}`, wantErr: `no "CLOUDFRONT_GLOBAL_IP_LIST" key`},
		{
			name: "aws ip-ranges keeps CLOUDFRONT",
			f:    FormatAWSCloudFront,
			in: `{"syncToken":"1","createDate":"2026-08-22-15-17-05","prefixes":[
{"ip_prefix":"3.5.140.0/22","region":"ap-northeast-2","service":"AMAZON","network_border_group":"ap-northeast-2"},
{"ip_prefix":"120.52.22.96/27","region":"GLOBAL","service":"CLOUDFRONT","network_border_group":"GLOBAL"}],
"ipv6_prefixes":[{"ipv6_prefix":"2600:9000::/28","region":"GLOBAL","service":"CLOUDFRONT","network_border_group":"GLOBAL"}]}`,
			want: []string{"120.52.22.96/27", "2600:9000::/28"},
		},
		{name: "html page", f: FormatAWSCloudFront, in: "<html>\n</html>", wantErr: "line 1: malformed list: invalid character '<'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := Parse(strings.NewReader(tc.in), tc.f, Limits{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := prefixStrings(l.Prefixes); !slices.Equal(got, tc.want) {
				t.Errorf("Parse = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestParseSamples reads the real samples under testdata (see
// testdata/README.md) and checks figures counted independently of the
// parser.
func TestParseSamples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		f       Format
		want    int
		in, out string // an address the list holds, one it does not
	}{
		{"firehol_level1.netset", FormatPlain, 314, "5.8.60.90", "5.8.60.91"},
		{"spamhaus_drop_v4.json", FormatSpamhausDropJSON, 300, "1.10.31.255", "1.10.32.0"},
		{"crowdsec_decisions.json", FormatCrowdSec, 193, "", "8.8.8.8"},
		{"crowdsec_stream.json", FormatCrowdSec, 96, "", "8.8.8.8"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			f, err := os.Open("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			l, err := Parse(f, tc.f, Limits{})
			if err != nil {
				t.Fatalf("Parse(%s): %v", tc.file, err)
			}
			if len(l.Prefixes) != tc.want || l.Skipped != 0 {
				t.Errorf("Parse(%s) = %d prefixes, %d skipped, want %d, 0", tc.file, len(l.Prefixes), l.Skipped, tc.want)
			}
			s := NewSet(l.Prefixes)
			if tc.in != "" && !s.Contains(netip.MustParseAddr(tc.in)) {
				t.Errorf("%s: Contains(%s) = false, want true", tc.file, tc.in)
			}
			if s.Contains(netip.MustParseAddr(tc.out)) {
				t.Errorf("%s: Contains(%s) = true, want false", tc.file, tc.out)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	for _, f := range Formats() {
		if got, err := ParseFormat(string(f)); got != f || err != nil {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	_, err := ParseFormat("netset")
	if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), `"netset": not one of plain, spamhaus-drop-json, crowdsec,`) {
		t.Errorf("ParseFormat(netset) error = %v", err)
	}
}
