package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustResolver(t testing.TB, trusted ...string) *ClientIPResolver {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range trusted {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	r, err := NewClientIPResolver(ClientIPConfig{TrustedProxies: ps})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolve(t *testing.T) {
	t.Parallel()
	res := mustResolver(t, "10.0.0.0/8", "2001:db8:ffff::/48", "::ffff:192.0.2.0/120")
	tests := []struct {
		name        string
		remote      string
		xff         []string
		wantClient  string
		wantPeer    string
		wantTrusted bool
	}{
		{name: "untrusted peer, no xff", remote: "203.0.113.9:5000", wantClient: "203.0.113.9", wantPeer: "203.0.113.9"},
		{name: "untrusted peer ignores xff", remote: "203.0.113.9:5000", xff: []string{"198.51.100.1"},
			wantClient: "203.0.113.9", wantPeer: "203.0.113.9"},
		{name: "trusted peer, one hop", remote: "10.1.2.3:5000", xff: []string{"198.51.100.1"},
			wantClient: "198.51.100.1", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "trusted peer, no xff", remote: "10.1.2.3:5000",
			wantClient: "10.1.2.3", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "right-most untrusted wins over spoofed left", remote: "10.1.2.3:5000",
			xff:        []string{"1.1.1.1, 198.51.100.1, 10.9.9.9"},
			wantClient: "198.51.100.1", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "several header lines are one list", remote: "10.1.2.3:5000",
			xff:        []string{"1.1.1.1", "198.51.100.7, 10.0.0.5"},
			wantClient: "198.51.100.7", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "all trusted: left-most", remote: "10.1.2.3:5000", xff: []string{"10.0.0.7, 10.0.0.8"},
			wantClient: "10.0.0.7", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "garbage stops the walk at the last trusted hop", remote: "10.1.2.3:5000",
			xff:        []string{"198.51.100.1, unknown, 10.0.0.8"},
			wantClient: "10.0.0.8", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "garbage right after the peer", remote: "10.1.2.3:5000", xff: []string{"not-an-ip"},
			wantClient: "10.1.2.3", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "entry with port", remote: "10.1.2.3:5000", xff: []string{"198.51.100.1:4711"},
			wantClient: "198.51.100.1", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "bracketed v6 with port", remote: "10.1.2.3:5000", xff: []string{"[2001:db8::1]:443"},
			wantClient: "2001:db8::1", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "bracketed v6 without port", remote: "10.1.2.3:5000", xff: []string{"[2001:db8::1]"},
			wantClient: "2001:db8::1", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "mapped v4 in xff folded", remote: "10.1.2.3:5000", xff: []string{"::ffff:198.51.100.1"},
			wantClient: "198.51.100.1", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "mapped v4 peer folded and trusted", remote: "[::ffff:10.1.2.3]:5000", xff: []string{"198.51.100.1"},
			wantClient: "198.51.100.1", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "mapped trusted prefix folded", remote: "192.0.2.1:5000", xff: []string{"198.51.100.1"},
			wantClient: "198.51.100.1", wantPeer: "192.0.2.1", wantTrusted: true},
		{name: "v6 trusted peer", remote: "[2001:db8:ffff::1]:5000", xff: []string{"2001:db8:1::1"},
			wantClient: "2001:db8:1::1", wantPeer: "2001:db8:ffff::1", wantTrusted: true},
		{name: "zone dropped", remote: "[fe80::1%eth0]:5000", wantClient: "fe80::1", wantPeer: "fe80::1"},
		// a zoned entry is no client; the hop that wrote it is.
		{name: "zoned xff entry is garbage", remote: "10.1.2.3:5000", xff: []string{"2001:db8::9%eth0"},
			wantClient: "10.1.2.3", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "zoned bracketed entry with port is garbage", remote: "10.1.2.3:5000", xff: []string{"198.51.100.1, [fe80::1%25eth0]:80, 10.0.0.8"},
			wantClient: "10.0.0.8", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "zoned bracketed entry is garbage", remote: "10.1.2.3:5000", xff: []string{"[fe80::1%eth0]"},
			wantClient: "10.1.2.3", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "empty elements and tabs", remote: "10.1.2.3:5000", xff: []string{" ,\t198.51.100.1 ,, "},
			wantClient: "198.51.100.1", wantPeer: "10.1.2.3", wantTrusted: true},
		{name: "unparsable remote", remote: "pipe", xff: []string{"198.51.100.1"}, wantClient: "invalid IP", wantPeer: "invalid IP"},
		{name: "hop limit", remote: "10.1.2.3:5000",
			xff:        []string{"198.51.100.1," + strings.Repeat("10.0.0.1,", 40)},
			wantClient: "10.0.0.1", wantPeer: "10.1.2.3", wantTrusted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, peer, trusted := res.Resolve(tc.remote, tc.xff)
			if client.String() != tc.wantClient || peer.String() != tc.wantPeer || trusted != tc.wantTrusted {
				t.Errorf("Resolve(%q, %q) = %v, %v, %v, want %s, %s, %v", tc.remote, tc.xff,
					client, peer, trusted, tc.wantClient, tc.wantPeer, tc.wantTrusted)
			}
		})
	}
}

func TestClientIPMiddlewareFillsScope(t *testing.T) {
	t.Parallel()
	mw, err := ClientIP(ClientIPConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	var got Scope
	h := WithScope(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = *ScopeFrom(r)
	})))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header.Add("X-Forwarded-For", "198.51.100.1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got.ClientIP != netip.MustParseAddr("198.51.100.1") || got.Peer != netip.MustParseAddr("10.0.0.1") || !got.PeerTrusted {
		t.Errorf("scope = %+v, want client 198.51.100.1 via trusted peer 10.0.0.1", got)
	}
	if got.Start.IsZero() {
		t.Error("scope.Start not set by WithScope")
	}
}

