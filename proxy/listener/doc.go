// Package listener is the stack under the gateway's public HTTP servers,
// from the socket up to the first byte net/http parses:
//
//   - NewProxy (proxyproto.go) reads the PROXY protocol header a load
//     balancer sends ahead of each connection (listen.proxy_protocol),
//     so that every layer above sees the client it names; it refuses a
//     header from any other peer;
//   - Limit (connlimit.go) caps the connections one client may hold open
//     (limits.conns_per_ip), closing the ones over the cap right after
//     accept, before any TLS handshake;
//   - NewTLS (tls.go) terminates TLS itself, so HTTP/1.1 over TLS reaches
//     the framing guard too, and hands h2 connections to net/http as they
//     are;
//   - Guard (framing.go) refuses HTTP/1 requests whose framing two parsers
//     could read differently (request smuggling), and cuts a connection
//     after a malformed body.
//
// The package knows nothing of the config file, jails or the ban list:
// what to do with a refused request, a refused PROXY header or a client
// over its connection cap is a callback the caller passes (package proxy
// reports them to a jail).
// Listeners and limiters are safe for concurrent use.
package listener
