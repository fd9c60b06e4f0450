package match

import (
	"bufio"
	"errors"
	"gatehouse/rules/testenv"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCanonical(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		raw       string
		wantPath  string
		wantProbe string // "" means the same as wantPath
		wantErr   string // substring of the error; "" means no error
	}{
		{name: "root", raw: "/", wantPath: "/"},
		{name: "empty is root", raw: "", wantPath: "/"},
		{name: "clean", raw: "/static/js/app.js", wantPath: "/static/js/app.js"},
		{name: "trailing slash kept", raw: "/a/b/", wantPath: "/a/b/"},
		{name: "upper case kept in Path", raw: "/PhpMyAdmin", wantPath: "/PhpMyAdmin", wantProbe: "/phpmyadmin"},
		{name: "double slash at start", raw: "//phpmyadmin", wantPath: "/phpmyadmin"},
		{name: "repeated slashes", raw: "/a///b//", wantPath: "/a/b/"},
		{name: "only slashes", raw: "////", wantPath: "/"},
		{name: "dot segment", raw: "/./.env", wantPath: "/.env"},
		{name: "dot segments inside", raw: "/a/./b/./c", wantPath: "/a/b/c"},
		{name: "dot-dot", raw: "/a/b/../c", wantPath: "/a/c"},
		{name: "dot-dot at end keeps slash", raw: "/a/b/..", wantPath: "/a/"},
		{name: "dot at end keeps slash", raw: "/a/b/.", wantPath: "/a/b/"},
		{name: "dot-dot to root", raw: "/a/..", wantPath: "/"},
		{name: "encoded dot-dot", raw: "/a/%2e%2e/b", wantPath: "/b"},
		{name: "mixed encoded dot-dot", raw: "/a/.%2E/b", wantPath: "/b"},
		{name: "encoded dot-dot above root", raw: "/%2e%2e/", wantErr: "dot-dot segment above the root"},
		{name: "dot-dot above root", raw: "/..", wantErr: "dot-dot segment above the root"},
		{name: "dot-dot above root later", raw: "/a/../../etc/passwd", wantErr: "dot-dot segment above the root"},
		{name: "apache AH00126 traversal", raw: "/static/../../../a/../../../../etc/passwd", wantErr: "above the root"},
		{name: "CVE-2021-41773", raw: "/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh", wantErr: "above the root"},
		{name: "params stripped", raw: "/admin;x/", wantPath: "/admin/"},
		{name: "params on last segment", raw: "/a/b;jsessionid=1", wantPath: "/a/b"},
		{name: "params only segment", raw: "/a/;x", wantPath: "/a/"},
		{name: "encoded semicolon starts params", raw: "/admin%3bx/y", wantPath: "/admin/y"},
		{name: "tomcat dot-dot with params", raw: "/admin/..;/secret", wantPath: "/secret"},
		{name: "dot with params", raw: "/a/.;x/b", wantPath: "/a/b"},
		{name: "percent decoding", raw: "/%61dmin", wantPath: "/admin"},
		{name: "encoded space trimmed for probes", raw: "/wp-login.php%20", wantPath: "/wp-login.php ", wantProbe: "/wp-login.php"},
		{name: "trailing dot trimmed for probes", raw: "/.env.", wantPath: "/.env.", wantProbe: "/.env"},
		{name: "trailing dots and spaces per segment", raw: "/.git.%20./config..", wantPath: "/.git. ./config..", wantProbe: "/.git/config"},
		{name: "literal percent", raw: "/100%25", wantPath: "/100%"},
		{name: "literal percent then one hex", raw: "/100%25a", wantPath: "/100%a"},
		{name: "UTF-8 decoded", raw: "/caf%C3%A9", wantPath: "/café"},
		{name: "long s not folded", raw: "/%C5%BFhell.php", wantPath: "/ſhell.php"},
		{name: "Kelvin sign not folded", raw: "/%E2%84%AAEY", wantPath: "/\u212aEY", wantProbe: "/\u212aey"},
		{name: "sub-delims kept", raw: "/a:b@c!$&'()*+,=", wantPath: "/a:b@c!$&'()*+,="},
		{name: "colon and dollar in separate segments", raw: "/a:/$b", wantPath: "/a:/$b"},
		{name: "encoded question mark is data", raw: "/a%3Fb", wantPath: "/a?b"},
		{name: "encoded hash is data", raw: "/a%23b", wantPath: "/a#b"},
		{name: "encoded slash", raw: "/a%2fb", wantErr: "encoded slash"},
		{name: "encoded slash upper", raw: "/..%2F..%2Fetc/passwd", wantErr: "encoded slash"},
		{name: "encoded backslash", raw: "/a%5cb", wantErr: "encoded backslash"},
		{name: "encoded NUL", raw: "/a%00b", wantErr: "encoded NUL"},
		{name: "encoded newline", raw: "/a%0d%0aSet-Cookie:x", wantErr: "encoded control character"},
		{name: "encoded DEL", raw: "/a%7f", wantErr: "encoded control character"},
		{name: "raw NUL", raw: "/a\x00b", wantErr: "raw control character"},
		{name: "raw tab", raw: "/a\tb", wantErr: "raw control character"},
		{name: "raw hash", raw: "/admin#/../x", wantErr: "raw # in path"},
		{name: "raw backslash", raw: "/a\\..\\admin", wantErr: "raw backslash"},
		{name: "raw question mark", raw: "/a?b", wantErr: "raw ? in path"},
		{name: "raw space", raw: "/a b", wantErr: "raw space"},
		{name: "raw non-ASCII", raw: "/caf\xc3\xa9", wantErr: "raw non-ASCII byte"},
		{name: "invalid UTF-8", raw: "/%C3%28", wantErr: "invalid UTF-8"},
		{name: "overlong UTF-8 dot", raw: "/%C0%AE%C0%AE/", wantErr: "invalid UTF-8"},
		{name: "invalid UTF-8 in params", raw: "/a;%ff/b", wantErr: "invalid UTF-8"},
		{name: "encoded slash in params", raw: "/a;x%2fy/b", wantErr: "encoded slash"},
		{name: "double encoding", raw: "/%252e%252e/", wantErr: "double percent encoding"},
		{name: "double encoding mixed", raw: "/%25%32%65", wantErr: "double percent encoding"},
		{name: "double encoding of slash", raw: "/a%252fb", wantErr: "double percent encoding"},
		{name: "IIS %u after decode", raw: "/%25u002e", wantErr: "double percent encoding"},
		{name: "bad escape", raw: "/a%2", wantErr: "bad percent escape"},
		{name: "bad escape hex", raw: "/a%zz", wantErr: "bad percent escape"},
		{name: "IIS %u raw", raw: "/%u002e", wantErr: "bad percent escape"},
		{name: "apache gh-3900 %%32%65", raw: "/cgi-bin/%%32%65%%32%65/bin/sh", wantErr: "bad percent escape"},
		{name: "three dots", raw: "/.../x", wantErr: "segment of only dots and spaces"},
		{name: "dot-dot space", raw: "/a/..%20/b", wantErr: "segment of only dots and spaces"},
		{name: "encoded triple dot", raw: "/%2e%2e%2e", wantErr: "segment of only dots and spaces"},
		// NTFS alternate data streams, raw and encoded, in
		// any segment and behind ;params.
		{name: "NTFS default stream", raw: "/web.config::$DATA", wantErr: "NTFS stream syntax"},
		{name: "NTFS directory stream", raw: "/.git::$INDEX_ALLOCATION/config", wantErr: "NTFS stream syntax"},
		{name: "NTFS named stream with type", raw: "/a/web.config:x:$DATA", wantErr: "NTFS stream syntax"},
		{name: "NTFS $I30", raw: "/.git:$I30:$INDEX_ALLOCATION/HEAD", wantErr: "NTFS stream syntax"},
		{name: "NTFS encoded colon", raw: "/web.config%3A%3A%24DATA", wantErr: "NTFS stream syntax"},
		{name: "NTFS encoded dollar", raw: "/web.config::%24data", wantErr: "NTFS stream syntax"},
		{name: "NTFS in params", raw: "/web.config;x::$DATA", wantErr: "NTFS stream syntax"},
		{name: "relative path", raw: "admin", wantErr: "does not start with /"},
		{name: "asterisk form", raw: "*", wantErr: "does not start with /"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Canonical(tc.raw)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Canonical(%q) = %+v, %v, want error %q", tc.raw, got, err, tc.wantErr)
				}
				if !errors.Is(err, ErrUnsafePath) {
					t.Errorf("Canonical(%q) error %v does not wrap ErrUnsafePath", tc.raw, err)
				}
				var ue *UnsafePathError
				if !errors.As(err, &ue) || ue.Offset < 0 || ue.Offset > len(tc.raw) {
					t.Errorf("Canonical(%q) error %#v, want *UnsafePathError with an offset in the path", tc.raw, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Canonical(%q) error %v", tc.raw, err)
			}
			wantProbe := tc.wantProbe
			if wantProbe == "" {
				wantProbe = tc.wantPath
			}
			if got.Path != tc.wantPath || got.Probe != wantProbe {
				t.Errorf("Canonical(%q) = {%q, %q}, want {%q, %q}", tc.raw, got.Path, got.Probe, tc.wantPath, wantProbe)
			}
			checkCanonicalProperties(t, tc.raw, got)
		})
	}
}

