package middleware

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"gatehouse/rules/intel"
)

func mustSet(t testing.TB, ps ...string) *intel.Set {
	t.Helper()
	var l []netip.Prefix
	for _, s := range ps {
		l = append(l, netip.MustParsePrefix(s))
	}
	return intel.NewSet(l)
}

func mustProvider(t testing.TB, name string) *intel.Provider {
	t.Helper()
	p, ok := intel.ProviderNamed(name)
	if !ok {
		t.Fatalf("no provider %q", name)
	}
	return &p
}

// cdnResolver trusts 10.0.0.0/8 and three "CDNs", in ranges of the
// documentation blocks: cf 198.51.100.0/25 + 2001:db8:cf::/48, fastly
// 198.51.100.128/25, cloudfront 203.0.113.0/25, and a plain list
// 203.0.113.128/25 with no header.
func cdnResolver(t testing.TB) *ClientIPResolver {
	t.Helper()
	res, err := NewClientIPResolver(ClientIPConfig{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Sets: []TrustedSet{
			{Name: "cloudflare", Ranges: mustSet(t, "198.51.100.0/25", "2001:db8:cf::/48"), Provider: mustProvider(t, "cloudflare")},
			{Name: "fastly", Ranges: mustSet(t, "198.51.100.128/25"), Provider: mustProvider(t, "fastly")},
			{Name: "cloudfront", Ranges: mustSet(t, "203.0.113.0/25"), Provider: mustProvider(t, "cloudfront")},
			{Name: "file:lb.txt", Ranges: mustSet(t, "203.0.113.128/25")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestResolveHeader(t *testing.T) {
	t.Parallel()
	res := cdnResolver(t)
	tests := []struct {
		name        string
		remote      string
		header      map[string][]string
		wantClient  string
		wantTrusted bool
	}{
		{name: "cloudflare header from a cloudflare peer", remote: "198.51.100.7:4000",
			header:     map[string][]string{"Cf-Connecting-Ip": {"2001:db8:1::5"}, "X-Forwarded-For": {"2001:db8:1::6"}},
			wantClient: "2001:db8:1::5", wantTrusted: true},
		{name: "cloudflare header from a direct client is ignored", remote: "[2001:db8:2::9]:4000",
			header:     map[string][]string{"Cf-Connecting-Ip": {"2001:db8:1::5"}},
			wantClient: "2001:db8:2::9"},
		{name: "v6 peer in cloudflare", remote: "[2001:db8:cf::1]:4000",
			header:     map[string][]string{"Cf-Connecting-Ip": {"203.0.113.200"}},
			wantClient: "203.0.113.200", wantTrusted: true},
		{name: "cloudflare header from another trusted proxy is not read", remote: "10.0.0.1:4000",
			header:     map[string][]string{"Cf-Connecting-Ip": {"198.18.0.1"}, "X-Forwarded-For": {"198.18.0.2"}},
			wantClient: "198.18.0.2", wantTrusted: true},
		{name: "fastly header from a cloudflare peer is not read", remote: "198.51.100.7:4000",
			header:     map[string][]string{"Fastly-Client-Ip": {"198.18.0.1"}, "X-Forwarded-For": {"198.18.0.2"}},
			wantClient: "198.18.0.2", wantTrusted: true},
		{name: "garbage header falls back to xff", remote: "198.51.100.7:4000",
			header:     map[string][]string{"Cf-Connecting-Ip": {"unknown"}, "X-Forwarded-For": {"198.18.0.2"}},
			wantClient: "198.18.0.2", wantTrusted: true},
		{name: "header sent twice is garbled", remote: "198.51.100.7:4000",
			header:     map[string][]string{"Cf-Connecting-Ip": {"198.18.0.1", "198.18.0.3"}, "X-Forwarded-For": {"198.18.0.2"}},
			wantClient: "198.18.0.2", wantTrusted: true},
		{name: "zoned header is garbled", remote: "198.51.100.7:4000",
			header:     map[string][]string{"Cf-Connecting-Ip": {"fe80::1%eth0"}},
			wantClient: "198.51.100.7", wantTrusted: true},
		{name: "no header, no xff: the cdn peer", remote: "198.51.100.7:4000",
			wantClient: "198.51.100.7", wantTrusted: true},
		{name: "mapped header folded", remote: "198.51.100.7:4000",
			header:     map[string][]string{"Cf-Connecting-Ip": {" ::ffff:198.18.0.1 "}},
			wantClient: "198.18.0.1", wantTrusted: true},
		{name: "cloudfront viewer address with port", remote: "203.0.113.5:4000",
			header:     map[string][]string{"Cloudfront-Viewer-Address": {"198.18.0.1:46532"}},
			wantClient: "198.18.0.1", wantTrusted: true},
		{name: "cloudfront v6 viewer address with port", remote: "203.0.113.5:4000",
			header:     map[string][]string{"Cloudfront-Viewer-Address": {"2001:db8:1::7:46532"}},
			wantClient: "2001:db8:1::7", wantTrusted: true},
		{name: "cloudfront viewer address without port is garbled", remote: "203.0.113.5:4000",
			header:     map[string][]string{"Cloudfront-Viewer-Address": {"198.18.0.1"}, "X-Forwarded-For": {"198.18.0.9"}},
			wantClient: "198.18.0.9", wantTrusted: true},
		{name: "fastly: its header is never read, xff is", remote: "198.51.100.200:4000",
			header:     map[string][]string{"Fastly-Client-Ip": {"198.18.0.1"}, "X-Forwarded-For": {"198.18.0.1, 198.18.0.5"}},
			wantClient: "198.18.0.5", wantTrusted: true},
		{name: "fastly shielding: xff passes its own edges", remote: "198.51.100.200:4000",
			header:     map[string][]string{"Fastly-Client-Ip": {"198.18.0.1"}, "X-Forwarded-For": {"198.18.0.5, 198.51.100.201"}},
			wantClient: "198.18.0.5", wantTrusted: true},
		{name: "the header is final even when it names a cdn edge", remote: "198.51.100.7:4000",
			header:     map[string][]string{"Cf-Connecting-Ip": {"198.51.100.8"}, "X-Forwarded-For": {"198.18.0.1, 198.51.100.8"}},
			wantClient: "198.51.100.8", wantTrusted: true},
		{name: "the header is final even when it names a trusted proxy", remote: "198.51.100.7:4000",
			header:     map[string][]string{"Cf-Connecting-Ip": {"10.9.9.9"}, "X-Forwarded-For": {"198.18.0.1, 10.9.9.9"}},
			wantClient: "10.9.9.9", wantTrusted: true},
		{name: "worker on the cdn edge names another cdn's header", remote: "[2001:db8:cf::103]:4000",
			header:     map[string][]string{"Cf-Connecting-Ip": {"2001:db8:cf::103"}, "Cloudfront-Viewer-Address": {"198.18.0.9:1"}, "X-Forwarded-For": {"198.18.0.9, 2001:db8:cf::103"}},
			wantClient: "2001:db8:cf::103", wantTrusted: true},
		{name: "plain list peer: xff only", remote: "203.0.113.200:4000",
			header:     map[string][]string{"Cf-Connecting-Ip": {"198.18.0.1"}, "X-Forwarded-For": {"198.18.0.2, 198.51.100.7"}},
			wantClient: "198.18.0.2", wantTrusted: true},
		{name: "xff walk passes cdn ranges", remote: "10.0.0.1:4000",
			header:     map[string][]string{"X-Forwarded-For": {"198.18.0.4, 198.51.100.7, 203.0.113.130"}},
			wantClient: "198.18.0.4", wantTrusted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, _, trusted := res.ResolveHeader(tc.remote, http.Header(tc.header))
			if client.String() != tc.wantClient || trusted != tc.wantTrusted {
				t.Errorf("ResolveHeader(%q, %v) = %v, %v, want %s, %v", tc.remote, tc.header, client, trusted, tc.wantClient, tc.wantTrusted)
			}
		})
	}
}

// TestResolveHeaderMatchesResolve: without provider headers, ResolveHeader
// is Resolve.
func TestResolveHeaderMatchesResolve(t *testing.T) {
	t.Parallel()
	res := cdnResolver(t)
	for _, remote := range []string{"10.0.0.1:1", "198.51.100.7:1", "203.0.113.200:1", "198.18.0.1:1", "x"} {
		for _, xff := range []string{"", "198.18.0.1", "198.18.0.1, 10.0.0.3", "junk, 198.51.100.9"} {
			var lines []string
			if xff != "" {
				lines = []string{xff}
			}
			c1, p1, t1 := res.Resolve(remote, lines)
			c2, p2, t2 := res.ResolveHeader(remote, http.Header{"X-Forwarded-For": lines})
			if c1 != c2 || p1 != p2 || t1 != t2 {
				t.Errorf("ResolveHeader(%q, %q) = %v %v %v, Resolve = %v %v %v", remote, xff, c2, p2, t2, c1, p1, t1)
			}
		}
	}
}

// TestResolverUpdate: an Update changes who is trusted from the next
// call, and a bad one leaves the old sets.
func TestResolverUpdate(t *testing.T) {
	t.Parallel()
	res := cdnResolver(t)
	h := http.Header{"Cf-Connecting-Ip": {"198.18.0.1"}}
	if c, _, _ := res.ResolveHeader("198.51.100.7:1", h); c != netip.MustParseAddr("198.18.0.1") {
		t.Fatalf("before update: client %v", c)
	}
	if err := res.Update(ClientIPConfig{Sets: []TrustedSet{{Name: "cloudflare", Ranges: mustSet(t, "198.51.100.128/25"), Provider: mustProvider(t, "cloudflare")}}}); err != nil {
		t.Fatal(err)
	}
	if c, _, tr := res.ResolveHeader("198.51.100.7:1", h); c != netip.MustParseAddr("198.51.100.7") || tr {
		t.Errorf("after update, old range: client %v trusted %v, want the peer, untrusted", c, tr)
	}
	if c, _, _ := res.ResolveHeader("198.51.100.200:1", h); c != netip.MustParseAddr("198.18.0.1") {
		t.Errorf("after update, new range: client %v, want 198.18.0.1", c)
	}
	err := res.Update(ClientIPConfig{Sets: []TrustedSet{{Name: "bad", Ranges: mustSet(t, "10.0.0.0/8"), Provider: &intel.Provider{Name: "bad", Header: "X-Forwarded-For"}}}})
	if err == nil || !strings.Contains(err.Error(), "X-Forwarded-For") {
		t.Errorf("Update with X-Forwarded-For header: err = %v", err)
	}
	if c, _, _ := res.ResolveHeader("198.51.100.200:1", h); c != netip.MustParseAddr("198.18.0.1") {
		t.Errorf("after failed update: client %v, want the previous sets", c)
	}
}

func TestNewClientIPResolverErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     ClientIPConfig
		wantErr string
	}{
		{name: "bad header", cfg: ClientIPConfig{Sets: []TrustedSet{{Name: "x", Provider: &intel.Provider{Header: "a b"}}}}, wantErr: "not a valid field name"},
		{name: "header not canonical", cfg: ClientIPConfig{Sets: []TrustedSet{{Name: "x", Provider: &intel.Provider{Header: "cf-connecting-ip"}}}}, wantErr: "canonical form"},
		{name: "too many sets", cfg: ClientIPConfig{Sets: make([]TrustedSet, MaxTrustedSets+1)}, wantErr: "more than 63"},
		{name: "bad prefix", cfg: ClientIPConfig{TrustedProxies: []netip.Prefix{{}}}, wantErr: "invalid prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewClientIPResolver(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NewClientIPResolver() err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzResolveHeader: a provider header is believed only from a peer in
// that provider's ranges; the client is the peer, the header's address or
// an X-Forwarded-For entry.
func FuzzResolveHeader(f *testing.F) {
	f.Add("198.51.100.7:1", "198.18.0.1", "", "198.18.0.2")
	f.Add("203.0.113.9:1", "198.18.0.1", "", "")
	f.Add("203.0.113.5:1", "", "2001:db8::1:443", "x")
	f.Add("198.51.100.200:1", "198.18.0.1", "", "198.51.100.7")
	res := cdnResolver(f)
	cf := mustSet(f, "198.51.100.0/25", "2001:db8:cf::/48")
	cfp, cfv6 := mustProvider(f, "cloudflare"), mustProvider(f, "cloudfront")
	f.Fuzz(func(t *testing.T, remote, cfh, cfv, xff string) {
		h := http.Header{}
		if cfh != "" {
			h["Cf-Connecting-Ip"] = []string{cfh}
		}
		if cfv != "" {
			h["Cloudfront-Viewer-Address"] = []string{cfv}
		}
		if xff != "" {
			h["X-Forwarded-For"] = []string{xff}
		}
		client, peer, trusted := res.ResolveHeader(remote, h)
		if !trusted {
			if client != peer {
				t.Fatalf("ResolveHeader(%q) = %v from the untrusted peer %v", remote, client, peer)
			}
			return
		}
		if client == peer {
			return
		}
		if a, ok := cfp.ClientIP(cfh); ok && a == client {
			if !cf.Contains(peer) && !strings.Contains(xff+cfv, client.String()) {
				t.Fatalf("ResolveHeader(%q) believed CF-Connecting-IP %q from a peer outside cloudflare", remote, cfh)
			}
			return
		}
		if a, ok := cfv6.ClientIP(cfv); ok && a == client {
			return
		}
		for _, e := range strings.Split(xff, ",") {
			if a, ok := parseXFFEntry(trimOWS(e)); ok && a == client {
				return
			}
		}
		t.Fatalf("ResolveHeader(%q, %q, %q, %q) = %v, not the peer nor a header's address", remote, cfh, cfv, xff, client)
	})
}
