// Package rules holds gatehouse's policy and its state: the canonical
// path every path decision matches (Canonical), the compiled matchers
// (ProbeMatcher with the built-in presets, HotlinkMatcher for referers,
// PrefixSet for protected paths), the jails that offences are reported to
// (Jails, fail2ban's semantics; DryRun for replaying logs), the ban list
// (BanList, with a change feed for the kernel firewall, the store and
// notifications), and the access log line parser (ParseLogLine).
//
// Middleware asks rules what a request matches and reports offences to
// Jails; only rules decides bans. rules never imports middleware or proxy.
// Compiled matchers are immutable and safe for concurrent use; Jails and
// BanList are safe for concurrent use, and their request-path methods
// (Report, Lookup) do not block and do not allocate in the common case.
// Subpackages subscribe to the ban list or share it: rules/store
// (persistence), rules/firewall (kernel sets), rules/fleet (Redis sync),
// rules/notify (ban messages).
package rules