func TestUnsafePathError(t *testing.T) {
	t.Parallel()
	_, err := Canonical("/a%2fb")
	want := "canonicalise path: encoded slash at byte 2"
	if err == nil || err.Error() != want {
		t.Errorf("Canonical(%q) error = %v, want %q", "/a%2fb", err, want)
	}
}

// TestCanonicalAllowEncodedSlash: with AllowEncodedSlash a %2F stays in
// its segment, upper-cased, and every other refusal still holds.
func TestCanonicalAllowEncodedSlash(t *testing.T) {
	t.Parallel()
	opt := CanonicalOptions{AllowEncodedSlash: true}
	for _, tc := range []struct {
		raw, path, probe, wantErr string
	}{
		{raw: "/api/v4/projects/group%2Fproject", path: "/api/v4/projects/group%2Fproject", probe: "/api/v4/projects/group%2fproject"},
		{raw: "/a%2fb/../c", path: "/c", probe: "/c"},
		{raw: "/%2F", path: "/%2F", probe: "/%2f"},
		{raw: "/a%2F%2e%2e/b", wantErr: "encoded slash"}, // a traversal to an upstream that decodes %2F
		{raw: "/plain", path: "/plain", probe: "/plain"},
		{raw: "/a%252Fb", wantErr: "double percent encoding"},
		{raw: "/a%5Cb", wantErr: "encoded backslash"},
		{raw: "/a%00", wantErr: "encoded NUL"},
		{raw: "/../a%2Fb", wantErr: "above the root"},
	} {
		c, err := CanonicalWith(tc.raw, opt)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("CanonicalWith(%q) = %+v, %v, want an error containing %q", tc.raw, c, err, tc.wantErr)
			}
			continue
		}
		if err != nil || c.Path != tc.path || c.Probe != tc.probe {
			t.Errorf("CanonicalWith(%q) = %+v, %v, want {%q %q}", tc.raw, c, err, tc.path, tc.probe)
		}
	}
	// Without the option the same path is the one refusal ErrEncodedSlash
	// names.
	if _, err := Canonical("/group%2Fproject"); !errors.Is(err, ErrEncodedSlash) || !errors.Is(err, ErrUnsafePath) {
		t.Errorf("Canonical(%q) error = %v, want ErrEncodedSlash and ErrUnsafePath", "/group%2Fproject", err)
	}
	if _, err := Canonical("/a%5Cb"); errors.Is(err, ErrEncodedSlash) {
		t.Errorf("Canonical(%q) error %v matches ErrEncodedSlash", "/a%5Cb", err)
	}
}

