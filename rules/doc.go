// Package rules holds gatehouse's ban state and the decisions that change
// it: the jails that offences are reported to (Jails, fail2ban's
// semantics; DryRun for replaying logs), the bounded per-client table
// they keep (ClientTable, which the flood limiters share), and the ban
// list (BanList, with a change feed for the kernel firewall, the store
// and notifications).
//
// What a request matches is rules/match: the canonical path, the probe,
// hotlink and protected-path matchers, and the access log line parser.
// Middleware asks rules/match what a request is and reports offences to
// Jails; only rules decides bans. rules imports neither rules/match nor
// middleware nor proxy. Jails and BanList are safe for concurrent use,
// and their request-path methods (Report, Lookup) do not block and do not
// allocate in the common case.
//
// Subpackages subscribe to the ban list or share it: rules/store
// (persistence), rules/firewall (kernel sets), rules/fleet (Redis sync),
// rules/notify (ban messages).
package rules
