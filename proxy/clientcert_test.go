package proxy

import (
	"strings"
	"testing"
)

func TestHeaderSafe(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"CN=alice,O=Example", "CN=alice,O=Example"},
		{"CN=Zoë", "CN=Zoë"},
		{"CN=a\r\nX-Client-Cert-Verify: SUCCESS", `CN=a\x0D\x0AX-Client-Cert-Verify: SUCCESS`},
		{"CN=\x00\x7f", `CN=\x00\x7F`},
		{"", ""},
	} {
		if got := headerSafe(c.in); got != c.want {
			t.Errorf("headerSafe(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzHeaderSafe checks that no control character survives and that a
// value without one is kept as it is.
func FuzzHeaderSafe(f *testing.F) {
	// clean names, UTF-8, and header injection attempts.
	for _, s := range []string{"CN=alice,O=Example", "CN=Zoë", "CN=a\r\nX: y", "\x00", "\x7f\x1f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := headerSafe(in)
		clean := true
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("headerSafe(%q) = %q: control character at %d", in, out, i)
			}
		}
		for i := 0; i < len(in); i++ {
			if c := in[i]; c < 0x20 || c == 0x7f {
				clean = false
			}
		}
		if clean && out != in {
			t.Fatalf("headerSafe(%q) = %q, want it unchanged", in, out)
		}
		if !clean && !strings.Contains(out, `\x`) {
			t.Fatalf("headerSafe(%q) = %q, want escapes", in, out)
		}
	})
}

func TestSameName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		sni, host string
		want      bool
	}{
		{"mtls.example.com", "mtls.example.com", true},
		{"MTLS.example.com.", "mtls.example.com", true},
		{"", "mtls.example.com", false},
		{"other.example.com", "mtls.example.com", false},
		{"", "192.0.2.1", false}, // no SNI is never the host, IP literal or not
	} {
		if got := sameName(c.sni, c.host); got != c.want {
			t.Errorf("sameName(%q, %q) = %v, want %v", c.sni, c.host, got, c.want)
		}
	}
}