// TestCanonicalAllowStreamSyntax: AllowStreamSyntax waives the NTFS
// stream refusal and nothing else.
func TestCanonicalAllowStreamSyntax(t *testing.T) {
	t.Parallel()
	opt := CanonicalOptions{AllowStreamSyntax: true}
	if c, err := CanonicalWith("/price::$5", opt); err != nil || c.Path != "/price::$5" {
		t.Errorf("CanonicalWith(%q) = %+v, %v, want the path kept", "/price::$5", c, err)
	}
	if _, err := Canonical("/price::$5"); !errors.Is(err, ErrStreamSyntax) || errors.Is(err, ErrEncodedSlash) {
		t.Errorf("Canonical(%q) error = %v, want ErrStreamSyntax only", "/price::$5", err)
	}
	if _, err := CanonicalWith("/a::$DATA/%2F", opt); !errors.Is(err, ErrEncodedSlash) {
		t.Errorf("CanonicalWith(%q) error = %v, want the encoded slash still refused", "/a::$DATA/%2F", err)
	}
}

func TestRequestPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, uri, want string
	}{
		{"origin form", "/a/b", "/a/b"},
		{"origin form with query", "/a/b?x=/../y", "/a/b"},
		{"raw hash kept", "/a#b?c", "/a#b"},
		{"absolute form", "http://example.com/a/b?q", "/a/b"},
		{"absolute form https with port", "https://example.com:8443/a", "/a"},
		{"absolute form without path", "http://example.com", ""},
		{"absolute form query only", "http://example.com?x=/y", ""},
		{"asterisk form", "*", "*"},
		{"authority form", "example.com:443", "example.com:443"},
	}
	for _, tc := range tests {
		if got := RequestPath(tc.uri); got != tc.want {
			t.Errorf("%s: RequestPath(%q) = %q, want %q", tc.name, tc.uri, got, tc.want)
		}
	}
}

