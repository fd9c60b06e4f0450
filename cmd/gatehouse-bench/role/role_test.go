package role

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestScannerAddrs(t *testing.T) {
	got := ScannerAddrs(netip.MustParseAddr("10.77.1.253"), 4)
	want := []string{"10.77.1.253", "10.77.1.254", "10.77.2.1", "10.77.2.2"}
	for i, a := range got {
		if a.String() != want[i] {
			t.Fatalf("ScannerAddrs(10.77.1.253, 4) = %v, want %v (no .0 or .255)", got, want)
		}
	}
}

func TestAnswersSummary(t *testing.T) {
	in := make([]int, 100)
	for i := range in {
		in[i] = i + 1 // 1 … 100
	}
	mean, p95, mx := AnswersSummary(in)
	if mean != 50.5 || p95 != 95 || mx != 100 {
		t.Errorf("AnswersSummary(1…100) = %v, %v, %v; want 50.5, 95, 100", mean, p95, mx)
	}
}

func TestAttacker48s(t *testing.T) {
	got, err := Attacker48s(netip.MustParseAddr("2001:db8:fffe::"), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2001:db8:fffe::/48", "2001:db8:ffff::/48", "2001:db9::/48"} // carries into the /32
	for i, p := range got {
		if p.String() != want[i] {
			t.Fatalf("Attacker48s(2001:db8:fffe::, 3) = %v, want %v", got, want)
		}
	}
	for _, tc := range []struct {
		name, first string
		n           int
		wantErr     string
	}{
		{"IPv4", "10.78.0.1", 1, "not an IPv6 address"},
		{"mapped IPv4", "::ffff:10.78.0.1", 1, "not an IPv6 address"},
		{"past the end", "ffff:ffff:ffff::", 2, "fewer than 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Attacker48s(netip.MustParseAddr(tc.first), tc.n); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Attacker48s(%s, %d) error = %v, want %q", tc.first, tc.n, err, tc.wantErr)
			}
		})
	}
}

func TestRotatedAddr(t *testing.T) {
	p := netip.MustParsePrefix("2001:db8:100::/48")
	for _, tc := range []struct {
		subnet int
		iid    uint64
		want   string
	}{
		{0, 0x0123456789abcdef, "2001:db8:100:0:123:4567:89ab:cdef"},
		{7, 1, "2001:db8:100:7::1"},
		{0x1_0002, 2, "2001:db8:100:2::2"}, // the /64 number wraps inside the /48
		{3, 0, "2001:db8:100:3::1"},        // never the subnet-router anycast address
	} {
		got := RotatedAddr(p, tc.subnet, tc.iid)
		if got.String() != tc.want {
			t.Errorf("RotatedAddr(%s, %d, %#x) = %s, want %s", p, tc.subnet, tc.iid, got, tc.want)
		}
		if !p.Contains(got) {
			t.Errorf("RotatedAddr(%s, %d, %#x) = %s: outside the /48", p, tc.subnet, tc.iid, got)
		}
	}
}

// TestProbe sends probes to a real server: the status of a 403, a body
// larger than the read buffer, and errors for a server that closes
// without answering or answers something that is not HTTP/1.
func TestProbe(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write(bytes.Repeat([]byte("x"), 20000))
		case "/close":
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		case "/garbage":
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_, _ = c.Write([]byte("SSH-2.0-OpenSSH\r\n"))
				c.Close()
			}
		default:
			http.Error(w, "forbidden", http.StatusForbidden)
		}
	}))
	defer srv.Close()
	target := srv.Listener.Addr().String()
	src := netip.MustParseAddr("127.0.0.1")
	req := func(path string) []byte {
		return []byte("GET " + path + " HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
	}
	for _, tc := range []struct {
		path     string
		wantCode int
		wantErr  string
	}{
		{"/.env", 403, ""},
		{"/big", 200, ""},
		{"/close", 0, "no status line"},
		{"/garbage", 0, "status line"},
	} {
		code, err := probe(t.Context(), src, target, req(tc.path), 5*time.Second)
		if code != tc.wantCode || (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("probe(%s) = %d, %v; want %d, %q", tc.path, code, err, tc.wantCode, tc.wantErr)
		}
	}
}

func TestParseStatusLine(t *testing.T) {
	for _, tc := range []struct {
		line    string
		want    int
		wantErr string
	}{
		{"HTTP/1.1 403 Forbidden\r", 403, ""},
		{"HTTP/1.0 200", 200, ""},
		{"HTTP/2 200", 0, "status line"},
		{"HTTP/1.1 20x OK", 0, "status line"},
		{"HTTP/1.1 099 Low", 0, "status line"},
		{"", 0, "status line"},
	} {
		got, err := parseStatusLine([]byte(tc.line))
		if got != tc.want || (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("parseStatusLine(%q) = %d, %v; want %d, %q", tc.line, got, err, tc.want, tc.wantErr)
		}
	}
}
