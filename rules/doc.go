// Package rules holds gatehouse's policy and its state: path matchers and
// the jails that offences are reported to. Middleware asks rules what a
// request matches and reports offences to it; only rules decides what
// follows from them.
//
// rules never imports middleware or proxy. Its compiled matchers are
// immutable and safe for concurrent use; Jails is safe for concurrent use.
// Subpackages: rules/htpasswd (Apache password files).
package rules