// escapePath is the reference escaper for the idempotence property: what
// net/url sends for a decoded path.
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}

// checkCanonicalProperties asserts what CanonicalPath documents for any
// result of Canonical(raw).
func checkCanonicalProperties(t *testing.T, raw string, c CanonicalPath) {
	t.Helper()
	for _, s := range []struct{ field, v string }{{"Path", c.Path}, {"Probe", c.Probe}} {
		switch {
		case !strings.HasPrefix(s.v, "/"):
			t.Fatalf("Canonical(%q).%s = %q does not start with /", raw, s.field, s.v)
		case strings.Contains(s.v, "//"), strings.Contains(s.v, "/./"), strings.Contains(s.v, "/../"),
			strings.HasSuffix(s.v, "/."), strings.HasSuffix(s.v, "/.."):
			t.Fatalf("Canonical(%q).%s = %q has an empty or dot segment", raw, s.field, s.v)
		case strings.ContainsAny(s.v, ";\\\x00"):
			t.Fatalf("Canonical(%q).%s = %q contains ; \\ or NUL", raw, s.field, s.v)
		case strings.Contains(s.v, ":$"):
			t.Fatalf("Canonical(%q).%s = %q has NTFS stream syntax", raw, s.field, s.v)
		case !utf8.ValidString(s.v):
			t.Fatalf("Canonical(%q).%s = %q is not valid UTF-8", raw, s.field, s.v)
		}
		for i := 0; i < len(s.v); i++ {
			if s.v[i] < 0x20 || s.v[i] == 0x7f {
				t.Fatalf("Canonical(%q).%s = %q contains a control character", raw, s.field, s.v)
			}
		}
	}
	if strings.ContainsFunc(c.Probe, func(r rune) bool { return 'A' <= r && r <= 'Z' }) {
		t.Fatalf("Canonical(%q).Probe = %q has ASCII upper case", raw, c.Probe)
	}
	if want := string(appendProbe(nil, c.Path)); c.Probe != want {
		t.Fatalf("Canonical(%q).Probe = %q, want the probe form of Path %q", raw, c.Probe, want)
	}
	// Idempotence: normalising the result (re-escaped) changes nothing.
	again, err := Canonical(escapePath(c.Path))
	if err != nil || again != c {
		t.Fatalf("Canonical(escape(%q)) = %+v, %v; want %+v (first from %q)", c.Path, again, err, c, raw)
	}
	probeAgain, err := Canonical(escapePath(c.Probe))
	if err != nil || probeAgain.Probe != c.Probe {
		t.Fatalf("Canonical(escape(Probe %q)).Probe = %q, %v; want it unchanged (from %q)", c.Probe, probeAgain.Probe, err, raw)
	}
	if !strings.ContainsAny(c.Path, "%#? ") && isASCII(c.Path) {
		if direct, err := Canonical(c.Path); err != nil || direct != c {
			t.Fatalf("Canonical(%q) = %+v, %v; want %+v (first from %q)", c.Path, direct, err, c, raw)
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// corpusDir returns ../shared/corpora (relative to the module root). Tests
// that need it skip when it is missing, and fail when CI=true. When tb is
// a *testing.F adding seeds, pass nil: missing corpora just add none.
func corpusDir(tb testing.TB) string {
	dir := filepath.Join("..", "..", "..", "shared", "corpora")
	if _, err := os.Stat(dir); err != nil {
		if tb == nil {
			return ""
		}
		tb.Helper()
		testenv.Missing(tb, "shared corpora: %v", err)
	}
	return dir
}

// requestLine finds the request-target in access-log and nginx error-log
// lines.
var requestLine = regexp.MustCompile(`"(?:GET|POST|HEAD|PUT|DELETE|OPTIONS|TRACE|PATCH) (\S+) HTTP/[0-9.]+"`)

// apacheURIPath finds the raw path Apache's AH10244 reports.
var apacheURIPath = regexp.MustCompile(`invalid URI path \((\S+?)\)`)

// corpusRequestPaths returns the request paths found in the fail2ban web
// logs, deduplicated, in file order: access-log request lines and the raw
// paths Apache refused. It returns nil when the corpus is missing and tb
// is nil.
func corpusRequestPaths(tb testing.TB) []string {
	dir := corpusDir(tb)
	if dir == "" {
		return nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "fail2ban", "logs", "*"))
	if err != nil || len(files) == 0 {
		if tb != nil {
			tb.Fatalf("fail2ban logs: %v (%d files)", err, len(files))
		}
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			if tb != nil {
				tb.Fatal(err)
			}
			return nil
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			for _, re := range []*regexp.Regexp{requestLine, apacheURIPath} {
				for _, m := range re.FindAllStringSubmatch(sc.Text(), -1) {
					p := m[1]
					if !strings.HasPrefix(p, "/") || seen[p] {
						continue
					}
					seen[p] = true
					out = append(out, p)
				}
			}
		}
		_ = fh.Close() // read-only file: nothing to flush
	}
	return out
}

func FuzzCanonical(f *testing.F) {
	// Clean paths: the allocation-free fast path.
	for _, s := range []string{"/", "", "/static/js/app.js", "/a/b/", "/index.html", "/.well-known/acme-challenge/x"} {
		f.Add(s)
	}
	// Bypass classes: slashes, case, encoded dots, params,
	// dot segments, trailing dots and spaces.
	for _, s := range []string{"//phpmyadmin", "/PhpMyAdmin", "/%2e%2e/", "/admin;x/", "/./.env", "/.env.", "/wp-login.php%20", "/admin/..;/x", "/a/.%2E/b"} {
		f.Add(s)
	}
	// Refusals: encoded / \ NUL, raw # \ and controls, double
	// encoding, bad escapes, invalid UTF-8, dot runs.
	for _, s := range []string{"/a%2fb", "/a%5Cb", "/a%00", "/a#b", "/a\\b", "/a\x01", "/%252e", "/%25u002e", "/a%2", "/%C0%AE", "/.../", "/..%20/", "/caf\xc3\xa9"} {
		f.Add(s)
	}
	// NTFS stream syntax, raw, encoded and split by params.
	for _, s := range []string{"/web.config::$DATA", "/.git::$INDEX_ALLOCATION/config", "/a%3A%24b", "/a:;x$", "/a:%24", "/a:/$"} {
		f.Add(s)
	}
	// Decoded data that must survive re-escaping: %, #, ?, space, UTF-8,
	// ſ and the Kelvin sign.
	for _, s := range []string{"/100%25", "/a%23b", "/a%3Fb", "/a%20b", "/caf%C3%A9", "/%C5%BF", "/%E2%84%AA"} {
		f.Add(s)
	}
	// Real request paths from the fail2ban logs, including Apache's
	// refused traversals (.%2e, %%32%65).
	for _, s := range corpusRequestPaths(nil) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := Canonical(raw)
		if err != nil {
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("Canonical(%q) error %v does not wrap ErrUnsafePath", raw, err)
			}
			return
		}
		checkCanonicalProperties(t, raw, c)
		// Differential check against net/url + path.Clean for paths
		// without parameters: same segments, up to the trailing slash
		// (path.Clean drops it; Canonical keeps it as RFC 3986 does).
		if strings.ContainsRune(raw, ';') || strings.Contains(strings.ToLower(raw), "%3b") {
			return
		}
		dec, err := url.PathUnescape(raw)
		if err != nil {
			t.Fatalf("Canonical(%q) accepted what url.PathUnescape refuses: %v", raw, err)
		}
		ref := path.Clean("/" + dec)
		if strings.TrimSuffix(ref, "/") != strings.TrimSuffix(c.Path, "/") {
			t.Fatalf("Canonical(%q).Path = %q, path.Clean of the decoded path = %q", raw, c.Path, ref)
		}
	})
}

