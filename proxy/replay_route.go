package proxy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"gatehouse/proxy/config"
	"gatehouse/rules"
	"gatehouse/rules/match"
)

// replayProbes are the probe rules of the gateway or of one host.
type replayProbes struct {
	m    *match.ProbeMatcher // nil: none ("probes: off")
	jail string
	// labels names the probes.paths rules ("paths[2]") by their pattern.
	labels map[string]string
}

func newReplayProbes(pc *config.Probes) (*replayProbes, error) {
	if pc.Off {
		return &replayProbes{}, nil
	}
	m, err := match.CompileProbes(match.ProbeConfig{Presets: pc.Presets, Paths: pc.Paths, Exclude: pc.Exclude})
	if err != nil {
		return nil, err
	}
	rp := &replayProbes{m: m, jail: pc.Jail, labels: make(map[string]string, len(pc.Paths))}
	for i, pat := range pc.Paths {
		rp.labels["paths["+strconv.Itoa(i)+"]"] = "paths:" + pat
	}
	return rp, nil
}

// match returns the rule a request is a probe for, named by its text.
func (rp *replayProbes) match(raw string, c match.CanonicalPath) (string, bool) {
	rule, ok := rp.m.MatchRequest(raw, c)
	if !ok {
		return "", false
	}
	if l, ok := rp.labels[rule]; ok {
		return l, true
	}
	return rule, true
}

// replayPolicy is what a host, or one of its routes, does with a request
// once past the probes, in the order of the host's chain: a fixed answer
// (respond), then, after the host's hotlink rules, the rate limits, the
// access list and basic auth.
type replayPolicy struct {
	// label names the host, or the host and the route's paths as written.
	label string
	// host is the configured host's first name: what a client+host limit
	// counts, as the gateway does.
	host    string
	respond *config.Respond
	// limits are the limits.rates the requests take from, in the order
	// written; nil: none.
	limits *replayLimits
	access []config.AccessRule
	// jail receives the offences of access; "": none.
	jail string
	// respondJail receives respond's: the route's own jail only, as in
	// the gateway.
	respondJail string
	// auth covers the paths under basic auth; nil: none.
	auth *match.PrefixSet
}

// denies reports whether the access list refuses ip: the first rule
// that names it decides, as nginx's allow and deny do; no rule, or no
// list: allowed.
func (pol *replayPolicy) denies(ip netip.Addr) bool {
	for _, a := range pol.access {
		if a.All || a.Prefix.Contains(ip) {
			return !a.Allow
		}
	}
	return false
}

// basicAuthPaths compiles the paths a basic_auth block covers; nil for
// none or "off".
func basicAuthPaths(ba *config.BasicAuth) (*match.PrefixSet, error) {
	if ba == nil || ba.Off {
		return nil, nil
	}
	paths := ba.Paths
	if len(paths) == 0 {
		paths = []string{"/"} // middleware.BasicAuthConfig's default
	}
	return match.CompilePrefixes(paths)
}

// hostPolicy compiles hosts[i]'s own policy and its routes'.
func (p *Replay) hostPolicy(cfg *config.File, i int, site *replayHost) error {
	h := &cfg.Hosts[i]
	auth, err := basicAuthPaths(h.BasicAuth)
	if err != nil {
		return fmt.Errorf("hosts[%d].basic_auth.paths: %w", i, err)
	}
	limits, err := p.limitsFor(cfg, h.Limit, nil)
	if err != nil {
		return fmt.Errorf("hosts[%d].limit: %w", i, err)
	}
	site.self = replayPolicy{label: site.name, host: site.name, limits: limits, access: h.Access, jail: h.Jail, auth: auth}
	p.countJail(h.Jail)
	if auth != nil {
		p.countJail(rules.JailAuth)
	}
	if len(h.Routes) == 0 {
		return nil
	}
	paths := make([][]string, len(h.Routes))
	for j, r := range h.Routes {
		paths[j] = r.Paths
	}
	if site.routes, err = match.CompileRoutes(paths); err != nil {
		return fmt.Errorf("hosts[%d].%w", i, err)
	}
	for j := range h.Routes {
		r := &h.Routes[j]
		pol := site.self
		pol.label = site.name + " " + strings.Join(r.Paths, " ")
		pol.respond = r.Respond
		if r.BasicAuth != nil {
			if pol.auth, err = basicAuthPaths(r.BasicAuth); err != nil {
				return fmt.Errorf("hosts[%d].routes[%d].basic_auth.paths: %w", i, j, err)
			}
		}
		if r.Access != nil {
			pol.access = r.Access
		}
		if r.Jail != "" {
			pol.jail = r.Jail
			pol.respondJail = r.Jail
		}
		if r.Limit != nil {
			if pol.limits, err = p.limitsFor(cfg, r.Limit, site.self.limits); err != nil {
				return fmt.Errorf("hosts[%d].routes[%d].limit: %w", i, j, err)
			}
		}
		p.countJail(pol.jail)
		if pol.auth != nil {
			p.countJail(rules.JailAuth)
		}
		site.route = append(site.route, pol)
	}
	return nil
}

// countJail lists jail in the report's offences even when none comes.
func (p *Replay) countJail(jail string) {
	if jail != "" {
		p.rep.Offences[jail] = 0
	}
}

// respond replays a route's fixed answer, which comes first in the
// host's chain. It reports whether the route answered the request.
func (p *Replay) respond(pol *replayPolicy, e *match.LogEntry, line []byte) bool {
	rs := pol.respond
	if rs == nil {
		return false
	}
	p.rep.Responds[pol.label]++
	p.matched("respond "+pol.label, line)
	p.refused(e)
	p.offence(pol.respondJail, e, "respond "+strconv.Itoa(rs.Status))
	return true
}

// policyAfter replays the rate limits, the access list and basic auth,
// which come after the hotlink rules.
func (p *Replay) policyAfter(pol *replayPolicy, e *match.LogEntry, raw string, c match.CanonicalPath, line []byte) {
	if pol.limits != nil && p.limit(pol.limits, pol.host, e, line) {
		return
	}
	if pol.denies(e.IP) {
		p.rep.Access[pol.label]++
		p.matched("access "+pol.label, line)
		p.refused(e)
		p.offence(pol.jail, e, "access denied")
		return
	}
	// The log's 401 is the gateway's answer to a failed login when the
	// path is under basic auth (middleware.BasicAuth): an offence for
	// the auth jail. The log cannot tell a wrong password from a
	// browser's first request without one, which the gateway does not
	// count, so this errs towards bans.
	if e.Status == 401 && pol.auth != nil && pol.auth.CoversRequest(raw, c) {
		p.rep.Auth[pol.label]++
		p.matched("auth "+pol.label, line)
		p.refused(e)
		p.offence(rules.JailAuth, e, "bad credentials")
	}
}
