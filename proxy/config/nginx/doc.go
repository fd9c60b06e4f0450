// Package nginx translates nginx configs, with an optional fail2ban jail
// file, into gatehouse configs; it is the engine of "gatehouse import
// nginx". It reads configs with proxy/config/nginx/conf (nginx's own
// grammar, includes expanded, every directive with its file and line)
// and jail files with proxy/config/fail2ban.
//
// Translate walks the tree with nginx's inheritance rules (http → server
// → location, each level replacing a directive list as a whole) and
// writes a gatehouse config as YAML with a comment naming the source
// file:line of every translated block. What it cannot express is never
// dropped silently: Result.Untranslated lists it as
// "file:line: directive: why". Directives about running nginx itself
// (workers, pid, buffers, hash sizes, TLS protocol tuning) are dropped
// without a finding, since no request's answer depends on them; the
// tables in tables.go name them.
//
// Translate maps the enabled HTTP jails of a fail2ban jail file
// (Config.Fail2ban) onto gatehouse's auth, probes and flood jails and its
// ignoreip onto allow.
//
// Data flows one way: bytes → tokens → directives → Result. The package
// reads files only through the fs.FS it is given (LoadConfig, Config.FS)
// and writes nothing. Values are not shared after construction; they are
// safe to use from one goroutine at a time and hold no global state.
package nginx