// FuzzCanonicalAllowEncodedSlash: the option only ever waives the
// encoded-slash refusal. Where Canonical accepts, CanonicalWith gives the
// same; where it refuses for another reason, so does CanonicalWith; what
// it accepts has no "//", "/./" or "/../".
func FuzzCanonicalAllowEncodedSlash(f *testing.F) {
	for _, s := range []string{"/a%2Fb", "/a%2fb/../c", "/%2F%2F", "/a%2F%2e%2e/b", "/a%252Fb", "/a%5C", "/x/%2F..", "/100%25"} {
		f.Add(s)
	}
	opt := CanonicalOptions{AllowEncodedSlash: true}
	f.Fuzz(func(t *testing.T, raw string) {
		want, werr := Canonical(raw)
		got, err := CanonicalWith(raw, opt)
		switch {
		case werr == nil:
			if err != nil || got != want {
				t.Fatalf("CanonicalWith(%q) = %+v, %v; Canonical gives %+v", raw, got, err, want)
			}
			return
		case !errors.Is(werr, ErrEncodedSlash):
			if err == nil {
				t.Fatalf("CanonicalWith(%q) accepted what Canonical refuses: %v", raw, werr)
			}
			return
		case err != nil:
			return
		}
		for _, p := range []string{got.Path, got.Probe} {
			if strings.Contains(p, "//") || strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") || !strings.HasPrefix(p, "/") {
				t.Fatalf("CanonicalWith(%q) = %q: not clean", raw, p)
			}
		}
	})
}