// FuzzResolve checks the X-Forwarded-For walk against its contract: the
// client is the peer or one of the header's addresses, is never a trusted
// proxy unless every address examined was, and an untrusted peer's header
// is never believed.
func FuzzResolve(f *testing.F) {
	// Plain lists, with ports, brackets and mapped forms.
	f.Add("198.51.100.1, 10.0.0.2", "10.0.0.1:80")
	f.Add("[2001:db8::1]:443, 10.0.0.2:80", "10.0.0.1:80")
	f.Add("::ffff:198.51.100.1", "[::ffff:10.0.0.1]:80")
	// Garbage, empty elements, whitespace and a spoofing attempt.
	f.Add("unknown, , \t,1.2.3.4", "10.0.0.1:80")
	f.Add("198.51.100.1", "203.0.113.1:80")
	f.Add(strings.Repeat("10.0.0.1,", 100), "10.0.0.1:1")
	// Zoned entries, which are never a client.
	f.Add("2001:db8::9%eth0", "10.0.0.1:80")
	f.Add("198.51.100.1, [fe80::1%eth0]:443", "10.0.0.1:80")
	res := mustResolver(f, "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, xff, remote string) {
		client, peer, trusted := res.Resolve(remote, []string{xff})
		if trusted != (peer.IsValid() && res.Trusted(peer)) {
			t.Fatalf("Resolve(%q, %q) trusted = %v for peer %v", remote, xff, trusted, peer)
		}
		if !trusted {
			if client != peer {
				t.Fatalf("Resolve(%q, %q) = %v, want the untrusted peer %v", remote, xff, client, peer)
			}
			return
		}
		if client == peer {
			return
		}
		if client.Zone() != "" || client.Is4In6() {
			t.Fatalf("Resolve(%q, %q) = %v, not folded", remote, xff, client)
		}
		// Otherwise the client must be one of the header's elements.
		for _, e := range strings.Split(xff, ",") {
			if a, ok := parseXFFEntry(trimOWS(e)); ok && a == client {
				return
			}
		}
		t.Fatalf("Resolve(%q, %q) = %v, which is not in the header", remote, xff, client)
	})
}
