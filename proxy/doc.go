// Package proxy is the gateway itself: it turns a validated config
// (package proxy/config) into a running server and owns its lifecycle —
// New builds it, Run binds the listeners and serves, Reload swaps in a
// new config, and Run returns once the server has drained. Once it
// serves, Run lets go of what start-up alone used (startmem.go): the
// heap's garbage and the executable's pages that only initialisation
// touched.
//
// What a request meets, in order:
//
//   - the listener stack of package proxy/listener: a per-client
//     connection limit, TLS terminated by gatehouse (certificates from
//     files or ACME, and a fleet's shared ones, in package proxy/cert)
//     and the HTTP/1 framing guard;
//   - the request chain, listed once in chain.go: scope, access log,
//     client IP, ban guard, rate limit, hygiene, probes; then the host
//     router (router.go), the host's upgrade policy and body limit
//     (route.go, body.go), the host's own middleware (siteChain: hotlink,
//     signed links, basic auth, request buffering) and the reverse proxy
//     to the host's upstream pool (package proxy/upstream): GET and HEAD
//     without a body take the fast path of forward.go, everything else
//     httputil.ReverseProxy. Request policy itself lives in package
//     middleware and package rules.
//
// Beside it, the admin listener (package proxy/admin) serves health,
// metrics, the /v1 API and the dashboard over the server's state
// (adminlisten.go). Access log lines go to the files of package
// proxy/logsink, onto which wire.go maps the log sections. Server wires
// the ban list to its subscribers (rules/store, rules/firewall,
// rules/notify, rules/fleet; fleet.go) and drops privileges once the
// listeners are bound (package proxy/privdrop, runas.go). ReplayLog runs
// an access log through a config's rules for gatehouse rules test.
//
// Everything a config describes is compiled by Server.build (wire.go)
// into one immutable generation: the request chain, routes, upstream
// pools, jails, signers. Reload builds a complete new generation and
// swaps a single pointer, so a request runs start to finish on one
// config and an invalid config never replaces a working one. Listener
// addresses and server timeouts are bound at start and need a restart
// to change. New closes whatever it opened when it fails. Server's
// methods are safe for concurrent use.
package proxy
