// Package firewall enforces the ban list in the host kernel, so that a
// banned client's packets are dropped before they cost gatehouse a
// syscall: ipset sets, an nftables table or plain iptables rules, in the
// raw table / at raw priority of PREROUTING (before connection tracking).
//
// It owns the kernel objects gatehouse creates, and only those:
//
//	ipset     sets gatehouse4 (hash:net inet) and gatehouse6 (hash:net inet6), with
//	          timeouts; one rule per family in iptables/ip6tables -t raw PREROUTING
//	nftables  table inet gatehouse: sets ban4, ban6 (interval, timeout) and the base
//	          chain prerouting (hook prerouting, priority raw)
//	iptables  chain GATEHOUSE in iptables/ip6tables -t raw, jumped to from PREROUTING,
//	          one DROP rule per ban (no timeouts; O(n): for small hosts only)
//
// Blocklist feeds get kernel sets of their own, beside the bans, one per
// feed and family, without timeouts, and an exempt set (allow list and
// trusted proxies) that wins over every feed; Feeds keeps them (see
// feeds.go for the object names). A feed's content is replaced
// atomically: ipset fills a new set and swaps it in, nftables flushes and
// refills the set in one transaction. The iptables backend keeps no feed
// sets (NewFeeds returns ErrFeedsUnsupported).
//
// It does not decide bans (rules.Jails does), keep them (rules.BanList),
// persist them (rules/store) or share them (rules/fleet); it reads the ban
// list and makes the kernel match it.
//
// # Data flow
//
// A Backend (built by New from Config) is kernel I/O only: Ensure its
// objects, List their entries, Apply additions and deletions, Remove
// everything. The Reconciler holds the policy: it subscribes to the ban
// list, applies each batch of changes as it comes, and every Interval
// runs a full pass that lists the kernel and repairs any difference
// (entries deleted by hand, a flushed or deleted set, a missing rule).
// Each entry carries the time its ban has left as a kernel timeout, so
// bans end on time even while gatehouse is down.
//
//	b, err := firewall.New(firewall.Config{Backend: "auto", Ports: []uint16{80, 443}, Log: log})
//	if errors.Is(err, firewall.ErrUnavailable) { /* log once; bans stay in memory */ }
//	r, err := firewall.NewReconciler(firewall.ReconcilerConfig{Backend: b, Bans: bans,
//		Interval: 30 * time.Second, Allow: allow, Log: log, Registerer: reg})
//	g.Go(func() error {
//		if err := r.Run(ctx); errors.Is(err, firewall.ErrNoPermission) {
//			log.Error("kernel firewall off: gatehouse lacks CAP_NET_ADMIN; bans are enforced in memory only")
//		}
//		return nil
//	})
//
// `gatehouse firewall status` is ReadStatus(ctx, b) (or Reconciler.Status
// inside a running gateway), and `gatehouse firewall flush` is b.Remove
// (Reconciler.Flush).
//
// # Requirements
//
// CAP_NET_ADMIN (the tools and netlink refuse without it: errors wrap
// ErrNoPermission), and per backend: ipset, the kernel's ip_set modules
// (sets and entries are kept over the ipset netlink protocol, on one
// persistent socket; no ipset tool) and the iptables and ip6tables tools
// for its two rules (with iptables-restore, ip6tables-restore; Debian
// package iptables); nftables, an nf_tables kernel (no tool needed);
// iptables, the same iptables tools. Config.NetNS needs ip(8) from
// iproute2 for the shell-outs. The backends are Linux only: elsewhere
// New returns an error wrapping errors.ErrUnsupported.
//
// # Concurrency
//
// Backends and the Reconciler are safe for concurrent use. Run is meant
// to run in one goroutine, owned by the caller; Status and Flush may be
// called beside it.
package firewall
