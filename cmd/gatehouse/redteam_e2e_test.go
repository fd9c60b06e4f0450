package main

// End-to-end tests of what still did not hold after the issue 17 fixes,
// found by a red-team pass over them, through the real binary.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestRedteamOAuth2ProxyHeadersStripped: oauth2-proxy sets
// X-Auth-Request-Groups and X-Auth-Request-Access-Token beside the
// -User, -Email and -Preferred-Username ones gatehouse strips; an app
// that was behind nginx auth_request + oauth2-proxy maps roles from the
// groups header, so a client-sent one is a privilege escalation. Cloudflare
// sends the client address of an IPv6 client in CF-Connecting-IPv6 (pseudo
// IPv4), the sibling of CF-Connecting-IP.
func TestRedteamOAuth2ProxyHeadersStripped(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [app.test]
    upstreams: [%s]
`, up.URL())))
	sent := http.Header{
		"X-Auth-Request-Groups":       {"admins"},
		"X_auth_request_groups":       {"admins"},
		"X-Auth-Request-Access-Token": {"forged"},
		"Cf-Connecting-Ipv6":          {"2001:db8::1"},
	}
	code, body := rawGet(t, g, "app.test", "/", sent)
	if code != 200 {
		t.Fatalf("GET / = %d, want 200 (%q)", code, body)
	}
	for k := range decodeEcho(t, body).Header {
		n := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(k))
		switch n {
		case "x-auth-request-groups", "x-auth-request-access-token", "cf-connecting-ipv6":
			t.Errorf("upstream got client-sent %s", k)
		}
	}
}
