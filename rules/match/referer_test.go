package match

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// designHotlink is the hotlink block of DESIGN.md's example config.
func designHotlink(t testing.TB) *HotlinkMatcher {
	t.Helper()
	m, err := CompileHotlink(HotlinkConfig{
		Paths: []string{"/videos/", "*.mp4", "*.jpg"},
		Allow: []string{"none", "blocked", "example.com", "*.example.com"},
	})
	if err != nil {
		t.Fatalf("CompileHotlink error %v", err)
	}
	return m
}

func TestHotlinkAllowed(t *testing.T) {
	t.Parallel()
	m := designHotlink(t)
	tests := []struct {
		name    string
		referer string
		present bool
		want    bool
	}{
		{"no header", "", false, true},
		{"empty header is blocked", "", true, true},
		{"mangled by a firewall", "XXXXXXX:++++++++++++", true, true},
		{"scheme-relative is blocked", "//evil.test/", true, true},
		{"no scheme is blocked", "evil.test/page", true, true},
		{"ftp is blocked", "ftp://evil.test/", true, true},
		{"exact host", "https://example.com/page", true, true},
		{"http", "http://example.com/", true, true},
		{"no path", "https://example.com", true, true},
		{"query only", "https://example.com?x=1", true, true},
		{"scheme case", "HTTPS://example.com/", true, true},
		{"host case", "https://EXAMPLE.Com/", true, true},
		{"port", "https://example.com:8443/x", true, true},
		{"empty port", "https://example.com:/x", true, true},
		{"trailing dot", "https://example.com./x", true, true},
		{"two trailing dots", "https://example.com../x", true, false},
		{"subdomain", "https://www.example.com/x", true, true},
		{"deep subdomain", "https://a.b.example.com/x", true, true},
		{"other site", "https://evil.test/", true, false},
		{"suffix attack", "https://example.com.evil.test/", true, false},
		{"prefix attack", "https://notexample.com/", true, false},
		{"userinfo attack", "https://example.com@evil.test/", true, false},
		{"userinfo with colon (nginx allows this one)", "https://example.com:x@evil.test/", true, false},
		{"userinfo on allowed host", "https://user:pw@example.com/", true, true},
		{"backslash trick", "https://example.com\\@evil.test/", true, false},
		{"percent in host", "https://exa%6dple.com/", true, false},
		{"non-digit port", "https://example.com:x/", true, false},
		{"empty host", "https:///x", true, false},
		{"host with space", "https://exa mple.com/", true, false},
		{"fragment", "https://example.com#x", true, true},
		{"path looks like host", "https://evil.test/example.com", true, false},
		{"IPv6 not allowed", "http://[2001:db8::1]/", true, false},
	}
	for _, tc := range tests {
		if got := m.Allowed(tc.referer, tc.present); got != tc.want {
			t.Errorf("%s: Allowed(%q, %v) = %v, want %v", tc.name, tc.referer, tc.present, got, tc.want)
		}
	}
}

