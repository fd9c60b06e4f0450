// Package privdrop is the privilege drop for starts outside systemd (a shell, a container's
// entrypoint): `gatehouse serve --user NAME` is started as root, binds its
// listeners and opens the kernel firewall, then becomes NAME and keeps
// only the capabilities it still needs:
//
//   - CAP_NET_ADMIN while a firewall backend is on, because the
//     reconciler changes the kernel sets for as long as the gateway runs
//     (in-process netlink for nftables, and the ipset and iptables tools,
//     which inherit it through the ambient set);
//   - CAP_NET_RAW too for the ipset backend: its iptables rule matches
//     the set through libxt_set, which looks the set up over a raw socket
//     (iptables-restore: "Can't open socket to ipset" without it). The
//     iptables backend needs the nf_tables iptables (Debian's default):
//     iptables-legacy would want a raw socket and root's lock file;
//   - never CAP_NET_BIND_SERVICE: listeners are bound once, before the
//     switch, and a reload keeps them (a changed listen address takes a
//     restart), so nothing binds a port afterwards.
//
// Everything else is dropped from the permitted, effective, inheritable,
// ambient and bounding sets, and no_new_privs is set, so neither the
// gateway nor a tool it runs can regain privilege. Under systemd none of
// this runs: configs/gatehouse.service starts gatehouse as its own user
// with the capabilities granted by the unit.
//
// The package resolves the account (ResolveRunAs, LookupCredential),
// chooses what to keep (Keep) and switches every thread of the process
// (Switch, Linux only; elsewhere it returns an error wrapping
// errors.ErrUnsupported). Package proxy calls Switch once every listener
// is bound and before anything is served.
package privdrop
