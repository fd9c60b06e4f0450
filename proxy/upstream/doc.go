// Package upstream holds a host's upstream pool and the HTTP/1.1 client
// the proxy's fast path sends through.
//
// Pool spreads requests over the host's upstreams round robin and skips,
// for a fail timeout, an upstream that refused a connection (passive
// health, as nginx's max_fails=1 fail_timeout), retrying the request on
// the next one while its body is untouched. It is the http.RoundTripper
// of the host's reverse proxy (RoundTrip, over net/http's Transport) and
// the fast path's sender (Exchange, over a Client); both share its
// round robin and its health.
//
// Client is a purpose-built HTTP/1.1 client for requests without a body
// to plain-HTTP upstreams: pooled keep-alive connections, each exchange
// on the caller's goroutine, the request head written straight into the
// connection's buffer and the answer head parsed with one allocation,
// bodies framed by Content-Length, chunked coding (with trailers) or the
// connection's close, as strictly as net/http's ReadResponse (a fuzz
// target checks it against that reference). Request bodies, upgrades and
// HTTPS upstreams stay on net/http's Transport.
//
// The package knows nothing of the config file or of the reverse proxy
// around it: package proxy builds one Pool per host from
// hosts[].upstreams and limits.upstream_fail_timeout, shares one
// transport and one Client among the pools of a config, writes the
// requests' heads (proxy/forward.go), and reads Upstreams for the
// dashboard and the gatehouse_upstream_up metric. Pool and Client are
// safe for concurrent use; a Conn belongs to one exchange at a time.
package upstream
