// Package nginx reads nginx configs and translates them, with an
// optional fail2ban jail file (read by proxy/config/fail2ban), into
// gatehouse configs; it is the engine of
// "gatehouse import nginx".
//
// Reading is nginx's own grammar, not line matching: Scanner tokenizes a
// file exactly as ngx_conf_read_token does (quotes, backslash escapes,
// "#" comments only where a word could start, "${var}"), Parse builds the
// directive tree, and Load expands include directives the way nginx
// resolves them (relative to the main file's directory, globs sorted,
// no leading-dot matches). Every Directive keeps its file and line.
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
// reads files only through the fs.FS it is given (Load, Config.FS) and
// writes nothing. Values are not shared after construction; a Scanner is
// not safe for concurrent use, everything else is safe to use from one
// goroutine at a time and holds no global state.
package nginx
