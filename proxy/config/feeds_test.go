package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFeedDefaults: a feed takes plain and drop, and a url feed the
// refresh of intel.refresh, else an hour; an unquoted 403 is the 403
// action.
func TestFeedDefaults(t *testing.T) {
	t.Parallel()
	list := filepath.Join(t.TempDir(), "blocked.txt")
	if err := os.WriteFile(list, []byte(`{"cidr":"198.51.100.0/24","sblid":"SBL1","rir":"ripencc"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		intel string
		want  time.Duration
	}{
		{"", time.Hour},
		{"  refresh: 6h\n", 6 * time.Hour},
	} {
		f, err := Parse("t.yaml", []byte(`hosts:
  - match: [a.example.com]
    upstreams: [http://127.0.0.1:3000]
intel:
`+tc.intel+`  feeds:
    - {name: firehol1, url: "https://feeds.example.net/firehol_level1.netset"}
    - {name: local, file: `+list+`, format: spamhaus-drop-json, action: 403}
    - {name: fast, url: "http://127.0.0.1:8000/list", refresh: 5s, format: crowdsec}
`))
		if err != nil {
			t.Fatal(err)
		}
		if w := f.Warnings.Error(); !strings.Contains(w, "intel.feeds[2].refresh: warning: 5s is shorter than 1m0s: public list publishers ban clients") {
			t.Errorf("warnings = %v", w)
		}
		want := []Feed{
			{Name: "firehol1", URL: "https://feeds.example.net/firehol_level1.netset", Format: "plain", Action: "drop", Refresh: Duration(tc.want)},
			{Name: "local", File: list, Format: "spamhaus-drop-json", Action: "403"},
			{Name: "fast", URL: "http://127.0.0.1:8000/list", Format: "crowdsec", Action: "drop", Refresh: Duration(5 * time.Second)},
		}
		for i, w := range want {
			if got := f.Intel.Feeds[i]; got != w {
				t.Errorf("intel %q: feeds[%d] = %+v, want %+v", tc.intel, i, got, w)
			}
		}
	}
}

// TestFeedErrors: every mistake in a feed is named with its line.
func TestFeedErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	broad := filepath.Join(dir, "broad.txt")
	html := filepath.Join(dir, "page.txt")
	for path, data := range map[string]string{broad: "0.0.0.0/1\n128.0.0.0/1\n", html: "<html>\n<body>502</body>\n</html>\n"} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Parse("t.yaml", []byte(`hosts:
  - match: [a.example.com]
    upstreams: [http://127.0.0.1:3000]
intel:
  feeds:
    - {name: Fire.HOL, url: "https://x.example/l"}
    - {name: a, url: "ftp://x.example/l"}
    - {name: a, file: `+filepath.Join(dir, "missing.txt")+`}
    - {name: b}
    - {name: c, url: "https://x.example/l", file: `+dir+`}
    - {name: d, file: `+dir+`, refresh: 1h}
    - {name: e, url: "https://x.example/l", refresh: 500ms, format: csv, action: deny}
    - {name: f, file: `+broad+`}
    - {name: g, file: `+html+`}
`))
	if err == nil {
		t.Fatal("config accepted")
	}
	for _, want := range []string{
		`t.yaml:6: intel.feeds[0].name: "Fire.HOL": write 1 to 16 characters`,
		`t.yaml:7: intel.feeds[1].url: "ftp://x.example/l" is not an http:// or https:// URL`,
		`t.yaml:8: intel.feeds[2].name: "a" is also intel.feeds[1]`,
		`t.yaml:8: intel.feeds[2].file: open ` + filepath.Join(dir, "missing.txt") + `: no such file or directory`,
		`t.yaml:9: intel.feeds[3]: write url or file`,
		`t.yaml:10: intel.feeds[4].file: write url or file, not both`,
		`t.yaml:11: intel.feeds[5].refresh: a file feed is re-read when the file changes`,
		`t.yaml:11: intel.feeds[5].file: ` + dir + ` is a directory`,
		`t.yaml:12: intel.feeds[6].refresh: 500ms is shorter than 1s`,
		`t.yaml:12: intel.feeds[6].format: "csv": write plain, spamhaus-drop-json or crowdsec`,
		`t.yaml:12: intel.feeds[6].action: "deny": write drop or "403"`,
		`t.yaml:13: intel.feeds[7].file: ` + broad + `: list too broad: it covers 4294967296 IPv4 addresses`,
		`t.yaml:14: intel.feeds[8].file: ` + html + `: plain list: line 1: malformed list`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestFeedDropNeedsPorts: a drop feed with a firewall but no
// firewall.ports is a warning: it stays out of the kernel.
func TestFeedDropNeedsPorts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		firewall string
		warn     bool
	}{
		{"{backend: nftables}", true},
		{"{backend: nftables, ports: [80, 443]}", false},
		{"{backend: none}", false},
	} {
		f, err := Parse("t.yaml", []byte(`hosts:
  - match: [a.example.com]
    upstreams: [http://127.0.0.1:3000]
firewall: `+tc.firewall+`
intel:
  feeds:
    - {name: firehol1, url: "https://feeds.example.net/firehol_level1.netset"}
`))
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(f.Warnings.Error(), "t.yaml:7: intel.feeds[0].action: warning: drop feeds go into the kernel only with firewall.ports")
		if got != tc.warn {
			t.Errorf("firewall %s: warnings %q, want the ports warning %v", tc.firewall, f.Warnings.Error(), tc.warn)
		}
	}
}

// TestFeedAPIKey: an API key is for url feeds, and must be a value
// gatehouse can send.
func TestFeedAPIKey(t *testing.T) {
	list := filepath.Join(t.TempDir(), "blocked.txt")
	if err := os.WriteFile(list, []byte("198.51.100.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GH_TEST_LAPI_KEY", "k1")
	f, err := Parse("t.yaml", []byte(`hosts:
  - match: [a.example.com]
    upstreams: [http://127.0.0.1:3000]
intel:
  feeds:
    - {name: lapi, url: "http://127.0.0.1:8080/v1/decisions", format: crowdsec, api_key: "env:GH_TEST_LAPI_KEY"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Intel.Feeds[0].APIKey.Value(); got != "k1" {
		t.Errorf("api_key = %q, want k1", got)
	}
	_, err = Parse("t.yaml", []byte(`hosts:
  - match: [a.example.com]
    upstreams: [http://127.0.0.1:3000]
intel:
  feeds:
    - {name: a, file: `+list+`, api_key: "env:GH_TEST_LAPI_KEY"}
    - {name: b, url: "http://127.0.0.1:8080/l", api_key: "sha256:`+strings.Repeat("ab", 32)+`"}
    - {name: c, url: "http://127.0.0.1:8080/l", api_key: "k1"}
`))
	for _, want := range []string{
		"t.yaml:6: intel.feeds[0].api_key: an API key is sent with a url feed's fetches",
		"t.yaml:7: intel.feeds[1].api_key: a sha256: reference cannot be sent",
		"t.yaml:8: intel.feeds[2].api_key",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
