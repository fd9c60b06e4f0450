// Package match holds what gatehouse matches requests against: the
// canonical path every path decision uses (Canonical, with EscapePath
// for the one raw spelling of a path), the compiled matchers
// (ProbeMatcher with the built-in presets, HotlinkMatcher for referers,
// PrefixSet for protected paths), host and port syntax shared with the
// Host header checks (ValidPort), and the access log line parser that
// feeds replays (ParseLogLine).
//
// It holds no state about clients: offences go to rules.Jails, bans to
// rules.BanList. match imports none of gatehouse's packages; middleware,
// proxy and proxy/config import it. Compiled matchers are immutable and
// safe for concurrent use; Match and Allowed do not allocate on the miss
// path.
package match
