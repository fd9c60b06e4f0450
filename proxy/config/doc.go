// Package config owns the gatehouse config file: its YAML format, the strict
// decoding of it, secret references (env:NAME, file:PATH, sha256:HEX), the
// defaults and the validation, with every problem reported as file:line:
// field: message.
//
// Data flows one way: Load (or Parse) turns a file into a *File whose leaf
// values are already typed (Duration, Size, Prefix, HostPattern, Upstream,
// Secret) and checked. The proxy package maps a *File to the plain config
// structs of the lower packages; nothing below proxy imports this package,
// and only this package knows YAML.
//
// What it does not do: open listeners, start goroutines, create files or
// directories, touch the kernel or change process state. Loading reads the
// config file, the files named by file: references and the environment
// variables named by env: references, and checks that the directory of
// log.access_file exists; nothing more, so "gatehouse check" is safe to run
// anywhere.
//
// Errors: Parse and Load report an invalid config as Errors, a list of
// *Error sorted by line, so callers (cmd/gatehouse check, reload) can print
// every problem at once and tell an invalid config (exit 2) from an I/O
// failure (exit 1) with errors.As.
//
// Concurrency: a *File and the values in it are not modified after Load
// returns, and callers must treat them as read-only, so they are safe for
// concurrent reads. Accessors that would hand out internal pointers
// (Upstream.URL) return copies.
package config
