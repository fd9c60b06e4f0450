package fleet

import (
	"strings"
	"testing"
)

var banValueCases = []struct {
	name    string
	in      string
	want    banValue
	wantErr string
}{
	{name: "manual ban", in: "1764000000000000|1763990000000000|0|node-a|0:|operator note",
		want: banValue{Until: 1764000000000000, Rev: 1763990000000000, Node: "node-a", Reason: "operator note"}},
	{name: "jail ban", in: "20|10|3|b|6:probes|probe",
		want: banValue{Until: 20, Rev: 10, Count: 3, Node: "b", Jail: "probes", Reason: "probe"}},
	{name: "bars in jail and reason", in: "20|10|1|b|3:a|b|x|y",
		want: banValue{Until: 20, Rev: 10, Count: 1, Node: "b", Jail: "a|b", Reason: "x|y"}},
	{name: "empty reason", in: "20|10|1|b|1:j|", want: banValue{Until: 20, Rev: 10, Count: 1, Node: "b", Jail: "j"}},
	{name: "too few fields", in: "20|10|1", wantErr: "too few fields"},
	{name: "negative until", in: "-20|10|1|b|0:|", wantErr: "until"},
	{name: "leading zero", in: "020|10|1|b|0:|", wantErr: "until"},
	{name: "rev past 2^53", in: "20|9007199254740993|1|b|0:|", wantErr: "rev"},
	{name: "count too large", in: "20|10|65536|b|0:|", wantErr: "count"},
	{name: "jail length past end", in: "20|10|1|b|9:abc|", wantErr: "jail"},
	{name: "jail length without bar", in: "20|10|1|b|2:abc", wantErr: "jail"},
	{name: "no jail length", in: "20|10|1|b|probes|x", wantErr: "jail"},
}

func TestParseBanValue(t *testing.T) {
	t.Parallel()
	for _, tc := range banValueCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBanValue(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseBanValue(%q) = %+v, %v, want an error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseBanValue(%q) = %+v, %v, want %+v", tc.in, got, err, tc.want)
			}
			if s := got.String(); s != tc.in {
				t.Errorf("String() = %q, want %q", s, tc.in)
			}
		})
	}
}

// FuzzParseBanValue: whatever parses prints back to the same text, and
// what the Go side writes the Lua pattern reads the same way.
func FuzzParseBanValue(f *testing.F) {
	for _, tc := range banValueCases { // valid and invalid forms
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseBanValue(s)
		if err != nil {
			return
		}
		if got := v.String(); got != s {
			t.Fatalf("parseBanValue(%q).String() = %q, want the input", s, got)
		}
		if strings.Contains(v.Node, "|") {
			t.Fatalf("parseBanValue(%q): node %q holds a bar", s, v.Node)
		}
	})
}

func TestParseTombValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    tombValue
		wantErr string
	}{
		{name: "tombstone", in: "10|20|node-a", want: tombValue{Rev: 10, Keep: 20, Node: "node-a"}},
		{name: "missing node", in: "10|20", wantErr: "malformed"},
		{name: "bad keep", in: "10|x|a", wantErr: "keep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTombValue(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseTombValue(%q) = %+v, %v, want an error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want || got.String() != tc.in {
				t.Fatalf("parseTombValue(%q) = %+v, %v, want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzParseTombValue(f *testing.F) {
	f.Add("10|20|node-a") // valid
	f.Add("10|20")        // too few fields
	f.Add("01|20|a")      // leading zero
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseTombValue(s)
		if err == nil && v.String() != s {
			t.Fatalf("parseTombValue(%q).String() = %q, want the input", s, v.String())
		}
	})
}

func FuzzParseClient(f *testing.F) {
	f.Add("203.0.113.7/32")       // IPv4 address
	f.Add("2001:db8::/64")        // IPv6 prefix
	f.Add("203.0.113.7/24")       // not masked
	f.Add("::ffff:192.0.2.1/128") // mapped
	f.Add("2001:DB8::/64")        // not canonical
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseClient(s)
		if err != nil {
			return
		}
		if p.String() != s || p.Masked() != p {
			t.Fatalf("parseClient(%q) = %s, want the input, masked", s, p)
		}
	})
}

func TestCompareIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"1-0", "1-0", 0},
		{"1-1", "1-0", 1},
		{"2-0", "10-0", -1},
		{"0-0", "1700000000000-5", -1},
		{"1700000000000-10", "1700000000000-9", 1},
	}
	for _, tc := range tests {
		if got := compareIDs(tc.a, tc.b); got != tc.want {
			t.Errorf("compareIDs(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
