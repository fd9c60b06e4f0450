// Package conf reads nginx config files with nginx's own grammar, not
// line matching: Scanner tokenizes a file exactly as ngx_conf_read_token
// does (quotes, backslash escapes, "#" comments only where a word could
// start, "${var}"), Parse builds the directive tree, and Load expands
// include directives the way nginx resolves them (relative to the main
// file's directory, globs sorted, no leading-dot matches). Every
// Directive keeps its file and line; errors are *Error, "file:line:
// message".
//
// It reads files only through the fs.FS it is given and writes nothing.
// A Scanner is not safe for concurrent use; a parsed tree is not changed
// after Parse or Load returns.
package conf
