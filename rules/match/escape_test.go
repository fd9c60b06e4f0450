package match

import (
	"net/url"
	"testing"
)

func TestEscapePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{name: "plain", in: "/paid/a.mp4", want: "/paid/a.mp4"},
		{name: "sub-delims and pchar kept", in: "/paid/a(1)!$&'*+,=:@~.mp4", want: "/paid/a(1)!$&'*+,=:@~.mp4"},
		{name: "space", in: "/paid/my video.mp4", want: "/paid/my%20video.mp4"},
		{name: "percent, hash, question mark", in: "/100%/a#b?c", want: "/100%25/a%23b%3Fc"},
		{name: "UTF-8, upper-case hex", in: "/café", want: "/caf%C3%A9"},
		{name: "brackets and braces", in: "/[a]{b}", want: "/%5Ba%5D%7Bb%7D"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := EscapePath(tc.in); got != tc.want {
				t.Errorf("EscapePath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzEscapePath checks the canonical spelling signed links are signed
// for. Properties, for every path Canonical accepts:
// Canonical(EscapePath(c.Path)) is c (the spelling names the same
// resource); EscapePath is a fixed point of its own canonical form (one
// spelling per resource); and net/url reads it back unchanged, so the
// upstream receives exactly it (r.URL.EscapedPath()).
func FuzzEscapePath(f *testing.F) {
	// Clean paths, and ones with pchar bytes kept raw.
	for _, s := range []string{"/", "/paid/a.mp4", "/paid/a(1).mp4", "/a:b@c", "/a+b,c=d"} {
		f.Add(s)
	}
	// Spellings of one resource that the canonical form merges.
	for _, s := range []string{"/paid//a.mp4", "/paid/./a.mp4", "/paid/%61.mp4", "/paid/a.mp4;v=1", "/PAID/a.mp4", "/paid/caf%c3%a9"} {
		f.Add(s)
	}
	// Decoded data that must be escaped again: %, #, ?, space, UTF-8,
	// brackets and braces.
	for _, s := range []string{"/100%25", "/a%23b", "/a%3Fb", "/a%20b", "/caf%C3%A9", "/%5Ba%5D", "/{a}", "/a%7Cb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := Canonical(raw)
		if err != nil {
			return
		}
		e := EscapePath(c.Path)
		c2, err := Canonical(e)
		if err != nil || c2 != c {
			t.Fatalf("Canonical(EscapePath(%q) = %q) = %+v, %v; want %+v", c.Path, e, c2, err, c)
		}
		if again := EscapePath(c2.Path); again != e {
			t.Fatalf("EscapePath is not a fixed point: %q, then %q", e, again)
		}
		u, err := url.ParseRequestURI(e)
		if err != nil {
			t.Fatalf("net/url refuses %q: %v", e, err)
		}
		if got := u.EscapedPath(); got != e {
			t.Fatalf("net/url reads %q as %q; want it unchanged", e, got)
		}
	})
}
