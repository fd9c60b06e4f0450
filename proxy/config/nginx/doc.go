// Package nginx translates nginx configs, with an optional fail2ban jail
// file, into gatehouse configs; it is the engine of "gatehouse import
// nginx". It reads configs with proxy/config/nginx/conf (nginx's own
// grammar, includes expanded, every directive with its file and line)
// and jail files with proxy/config/fail2ban.
//
// Translate walks the tree with nginx's inheritance rules (http → server
// → location, each level replacing a directive list as a whole) and
// writes a gatehouse config as YAML with a comment naming the source
// file:line of every translated block. A server becomes a host carrying
// its server-level settings; each of its locations becomes one of the
// host's routes carrying what its nginx scope has beyond the host's
// (limit_req as a named limit, allow/deny, auth_basic or auth_basic off,
// return, the proxy_pass target, proxy_read_timeout,
// client_max_body_size, the upstream servers' max_fails/fail_timeout).
// A rule is never moved to a wider scope than nginx gave it. What it
// cannot express is never dropped silently: Result.Untranslated lists it
// as "file:line: directive: why". Directives about running nginx itself
// (workers, pid, buffers, hash sizes, TLS protocol tuning) are dropped
// without a finding, since no request's answer depends on them; the
// tables in tables.go name them. Input nginx -t refuses is an
// *InvalidError naming each refused directive (validate.go).
//
// Translate maps the enabled HTTP jails of a fail2ban jail file
// (Config.Fail2ban) onto gatehouse's auth, probes and limit jails, its
// ignoreip onto allow and its mail actions onto notify.email. Given
// fail2ban's whole directory (Options.Fail2banWatch, from
// fail2ban.Import with HTTPJail as its Skip), its other jails (sshd,
// postfix, recidive …) become watch entries and their jails.
//
// Data flows one way: bytes → tokens → directives → Result. The package
// reads files only through the fs.FS it is given (LoadConfig, Config.FS)
// and writes nothing. Values are not shared after construction; they are
// safe to use from one goroutine at a time and hold no global state.
package nginx
