// Package filter judges log lines as fail2ban's filters do, with Go's
// regexp (RE2), so that no filter can backtrack catastrophically.
//
// A Config holds a filter in fail2ban's syntax after interpolation
// (failregex, ignoreregex, prefregex, datepattern). Compile translates
// fail2ban's tags (<HOST>, <ADDR>, <IP4>, <IP6>, <DNS>, <SUBNET>, <F-ID/>,
// <F-USER>…</F-USER> and every other <F-NAME> group) and refuses Python
// syntax RE2 lacks (look-arounds, back-references, conditional and atomic
// groups, possessive quantifiers) with an error naming the regex and the
// construct, except where a rewrite is exact: a negative look-ahead of
// literals that ends a regex. Builtin returns the filters shipped with
// gatehouse (sshd, postfix, dovecot, vsftpd, proftpd, nginx-http-auth,
// recidive), Builtins and Modes list them and their modes, JournalMatch
// the journal units and identifiers of their daemons.
//
// Judging a line spares the regex engine what it can exactly: literals
// every match needs (in order, or at the start) are looked for first, a
// leading syslog date is read by hand, and a prefregex ending in its
// <F-CONTENT> group is matched without that tail. A line no failregex can
// match costs no allocation.
//
// A Filter is immutable and safe for concurrent use; Filter.Match judges a
// line on its own. A Stream (one per log source, not for concurrent use)
// also carries what fail2ban keeps between lines: the connection memory of
// <F-MLFID> filters and the last timestamp.
//
// Timestamps: the line's own, found by fail2ban's default detection (syslog,
// ISO 8601, RFC 5424, TAI64N) or the datepattern, and removed from the line
// before the regexes see it, as fail2ban does. A timestamp without a year
// takes the current year, or the previous one if that puts it more than a
// day in the future; one without a zone is read in Config.Location. Lines
// from the journal pass their __REALTIME_TIMESTAMP to MatchAt.
//
// The package reads no files and resolves no names: a <HOST> that is not an
// address comes back as Result.HostName for the caller to refuse or resolve.
package filter
