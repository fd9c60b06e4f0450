// Package middleware holds gatehouse's request pipeline: one
// func(http.Handler) http.Handler per concern — request scope (WithScope),
// access log (AccessLog), client IP (ClientIP), ban guard (BanGuard),
// flood jails (RateLimit), named rate limits of hosts and routes (Limit,
// nginx's limit_req), request hygiene and the canonical view of host
// and path (Hygiene; CanonicalPath is its path-only part), probe blocking
// (ProbeBlock), hotlink protection (Hotlink), signed links (SignedLinks)
// and basic auth (BasicAuth, with its Credentials store) — plus the
// response header policy (HeaderPolicy, with HSTS on TLS answers) the
// proxy applies on the way back. The order is fixed in one place, proxy's
// build.
//
// Every request carries one Scope, created by WithScope at the top of the
// chain and filled in by later middleware (ClientIP sets the client address,
// the router sets the matched host). Middleware reads it with ScopeFrom and
// never adds further context values, so the whole pipeline pays for a single
// context allocation.
//
// Constructors take a config struct, validate and precompute everything
// (parsed prefixes, canonical header names) and return the wrapper; the
// returned handlers parse no config and are safe for concurrent use.
// middleware depends on rules for policy and state; it never imports proxy.
// middleware/htpasswd reads and writes Apache password files, the
// credentials BasicAuth checks and the CLI edits.
package middleware
