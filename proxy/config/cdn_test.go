package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrustedProxiesParse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	list := filepath.Join(dir, "lb.txt")
	if err := os.WriteFile(list, []byte("# load balancers\n203.0.113.0/28\n198.51.100.7 ; one host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := minimal + "trusted_proxies: [cloudflare, 10.0.0.0/8, \"file:" + list + "\", \"url:https://lists.example.com/lb.txt\", fastly]\nintel: {refresh: 6h}\n"
	f, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tp := range f.TrustedProxies {
		got = append(got, tp.String())
	}
	want := "cloudflare 10.0.0.0/8 file:" + list + " url:https://lists.example.com/lb.txt fastly"
	if strings.Join(got, " ") != want {
		t.Errorf("trusted_proxies = %q, want %q", strings.Join(got, " "), want)
	}
	if sum := f.Summary(); !strings.Contains(sum, ", trusted: cloudflare (snapshot 20") || !strings.Contains(sum, "file:"+list+", url:https://lists.example.com/lb.txt, fastly (snapshot 20") {
		t.Errorf("Summary() = %q, want the named sets with their snapshot dates", sum)
	}
	if ps := f.TrustedPrefixes(); len(ps) != 1 || ps[0].String() != "10.0.0.0/8" {
		t.Errorf("TrustedPrefixes() = %v, want [10.0.0.0/8]", ps)
	}
	if sets := f.TrustedSets(); len(sets) != 4 || sets[0].Provider != "cloudflare" || sets[1].File != list || sets[2].URL == "" {
		t.Errorf("TrustedSets() = %+v", sets)
	}
}

func TestTrustedProxiesErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(bad, []byte("not-an-address\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "misspelt provider", in: "trusted_proxies:\n  - 10.0.0.0/8\n  - cloudflar\n",
			wantErr: `t.yaml:6: trusted_proxies[1]: "cloudflar" is not an IP address, CIDR prefix, provider (cloudflare, cloudfront, fastly), file:PATH or url:URL (did you mean "cloudflare"?)`},
		{name: "upper case provider", in: "trusted_proxies: [Fastly]\n",
			wantErr: `t.yaml:4: trusted_proxies[0]: "Fastly" is not an IP address, CIDR prefix, provider (cloudflare, cloudfront, fastly), file:PATH or url:URL (did you mean "fastly"?)`},
		{name: "bad prefix still named", in: "trusted_proxies: [10.0.0.1/8]\n",
			wantErr: `t.yaml:4: trusted_proxies[0]: invalid prefix "10.0.0.1/8": host bits are set; did you mean 10.0.0.0/8?`},
		{name: "empty file", in: "trusted_proxies: [\"file:\"]\n",
			wantErr: `t.yaml:4: trusted_proxies[0]: "file:": file: needs a path`},
		{name: "relative file", in: "trusted_proxies: [\"file:lb.txt\"]\n",
			wantErr: `t.yaml:4: trusted_proxies[0]: file:lb.txt: the path is not absolute`},
		{name: "missing file", in: "trusted_proxies:\n  - \"file:" + filepath.Join(dir, "nope.txt") + "\"\n",
			wantErr: `t.yaml:5: trusted_proxies[0]: file:` + filepath.Join(dir, "nope.txt") + `: open ` + filepath.Join(dir, "nope.txt") + `: no such file or directory`},
		{name: "list that does not parse", in: "trusted_proxies:\n  - \"file:" + bad + "\"\n",
			wantErr: `t.yaml:5: trusted_proxies[0]: file:` + bad + `: plain list: line 1: malformed list`},
		{name: "ftp url", in: "trusted_proxies: [\"url:ftp://example.com/x\"]\n",
			wantErr: `t.yaml:4: trusted_proxies[0]: "url:ftp://example.com/x": url: needs an http or https URL`},
		{name: "url with credentials", in: "trusted_proxies: [\"url:https://u:p@example.com/x\"]\n",
			wantErr: `t.yaml:4: trusted_proxies[0]: "url:https://u:p@example.com/x": user info in a list URL`},
		{name: "url never fetched", in: "trusted_proxies:\n  - \"url:https://example.com/lb.txt\"\n",
			wantErr: `t.yaml:5: trusted_proxies[0]: url:https://example.com/lb.txt is never fetched: set intel.refresh`},
		{name: "url query never shown", in: "trusted_proxies:\n  - \"url:https://example.com/lb.txt?key=s3cret\"\n",
			wantErr: `t.yaml:5: trusted_proxies[0]: url:https://example.com/lb.txt?… is never fetched`},
		{name: "url without copy", in: "state_dir: " + state + "\ntrusted_proxies:\n  - \"url:https://example.com/lb.txt\"\n",
			wantErr: `t.yaml:6: trusted_proxies[0]: url:https://example.com/lb.txt has no copy in state_dir and intel.refresh is off`},
		{name: "repeated", in: "trusted_proxies: [cloudflare, 10.0.0.0/8, cloudflare]\n",
			wantErr: `t.yaml:4: trusted_proxies[2]: cloudflare is already trusted_proxies[0]`},
		{name: "empty entry", in: "trusted_proxies: [\"\"]\n",
			wantErr: `t.yaml:4: trusted_proxies[0]: empty entry; write an IP address, CIDR prefix, provider (cloudflare, cloudfront, fastly), file:PATH or url:URL`},
		{name: "mapping", in: "trusted_proxies: [{cloudflare: true}]\n",
			wantErr: `t.yaml:4: trusted_proxies[0]: expected an IP address, CIDR prefix, provider name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("t.yaml", []byte(minimal+tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse(%q) = %v, want error containing %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestTrustedProxiesSkippedLineWarning(t *testing.T) {
	t.Parallel()
	list := filepath.Join(t.TempDir(), "lb.txt")
	if err := os.WriteFile(list, []byte("203.0.113.0/24\n203.0.113.300\n198.51.100.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Parse("t.yaml", []byte(minimal+"trusted_proxies: [\"file:"+list+"\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "t.yaml:4: trusted_proxies[0]: warning: file:" + list + ": 1 malformed lines are skipped, the first: plain list: line 2: malformed list: \"203.0.113.300\" is not an address or prefix"
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0].Error(), want) {
		t.Errorf("warnings = %v, want %q", f.Warnings, want)
	}
}

func TestTrustedProxiesURLWithoutStateDirWarning(t *testing.T) {
	t.Parallel()
	f, err := Parse("t.yaml", []byte(minimal+"trusted_proxies: [\"url:https://example.com/lb.txt\"]\nintel: {refresh: 1h}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "t.yaml:4: trusted_proxies[0]: warning: url:https://example.com/lb.txt has no last good copy without state_dir"
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0].Error(), want) {
		t.Errorf("warnings = %v, want %q", f.Warnings, want)
	}
}

func TestTrustedProxiesCopyAccepted(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	tp := TrustedProxy{URL: "https://example.com/lb.txt"}
	p := TrustedListCopy(state, tp)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("203.0.113.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("t.yaml", []byte(minimal+"state_dir: "+state+"\ntrusted_proxies: [\"url:https://example.com/lb.txt\"]\n")); err != nil {
		t.Errorf("a url: list with a last good copy and no refresh: %v", err)
	}
}

func TestTrustedProxiesPublicListenWarning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, listen, trusted string
		want                  string // "" for no warning
	}{
		{name: "wildcard", listen: `":8080"`, trusted: "[cloudflare]",
			want: `t.yaml:5: trusted_proxies: warning: cloudflare is trusted but listen.http ":8080" accepts any peer (every address)`},
		{name: "public address", listen: `"203.0.113.5:80"`, trusted: "[10.0.0.0/8, fastly]",
			want: `fastly is trusted but listen.http "203.0.113.5:80" accepts any peer (203.0.113.5)`},
		{name: "loopback", listen: `"127.0.0.1:8080"`, trusted: "[cloudflare]"},
		{name: "no cdn", listen: `":8080"`, trusted: "[10.0.0.0/8]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse("t.yaml", []byte(minimal+"listen: {http: "+tc.listen+"}\ntrusted_proxies: "+tc.trusted+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, w := range f.Warnings {
				if strings.Contains(w.Error(), "trusted_proxies") {
					got = w.Error()
				}
			}
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("warning = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzParseTrustedProxy: an accepted entry prints back to an entry that
// parses to the same value.
func FuzzParseTrustedProxy(f *testing.F) {
	// Providers, prefixes, lists, and near misses.
	for _, s := range []string{"cloudflare", "Fastly", "cloudflar", "10.0.0.0/8", "::ffff:10.0.0.1", "10.0.0.1/8",
		"file:/etc/lb.txt", "file:", "url:https://example.com/x", "url:ftp://x", "url:https://u@x/", "url:http://x/#f", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTrustedProxy(s)
		if err != nil {
			return
		}
		back, err := ParseTrustedProxy(tp.String())
		if err != nil || back != tp {
			t.Fatalf("ParseTrustedProxy(%q) = %+v, whose String %q parses to %+v, %v", s, tp, tp.String(), back, err)
		}
		if tp.IsValid() && tp.Named() == tp.Prefix.IsValid() {
			t.Fatalf("ParseTrustedProxy(%q) = %+v: Named and Prefix disagree", s, tp)
		}
	})
}
