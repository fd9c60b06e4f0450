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
// A pooled connection is taken again only if nothing arrived on it while
// it was idle (a non-blocking peek at the socket): bytes an upstream
// sends after its answer never become the next request's answer. Idle
// connections close after the idle timeout, swept by one timer per
// Client. The response header timeout starts once the request is
// written and bounds the whole wait for the final head, informational
// answers included.
//
// Where Client deliberately differs from net/http's Transport and
// ReverseProxy, it is the stricter:
//   - a folded header line (obs-fold) is refused (RFC 9112 §5.2 lets a
//     proxy do so) where net/http joins it to the line before;
//   - an answer head, with the empty lines before its status line, is
//     limited to 1 MiB where Transport allows 10 MiB;
//   - at most 10 informational answers (1xx) come before the final one;
//     ReverseProxy relays any number;
//   - the head of an answer of unknown length is flushed to the client
//     at once, so net/http sniffs no Content-Type from its body; behind
//     ReverseProxy it does when the first body write wins the race with
//     its initial flush.
//
// The package knows nothing of the config file or of the reverse proxy
// around it: package proxy builds one Pool per host from
// hosts[].upstreams and limits.upstream_fail_timeout, shares one
// transport and one Client among the pools of a config, writes the
// requests' heads (proxy/forward.go), and reads Upstreams for the
// dashboard and the gatehouse_upstream_up metric. Pool and Client are
// safe for concurrent use; a Conn belongs to one exchange at a time.
package upstream
