// Package filter judges log lines as fail2ban's filters do, with Go's
// regexp (RE2), so that no filter can backtrack catastrophically.
//
// A Config holds a filter in fail2ban's syntax after interpolation
// (failregex, ignoreregex, prefregex, datepattern). Compile translates
// fail2ban's tags (<HOST>, <ADDR>, <IP4>, <IP6>, <DNS>, <SUBNET>, <F-ID/>,
// <F-USER>…</F-USER> and every other <F-NAME> group) and refuses Python
// syntax RE2 lacks (look-arounds, back-references, conditional and atomic
// groups, possessive quantifiers) with an error naming the regex and the
// construct, except where a rewrite is exact, each checked against
// Python's re: a negative look-ahead of literals that ends a regex; a
// conditional (?(g)…|…) whose group an earlier choice of the same sequence
// decides (the choice distributed over the rest); (?:(?!L).)*? right before
// the literal L and (?:(?!L).)* right before the end (written out from
// L's automaton); and (?:\w+ (?!W\b)){m,n}\w+ (whole words other than W).
// Debian's sshd.conf compiles so in every mode. Builtin returns the filters shipped with
// gatehouse (sshd, postfix, dovecot, vsftpd, proftpd, nginx-http-auth,
// recidive), Builtins and Modes list them and their modes, JournalMatch
// the journal units and identifiers of their daemons.
//
// Judging a line spares the regex engine what it can exactly: literals
// every match needs (in order, or at the start) are looked for first, a
// leading syslog date is read by hand, and a prefregex ending in its
// <F-CONTENT> group is matched without that tail. A syslog line no
// failregex can match costs no allocation. A timestamp removed from within
// a line can join text into a literal, so there the literals are looked
// for again once it is removed.
//
// A Filter is immutable and safe for concurrent use; Filter.Match judges a
// line on its own. A Stream (one per log source, not for concurrent use)
// also carries what fail2ban keeps between lines: the connection memory of
// <F-MLFID> filters and the last timestamp.
//
// Timestamps: the line's own, found as fail2ban's date detector finds
// them: Config.DatePattern is a list of templates, one a line ("" all of
// fail2ban's default templates, in its order; "{^LN-BEG}" those at the
// line start; strftime patterns with fail2ban's %Ex… forms; {DATE},
// EPOCH, TAI64N, {NONE}); a template anchored at the line start decides
// when it matches, otherwise the earliest match does. The timestamp (the
// template's first group) is removed from the line before the regexes see
// it, as fail2ban does. A timestamp without a year takes the current year,
// or the previous one if that puts it more than a day in the future; one
// with only a time of day takes today, or yesterday if that is in the
// future; one without a zone is read in Config.Location; a field out of
// range (February 30, 24:00, second 60) leaves the line without a time.
// fail2ban reorders its templates by the hits of earlier lines; judging
// each line on its own, this package does not. A template is only run on
// a line that has a byte its expression needs, in the context it needs it
// (most of fail2ban's need a ':' between digits), so a line without a date
// costs well under a microsecond, not one run of every template. Lines from the journal
// pass their __REALTIME_TIMESTAMP to MatchAt.
//
// The package reads no files and resolves no names: a <HOST> that is not an
// address comes back as Result.HostName for the caller to refuse or resolve.
// An address a tag captures counts only where the line's token ends with
// it: fail2ban blames 10.66.0.1 for the host name 10.66.0.1.evil.example
// (which whoever runs the evil.example zone can give their address) and
// 1.2.3.4 for 1.2.3.4%eth0; here the token, running on over letters,
// digits, '_', '.', '-' and a '%' zone, is the HostName, or the address
// when the whole token is one (::10.0.0.5, where fail2ban takes ::10). A
// port after the address (":22", "]:22", "-22") and a full stop end it.
package filter
