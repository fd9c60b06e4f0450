package proxy

import (
	"net/http"
	"strings"

	"gatehouse/proxy/cert"
	"gatehouse/proxy/config"
)

// router maps a request's host to its route: exact names first, then the
// longest matching "*.suffix" wildcard. It is immutable once built.
//
// Wildcards follow nginx's server_name semantics: "*.example.com" matches
// any name below example.com (a.example.com, a.b.example.com) but not
// example.com itself; the longest suffix wins.
type router struct {
	exact    map[string]*route
	wildcard map[string]*route // keyed by the suffix without "*."
	// certs, when HTTPS is on, redirects plain HTTP requests for the
	// names it has a certificate for.
	certs *cert.Source
}

var _ http.Handler = (*router)(nil)

func newRouter() *router {
	return &router{exact: map[string]*route{}, wildcard: map[string]*route{}}
}

// lookup returns the route for a Host header value, or nil.
func (rt *router) lookup(host string) *route {
	var buf [256]byte
	name, ok := canonicalHost(host, buf[:0])
	if !ok {
		return nil
	}
	// Indexing with string(bytes) does not allocate.
	if r := rt.exact[string(name)]; r != nil {
		return r
	}
	if len(rt.wildcard) == 0 {
		return nil
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			if r := rt.wildcard[string(name[i+1:])]; r != nil {
				return r
			}
		}
	}
	return nil
}

// byPattern returns the route registered under a hosts[].match entry.
func (rt *router) byPattern(m config.HostPattern) *route {
	if m.Wildcard() {
		return rt.wildcard[m.Name()]
	}
	return rt.exact[m.Name()]
}

// canonicalHost lower-cases host and strips its port and one trailing dot,
// appending the result to buf. It reports false for an empty or oversized
// name; host names are validated properly by the request hygiene layer,
// here a bad name simply matches nothing.
func canonicalHost(host string, buf []byte) ([]byte, bool) {
	if strings.HasPrefix(host, "[") { // IPv6 literal, with or without port
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return nil, false
		}
		host = host[1:end]
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		if strings.IndexByte(host[i+1:], ':') >= 0 {
			return nil, false // bare IPv6 without brackets is not a Host
		}
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > cap(buf) {
		return nil, false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	return buf, true
}

// ServeHTTP routes r to its host's handler; an unknown host gets 421
// Misdirected Request (RFC 9110 §15.5.20) and never reaches an app.
func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := rt.lookup(r.Host)
	if route == nil {
		misdirected(w, r)
		return
	}
	if r.TLS == nil && rt.certs != nil {
		var buf [256]byte
		if name, _ := canonicalHost(r.Host, buf[:0]); rt.certs.Covers(string(name)) {
			rt.certs.Redirect(w, r, string(name))
			return
		}
	}
	route.ServeHTTP(w, r)
}