func BenchmarkCanonical(b *testing.B) {
	for _, bc := range []struct{ name, raw string }{
		{"clean", "/static/js/app/main.js"},
		{"upper", "/Static/JS/App/Main.js"},
		{"dirty", "/static//js/./app/%6Dain.js"},
		{"params", "/static;v=1/js/app/main.js"},
		{"refused", "/static/%2e%2e/%2e%2e/etc/passwd"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Canonical(bc.raw) // result unused: measuring the call
			}
		})
	}
}

// TestUnsafePathHostile pins which refusals are held against the client:
// those no browser sends from a link as written.
func TestUnsafePathHostile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw     string
		hostile bool
	}{
		{"/a%00", true},
		{"/a%0a", true},
		{"/../etc/passwd", true},
		{"/%252e%252e/", true},
		{"/%25u002e", true},
		{"/web.config::$DATA", true},
		{"/a\\b", true},
		{"/a b", true},
		{"/caf\xc3\xa9", true},
		{"/..%2F..%2Fetc/passwd", true},
		{"/%2e%2e%5cwindows", true},
		{"/a%2F..", true},
		{"/tags/c%2Fc%2B%2B", false},
		{"/a%5Cb", false},
		{"/caf%E9.html", false},
		{"/100%", false},
		{"/wiki/...", false},
	} {
		_, err := Canonical(tc.raw)
		var upe *UnsafePathError
		if !errors.As(err, &upe) {
			t.Fatalf("Canonical(%q) error = %v, want an UnsafePathError", tc.raw, err)
		}
		if got := upe.Hostile(tc.raw); got != tc.hostile {
			t.Errorf("Canonical(%q) refusal %q: Hostile = %v, want %v", tc.raw, upe.Reason, got, tc.hostile)
		}
	}
}

// TestEncodedSlashDotSegments: with encoded slashes kept, a dot segment
// next to one is still refused, as a traversal to a decoding upstream.
func TestEncodedSlashDotSegments(t *testing.T) {
	opt := CanonicalOptions{AllowEncodedSlash: true}
	for raw, ok := range map[string]bool{
		"/api/v4/projects/group%2Fproject": true,
		"/a/b.c%2Fd..e":                    true,
		"/public/..%2Fadmin":               false,
		"/public/%2e%2e%2fadmin":           false,
		"/x/a%2F..%2Fb":                    false,
		"/x/a%2F.":                         false,
		"/x/%2F..":                         false,
	} {
		_, err := CanonicalWith(raw, opt)
		if (err == nil) != ok {
			t.Errorf("CanonicalWith(%q) = %v, want ok %v", raw, err, ok)
		}
	}
}
