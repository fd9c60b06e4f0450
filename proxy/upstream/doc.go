// Package upstream holds a host's upstream pool: the http.RoundTripper
// of the host's reverse proxy, which spreads requests over the host's
// upstreams round robin and skips, for a fail timeout, an upstream that
// refused a connection (passive health, as nginx's max_fails=1
// fail_timeout), retrying the request on the next one while its body is
// untouched.
//
// It knows nothing of the config file or of the reverse proxy around
// it: package proxy builds one Pool per host from hosts[].upstreams and
// limits.upstream_fail_timeout, shares one transport among the pools of
// a config, and reads Upstreams for the dashboard and the
// gatehouse_upstream_up metric. A Pool is safe for concurrent use.
package upstream
