// Package proxy is the gateway itself: it turns a validated config
// (package proxy/config) into a running server — the public listeners
// (plain HTTP and HTTPS, each behind a per-client connection limit and
// the HTTP/1 framing guard, with TLS terminated by package proxy/listener
// with certificates from certmagic or files, tls.go), the host router,
// the reverse proxy to each host's upstream pool, the admin listener of
// package proxy/admin — wires the ban list to its
// subscribers (rules/store, rules/firewall, rules/notify, rules/fleet),
// drops privileges after binding (package proxy/privdrop), and reloads and shuts it
// down. ReplayLog runs an access log through a config's rules for
// gatehouse rules test.
//
// Everything a config describes is compiled by Server.build into one
// immutable generation (the middleware chain, routes, upstream pools). Reload
// builds a complete new generation and swaps a single pointer, so a request
// runs start to finish on one config and an invalid config never replaces
// a working one. Listener addresses and server timeouts are bound at start
// and need a restart to change.
//
// The middleware chain's order is fixed in build (wire.go); request
// policy lives in package middleware and package rules. Server's methods
// are safe for concurrent use.
package proxy