func TestHotlinkAllowForms(t *testing.T) {
	t.Parallel()
	m, err := CompileHotlink(HotlinkConfig{
		Paths: []string{"/media/"},
		Allow: []string{
			"www.example.org",
			".example.net",
			"mirror.*",
			"partner.test/embed/",
			"bücher.example",
			"[2001:DB8::1]",
			"192.0.2.7",
			"Upper.Example.EDU.",
			`re:^([a-z0-9-]+\.)?trusted\.test(:[0-9]+)?(/|$)`,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		referer string
		want    bool
	}{
		{"https://www.example.org/", true},
		{"https://example.org/", false},
		{"https://a.www.example.org/", false},
		{"https://example.net/", true},
		{"https://cdn.example.net/", true},
		{"https://example.net.evil.test/", false},
		{"https://mirror.com/", true},
		{"https://mirror.co.uk/", true},
		{"https://MIRROR.org:8080/", true},
		{"https://mirror.evil.test/", true}, // nginx semantics of "mirror.*"
		{"https://mirror/", false},
		{"https://www.mirror.com/", false},
		{"https://notmirror.com/", false},
		{"https://partner.test/embed/x", true},
		{"https://partner.test:8080/embed/x", true},
		{"https://partner.test/other/", false},
		{"https://partner.test", false},
		{"https://xn--bcher-kva.example/", true},
		{"https://BÜCHER.example/", true},
		{"https://bücher.example./", true},
		{"https://bucher.example/", false},
		{"http://[2001:db8::1]:8080/x", true},
		{"http://[2001:0db8:0:0::1]/", true},
		{"http://[2001:db8::2]/", false},
		{"http://[2001:db8::1%25eth0]/", false},
		{"http://[2001:db8::1/", false},
		{"http://192.0.2.7:81/", true},
		{"http://192.0.2.70/", false},
		{"https://upper.example.edu/", true},
		{"https://trusted.test/", true},
		{"https://TRUSTED.test:444/", true},
		{"https://cdn.trusted.test/x", true},
		{"https://trusted.test.evil.test/", false},
	}
	for _, tc := range tests {
		if got := m.Allowed(tc.referer, true); got != tc.want {
			t.Errorf("Allowed(%q) = %v, want %v", tc.referer, got, tc.want)
		}
	}
	if m.Allowed("", false) {
		t.Error(`Allowed("", false) = true without "none", want false`)
	}
	if m.Allowed("garbage", true) {
		t.Error(`Allowed("garbage", true) = true without "blocked", want false`)
	}
	var nilM *HotlinkMatcher
	if nilM.Protected("/media/x") || !nilM.Allowed("https://evil.test/", true) {
		t.Error("nil HotlinkMatcher protects something, want nothing")
	}
}

func TestHotlinkProtected(t *testing.T) {
	t.Parallel()
	m := designHotlink(t)
	tests := []struct {
		path string
		want bool
	}{
		{"/videos/a.webm", true},
		{"/VIDEOS/a.webm", true},
		{"/videos", true}, // "/videos/" also covers "/videos"
		{"/videosx", false},
		{"/videosx/a", false},
		{"/a/b.mp4", true},
		{"/a/b.MP4", true},
		{"/a/b.mp4/", true},
		{"/a/b.mp4.html", false},
		{"/img/x.jpg", true},
		{"/img/x.jpeg", false},
		{"/", false},
		{"/index.html", false},
	}
	for _, tc := range tests {
		if got := m.Protected(tc.path); got != tc.want {
			t.Errorf("Protected(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
	// the caller checks the raw path too; a raw path under the
	// prefix is protected even when its canonical form is not.
	raw := "/videos/..;/other/x.webm"
	c, err := Canonical(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Protected(c.Path) || !m.Protected(raw) {
		t.Errorf("Protected(canonical %q) = %v, Protected(raw %q) = %v; want false, true", c.Path, m.Protected(c.Path), raw, m.Protected(raw))
	}
	re, err := CompileHotlink(HotlinkConfig{Paths: []string{`re:(?i)\.(webm|ogv)$`}, Allow: []string{"none"}})
	if err != nil {
		t.Fatal(err)
	}
	if !re.Protected("/a/B.WEBM") || re.Protected("/a/b.webm.txt") {
		t.Error(`regex path "(?i)\.(webm|ogv)$" does not protect as written`)
	}
}

func TestCompileHotlinkErrors(t *testing.T) {
	t.Parallel()
	ok := []string{"/videos/"}
	tests := []struct {
		name    string
		cfg     HotlinkConfig
		wantErr string
	}{
		{"no paths", HotlinkConfig{Allow: []string{"none"}}, "compile hotlink: paths is empty"},
		{"no allow", HotlinkConfig{Paths: ok}, "compile hotlink: allow is empty"},
		{"bad path", HotlinkConfig{Paths: []string{"videos"}, Allow: []string{"none"}}, `compile hotlink: paths[0] "videos": pattern must start with`},
		{"bad path regex", HotlinkConfig{Paths: []string{"re:["}, Allow: []string{"none"}}, `paths[0] "re:["`},
		{"glob path", HotlinkConfig{Paths: []string{"/media/*.mp4"}, Allow: []string{"none"}}, `paths[0] "/media/*.mp4": "*" is only allowed as "*suffix", "prefix*" or "**/": write "/media/" (everything under it), "*.mp4" (every path ending so) or re:(?i)^/media/.*\.mp4$ (both at once)`},
		{"empty allow", HotlinkConfig{Paths: ok, Allow: []string{"none", ""}}, `allow[1] "": empty entry`},
		{"server_names", HotlinkConfig{Paths: ok, Allow: []string{"server_names"}}, "server_names is not supported"},
		{"infix wildcard", HotlinkConfig{Paths: ok, Allow: []string{"ex*ample.com"}}, `allow[0] "ex*ample.com": "*" is only allowed`},
		{"double wildcard", HotlinkConfig{Paths: ok, Allow: []string{"*.example.*"}}, `"*" is only allowed`},
		{"port", HotlinkConfig{Paths: ok, Allow: []string{"example.com:8080"}}, "a port is not allowed"},
		{"scheme", HotlinkConfig{Paths: ok, Allow: []string{"https://example.com"}}, "without a scheme"},
		{"bad host", HotlinkConfig{Paths: ok, Allow: []string{"exa mple.com"}}, "not a valid host name"},
		{"bad IDN", HotlinkConfig{Paths: ok, Allow: []string{"xn--\u0300.example"}}, "not a valid host name"},
		{"ipv6 wildcard", HotlinkConfig{Paths: ok, Allow: []string{"*.[2001:db8::1]"}}, "cannot have a wildcard"},
		{"unterminated ipv6", HotlinkConfig{Paths: ok, Allow: []string{"[2001:db8::1"}}, "unterminated IPv6 literal"},
		{"ipv6 zone", HotlinkConfig{Paths: ok, Allow: []string{"[fe80::1%eth0]"}}, "zone"},
		{"bad regex", HotlinkConfig{Paths: ok, Allow: []string{"re:("}}, `allow[0] "re:(": error parsing regexp`},
	}
	for _, tc := range tests {
		m, err := CompileHotlink(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: CompileHotlink(%+v) = %v, %v, want error containing %q", tc.name, tc.cfg, m, err, tc.wantErr)
		}
	}
}

func TestParseRefererHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rest     string // the referer after its scheme
		wantHost string
		wantPath string
		wantOK   bool
	}{
		{"example.com/a?b", "example.com", "/a?b", true},
		{"EXAMPLE.COM", "example.com", "", true},
		{"example.com.:80?x", "example.com", "?x", true},
		{"u:p@Example.com:443#f", "example.com", "#f", true},
		{"a@b@evil.test/", "evil.test", "/", true},
		{"[2001:DB8:0::1]:443/x", "2001:db8::1", "/x", true},
		{"[::ffff:192.0.2.1]/", "::ffff:192.0.2.1", "/", true},
		{"192.0.2.1:8080", "192.0.2.1", "", true},
		{"bücher.example/", "xn--bcher-kva.example", "/", true},
		{"ｅｘａｍｐｌｅ．com/", "example.com", "/", true},
		{"\u017fexample.com/", "sexample.com", "/", true}, // UTS #46 maps ſ to s, as browsers do for host names
		{"under_score.example/", "under_score.example", "/", true},
		{"", "", "", false},
		{":80/", "", "", false},
		{".example.com/", "", "", false},
		{"a..b/", "", "", false},
		{"example.com:99999999/", "", "", false},
		{"example.com:65536/", "", "", false}, // ValidPort, as the Host header: no port above 65535
		{"example.com:65535/", "example.com", "/", true},
		{"[2001:db8::1]:/", "2001:db8::1", "/", true},
		{"example.com:1:2/", "", "", false},
		{"[2001:db8::1]x/", "", "", false},
		{"[192.0.2.1]/", "", "", false},
		{"[fe80::1%25en0]/", "", "", false},
		{"ex\\ample.com/", "", "", false},
		{"ex%41mple.com/", "", "", false},
		{"exa\x00mple.com/", "", "", false},
		{"example.com\xff/", "", "", false},
		{strings.Repeat("a", 254), "", "", false},
	}
	for _, tc := range tests {
		var buf [maxHostLen]byte
		host, path, ok := parseRefererHost(tc.rest, buf[:0])
		if string(host) != tc.wantHost || ok != tc.wantOK || (ok && path != tc.wantPath) {
			t.Errorf("parseRefererHost(%q) = %q, %q, %v, want %q, %q, %v", tc.rest, host, path, ok, tc.wantHost, tc.wantPath, tc.wantOK)
		}
	}
}

func FuzzRefererHost(f *testing.F) {
	// Plain hosts with ports, case, trailing dots and paths.
	for _, s := range []string{"https://example.com/", "http://EXAMPLE.com:8080/x?y", "https://example.com./", "https://example.com", "https://a.b.example.com/"} {
		f.Add(s)
	}
	// Userinfo and look-alike attacks.
	for _, s := range []string{"https://example.com@evil.test/", "https://example.com:x@evil.test/", "https://example.com.evil.test/", "https://example.com\\@evil.test/", "https://a@b@c/"} {
		f.Add(s)
	}
	// IP literals, IPv6 zones and broken brackets.
	for _, s := range []string{"http://[2001:db8::1]:443/", "http://[::ffff:192.0.2.1]/", "http://[fe80::1%25eth0]/", "http://[2001:db8::1/", "http://192.0.2.1:80/"} {
		f.Add(s)
	}
	// Unicode and punycode host names, full-width dots, ſ.
	for _, s := range []string{"https://bücher.example/", "https://xn--bcher-kva.example/", "https://ｅｘａｍｐｌｅ．com/", "https://\u017f.example/", "https://\u212a.example/"} {
		f.Add(s)
	}
	// Mangled and scheme-less values ("blocked").
	for _, s := range []string{"", "XXXXXXX:++++", "//evil.test/", "example.com", "https://", "https:///"} {
		f.Add(s)
	}
	// Referers from the fail2ban logs.
	for _, s := range []string{"http://www.mydomain.tld/123.html/trackback", "http://www.baidu.com", "https://hostname/path/", "http://example.net/foo.php"} {
		f.Add(s)
	}
	m, err := CompileHotlink(HotlinkConfig{
		Paths: []string{"/v/"},
		Allow: []string{"example.com", "*.example.org", "example.*", "[2001:db8::1]", `re:^trusted\.test/`},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, referer string) {
		a1, a2 := m.Allowed(referer, true), m.Allowed(referer, true)
		if a1 != a2 {
			t.Fatalf("Allowed(%q) = %v then %v", referer, a1, a2)
		}
		rest, isHTTP := cutHTTPScheme(referer)
		if !isHTTP {
			return
		}
		var buf [maxHostLen]byte
		host, path, ok := parseRefererHost(rest, buf[:0])
		if !ok {
			if a1 {
				t.Fatalf("Allowed(%q) = true for an unparsable host", referer)
			}
			return
		}
		h := string(host)
		if h == "" || len(h) > maxHostLen {
			t.Fatalf("parseRefererHost(%q) host %q: empty or too long", rest, h)
		}
		if h != strings.ToLower(h) {
			t.Fatalf("parseRefererHost(%q) host %q is not lower case", rest, h)
		}
		if strings.ContainsAny(h, "@/\\?#%[] ") || strings.HasSuffix(h, ".") {
			t.Fatalf("parseRefererHost(%q) host %q has userinfo, path, brackets or a trailing dot", rest, h)
		}
		if !strings.HasPrefix(rest[len(rest)-len(path):], path) || (path != "" && !strings.ContainsRune("/?#", rune(path[0]))) {
			t.Fatalf("parseRefererHost(%q) path %q is not the tail after the authority", rest, path)
		}
		if strings.Contains(h, ":") {
			// Only an IPv6 address has a colon, and then it is canonical.
			a, err := netip.ParseAddr(h)
			if err != nil || !a.Is6() || a.String() != h {
				t.Fatalf("parseRefererHost(%q) host %q has a port", rest, h)
			}
			h = "[" + h + "]"
		}
		// Idempotence, and agreement with net/url on the host.
		var buf2 [maxHostLen]byte
		again, _, ok := parseRefererHost(h+"/", buf2[:0])
		if !ok || string(again) != string(host) {
			t.Fatalf("parseRefererHost(%q) = %q, %v; want %q", h+"/", again, ok, host)
		}
		if u, err := url.Parse(referer); err == nil && isASCII(u.Host) && !strings.Contains(u.Host, "%") {
			want := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
			if ip, err := netip.ParseAddr(want); err == nil {
				want = ip.String()
			}
			if want != string(host) {
				t.Fatalf("parseRefererHost(%q) = %q, net/url says %q", rest, host, want)
			}
		}
	})
}

func BenchmarkHotlinkAllowed(b *testing.B) {
	m := designHotlink(b)
	for _, bc := range []struct{ name, ref string }{
		{"subdomain", "https://www.example.com/gallery/1"},
		{"other", "https://evil.test/page"},
		{"idn", "https://bücher.example/"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Allowed(bc.ref, true)
			}
		})
	}
}

func BenchmarkHotlinkProtected(b *testing.B) {
	m := designHotlink(b)
	b.ReportAllocs()
	for b.Loop() {
		m.Protected("/static/js/app/main.js")
	}
}

// TestHotlinkGlobSuggestion pins that the regex the error for a glob such
// as "/media/*.mp4" suggests is accepted and protects what the glob meant.
func TestHotlinkGlobSuggestion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		glob      string
		protected []string
		free      []string
	}{
		{"/media/*.mp4", []string{"/media/a.mp4", "/media/x/b.MP4"}, []string{"/media/a.jpg", "/other/a.mp4"}},
		{"/v*/x*", []string{"/v1/x", "/video/xy/z"}, []string{"/a/x", "/v1/y"}},
	} {
		_, err := CompileHotlink(HotlinkConfig{Paths: []string{tc.glob}, Allow: []string{"none"}})
		if err == nil {
			t.Fatalf("CompileHotlink(%q) = nil error, want a refusal", tc.glob)
		}
		i := strings.Index(err.Error(), "re:")
		j := strings.LastIndex(err.Error(), " (both at once)")
		if i < 0 || j < i {
			t.Fatalf("CompileHotlink(%q) = %v, want a re: suggestion", tc.glob, err)
		}
		re := err.Error()[i:j]
		m, err := CompileHotlink(HotlinkConfig{Paths: []string{re}, Allow: []string{"none"}})
		if err != nil {
			t.Fatalf("CompileHotlink(%q) (the suggestion) = %v", re, err)
		}
		for _, p := range tc.protected {
			if !m.Protected(p) {
				t.Errorf("%s: Protected(%q) = false, want true", re, p)
			}
		}
		for _, p := range tc.free {
			if m.Protected(p) {
				t.Errorf("%s: Protected(%q) = true, want false", re, p)
			}
		}
	}
}

func TestValidPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"80", true},
		{"0", true},
		{"08080", true},
		{"65535", true},
		{"65536", false},
		{"99999", false},
		{"100000", false},
		{"", false},
		{"8a", false},
		{"-1", false},
		{" 80", false},
	} {
		if got := ValidPort(tc.in); got != tc.want {
			t.Errorf("ValidPort(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
