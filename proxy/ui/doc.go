// Package ui is the live security dashboard the gateway serves under
// /ui/ on its admin listener: an overview (requests and blocked requests
// per second by reason, active bans per jail, kernel firewall drift,
// fleet state, charts of the last hour), the bans table (paged and
// searched on the server, with ban and unban forms), the latest
// offences with the most probed paths and offending networks, and the
// certificates and upstreams.
//
// Pages are rendered on the server with html/template, which escapes
// every value: paths, user agents, hosts and reasons shown here come
// from attackers. A small embedded script (static/app.js) keeps them
// current from a Server-Sent Events stream (/ui/events) and writes only
// text nodes. There is no inline script or style, so the
// Content-Security-Policy allows the dashboard's own files alone.
//
// Access: an admin token with scope ui or bans:write is exchanged for an
// HttpOnly, SameSite=Strict session cookie (Secure and __Host- prefixed
// over TLS); the token is authenticated again on every request, so
// revoking it on reload ends its sessions. Forms carry a per-session
// CSRF token and are checked for cross-origin requests; ban and unban
// need bans:write and go through the admin API's own code (Config.Ban,
// Config.Unban). Every sign-in and form action is written to the audit
// log. Requests naming a host the admin listener is not known by get
// 421, which defeats DNS rebinding.
//
// Data flows in from package proxy: Stats is fed by the access log hook
// of every request (Stats.Observe: one atomic compare-and-swap, and for
// offences a non-blocking send to Stats.Run); the ban list is read with
// rules.BanList.Page and followed with a subscription per open bans
// page; certificates, upstream health, the kernel firewall and the fleet
// come through Config's functions and interfaces. The package never
// imports proxy.
//
// Handler and Stats are safe for concurrent use.
package ui
