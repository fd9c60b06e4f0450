package rules

import (
	"errors"
	"net/netip"
	"time"
)

// OffenceSharer counts the offences of some jails across the nodes of a
// fleet, so that a client spreading its offences over the nodes is
// caught as if one node saw them all (rules/fleet, through Redis). It is
// an interface because rules must not import the fleet.
type OffenceSharer interface {
	// ShareOffence takes o to be counted fleet-wide and reports true,
	// or reports false, and the jail counts o locally: the fleet is
	// unreachable, or its queue is full. It is called on the request
	// path, so it must not block. The sharer decides the ban itself; an
	// offence it took but then could not count is handed back with
	// Offence.CountLocally.
	ShareOffence(o Offence) bool
}

// Offence is one offence against a shared jail, as Jails hands it to its
// OffenceSharer.
type Offence struct {
	// Jail is the jail's name.
	Jail string
	// Prefix is the client as the jail counts and bans it: an IPv4 /32,
	// or an IPv6 prefix of JailsConfig.IPv6Prefix bits (a /128 when that
	// prefix would cover an allowed address).
	Prefix netip.Prefix
	// Addr is the offending address, unmapped.
	Addr netip.Addr
	// Reason is the offence, as given to Report.
	Reason string
	// At is when the offence was reported, on this node's clock.
	At time.Time
	// Policy is the jail's configuration, defaults applied.
	Policy JailPolicy

	jails *Jails // where CountLocally counts
}

// JailPolicy is a counting jail's configuration with its defaults
// applied: what a sharer needs to count offences and decide bans with
// the jail's semantics (see JailConfig).
type JailPolicy struct {
	// MaxRetry offences within FindTime ban a client.
	MaxRetry int
	// FindTime is the sliding window, ends included.
	FindTime time.Duration
	// BanTime is how long a first ban lasts.
	BanTime time.Duration
	// Factor is the increment's growth per ban; 0: no increment.
	Factor float64
	// Max caps a ban's duration.
	Max time.Duration
	// Forget is how long a client's ban history outlives its last ban.
	Forget time.Duration
}

// Duration returns how long the n-th ban of a client lasts under p (n
// counts from 1), as the jail computes it.
func (p JailPolicy) Duration(n int) time.Duration {
	jl := jail{banTime: p.BanTime, factor: p.Factor, max: p.Max}
	return jl.duration(n)
}

// CountLocally counts o in the jails that offered it, as if they had no
// sharer, and enforces the ban that follows, if one does: the fallback
// for an offence that the sharer took but could not count (the fleet
// went away). It uses o.At as the offence's time.
func (o Offence) CountLocally() {
	j := o.jails
	if j == nil {
		return
	}
	if jl := j.jails[o.Jail]; jl != nil {
		// offerShared counted the offence already; report counts it again.
		jl.untracked.Add(^uint64(0))
	}
	b, ok, nb, escalated := j.report(o.Jail, o.Addr, o.Reason, o.At)
	if escalated && j.bans != nil {
		j.banNetwork(j.jails[o.Jail], nb)
	}
	if !ok {
		return
	}
	if j.bans == nil {
		j.log.Info("ban of a shared jail not enforced: no ban list", banAttrs(b)...)
		return
	}
	stored, err := j.bans.Ban(b)
	if errors.Is(err, ErrCovered) {
		j.log.Debug("ban of a shared jail not stored: a longer-lasting ban of its network covers it", append(banAttrs(b), "err", err)...)
		return
	}
	if err != nil {
		j.log.Warn("ban of a shared jail refused", append(banAttrs(b), "err", err)...)
		return
	}
	j.log.Info("ban decided locally for a shared jail", banAttrs(stored)...)
	j.escalate(j.jails[o.Jail], stored)
}

// Banned tells the jails that offered o that the fleet banned o's client
// with b (as stored on this node's ban list), so that the jail's
// escalation (JailConfig.Escalate) counts it: the node that counted the
// offence which made a fleet ban escalates, once, for the fleet.
func (o Offence) Banned(b Ban) {
	j := o.jails
	if j == nil || b.Jail != o.Jail {
		return
	}
	if jl := j.jails[o.Jail]; jl != nil {
		j.escalate(jl, b)
	}
}

// share marks the jails of cfg.Shared as shared with cfg.Sharer.
func (j *Jails) share(cfg JailsConfig) {
	if cfg.Sharer == nil {
		return
	}
	for _, name := range cfg.Shared {
		if jl := j.jails[name]; jl != nil {
			jl.shared = true
			j.sharer = cfg.Sharer
		}
	}
}

// policy returns jl's configuration as a JailPolicy.
func (jl *jail) policy() JailPolicy {
	return JailPolicy{
		MaxRetry: jl.ring + 1,
		FindTime: time.Duration(jl.findTime),
		BanTime:  jl.banTime,
		Factor:   jl.factor,
		Max:      jl.max,
		Forget:   time.Duration(jl.forget),
	}
}

// offerShared hands an offence against a shared jail to the sharer and
// reports whether it took it; if not, Report counts it locally. Allowed
// and invalid addresses are left to the local path, which counts them
// as untracked; a client already banned is not counted (the firewall
// would have dropped it), as the local jail does not count a client
// serving its ban.
func (j *Jails) offerShared(name string, ip netip.Addr, reason string) bool {
	jl := j.jails[name]
	if jl == nil || !jl.shared {
		return false
	}
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || j.allowed(ip) {
		return false
	}
	if j.bans != nil && j.bans.banned(ip) {
		jl.untracked.Add(1)
		return true
	}
	p := netip.PrefixFrom(ip, 32)
	if ip.Is6() {
		p, _ = ip.Prefix(j.v6bits)
		if j.overlapsAllow(p) {
			p = netip.PrefixFrom(ip, 128)
		}
	}
	o := Offence{Jail: jl.name, Prefix: p, Addr: ip, Reason: reason, At: j.now(), Policy: jl.policy(), jails: j}
	if !j.sharer.ShareOffence(o) {
		return false
	}
	// Offences of shared jails are tallied here: they have no slot in
	// the local client table.
	jl.untracked.Add(1)
	return true
}
