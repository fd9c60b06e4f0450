package proxy

import (
	"fmt"
	"strings"

	"gatehouse/middleware"
	"gatehouse/proxy/config"
	"gatehouse/rules"
	"gatehouse/rules/match"
)

// replayLimit is one named rate limit (limits.rates.NAME): the gateway's
// own limiter, counted with the log's times.
type replayLimit struct {
	name string
	l    *middleware.Limiter
	jail string
}

// replayLimits are the limits of a host or route, in the order written;
// keys is the scratch space for their keys.
type replayLimits struct {
	ls   []*middleware.Limiter
	of   []*replayLimit
	keys []rules.TableKey
	// label names them in ReplayReport.Delayed: "login", "login+api".
	label string
}

// limitsFor returns the limits names picks: nil for none or "off",
// inherited when names is nil. A limit is one table wherever it is
// used, as an nginx zone is shared by the locations naming it.
func (p *Replay) limitsFor(cfg *config.File, names config.Names, inherited *replayLimits) (*replayLimits, error) {
	switch {
	case names == nil:
		return inherited, nil
	case names.Off() || len(names) == 0:
		return nil, nil
	}
	out := &replayLimits{keys: make([]rules.TableKey, len(names)), label: strings.Join(names, "+")}
	for _, name := range names {
		rl := p.limits[name]
		if rl == nil {
			rc, ok := cfg.Limits.Rates[name]
			if !ok {
				return nil, fmt.Errorf("rate limit %q is not defined under limits.rates", name)
			}
			window, quota := rc.Rate.Window()
			l, err := middleware.NewLimiter(middleware.LimitConfig{
				Name: name, Rate: rc.Rate.PerSecond, Window: window, Quota: quota, Burst: rc.Burst,
				Delay: rc.Delay.N, NoDelay: rc.Delay.NoDelay, Key: rc.Key, Status: rc.Status, Jail: rc.Jail,
				Allow: prefixes(cfg.Allow), IPv6Prefix: cfg.IPv6Prefix, Capacity: cfg.Limits.TrackedClients,
			}, nil)
			if err != nil {
				return nil, err
			}
			rl = &replayLimit{name: name, l: l, jail: rc.Jail}
			p.limits[name] = rl
			p.rep.Limits[name] = 0 // listed, refusing or not
			p.countJail(rc.Jail)
		}
		out.ls = append(out.ls, rl.l)
		out.of = append(out.of, rl)
	}
	return out, nil
}

// limit counts a request against ls as nginx does for a location with
// several limit_req (middleware.TakeAll): the first limit that refuses
// refuses it, an offence for that limit's jail. A request that passes
// late (over the rate, within the burst) is counted as delayed. A shared
// limit is replayed as one node's, and a header key as the client's: the
// log has neither the fleet nor the request's headers.
// host is the configured host's first name, which a client+host key
// counts as the gateway does (one bucket for every name of the host).
func (p *Replay) limit(ls *replayLimits, host string, e *match.LogEntry, line []byte) bool {
	if p.allowed(e.IP) {
		return false
	}
	for i, l := range ls.ls {
		ls.keys[i] = l.Key(e.IP, host, "")
	}
	refused, wait := middleware.TakeAll(ls.ls, ls.keys, e.Time)
	if refused < 0 {
		if wait > 0 {
			p.rep.Delayed[ls.label]++
		}
		return false
	}
	rl := ls.of[refused]
	p.rep.Limits[rl.name]++
	p.matched("limit "+rl.name, line)
	p.refused(e)
	p.offence(rl.jail, e, "limit")
	return true
}
