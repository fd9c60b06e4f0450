package config

import (
	"errors"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gatehouse/rules"
	"gatehouse/rules/match"
)

// jails checks the jails' limits through rules.NewDryRun, which applies
// the same checks as the live jails, and that every jail a rule reports
// to exists.
func (v *validator) jails(f *File) {
	if f.IPv6Prefix < 32 || f.IPv6Prefix > 128 {
		v.add("ipv6_prefix", "%d is not between 32 and 128", f.IPv6Prefix)
	}
	for _, name := range slices.Sorted(maps.Keys(f.Jails)) {
		field := mapEntry("jails", name)
		if j := f.Jails[name]; j.Rate < 0 || j.Burst < 0 || (j.Burst > 0 && j.Rate == 0) {
			v.add(field, "rate and burst must not be negative, and burst needs a rate")
		}
		// Escalate is checked here, field by field, so each problem
		// names its own line; the dry run checks the rest.
		jc := JailConfig(f.Jails[name])
		jc.Escalate = nil
		if _, err := rules.NewDryRun(rules.JailsConfig{Jails: map[string]rules.JailConfig{name: jc}}); err != nil {
			v.add(field, "%v", unwrapCompile(err))
		}
		if e := f.Jails[name].Escalate; e != nil {
			v.escalate(join(field, "escalate"), e, f.IPv6Prefix)
		}
	}
	ref := func(field, jail string) {
		if _, ok := f.Jails[jail]; !ok && jail != "" {
			v.add(field, "jail %q is not defined under jails", jail)
		}
	}
	// The default probes jail may be left undefined (offences counted,
	// nobody banned); a jail named in the file must exist, so a typo never
	// silently disables banning.
	if _, written := v.lines["probes.jail"]; f.Probes != nil && written {
		ref("probes.jail", f.Probes.Jail)
	}
	for i, h := range f.Hosts {
		if h.Hotlink != nil {
			ref("hosts["+strconv.Itoa(i)+"].hotlink.jail", h.Hotlink.Jail)
		}
		if hp := h.Probes; hp != nil && !hp.Off {
			if _, written := v.lines["hosts["+strconv.Itoa(i)+"].probes.jail"]; written {
				ref("hosts["+strconv.Itoa(i)+"].probes.jail", hp.Jail)
			}
		}
	}
}

// escalate checks a jail's escalate block at field f, defaults applied,
// with the limits rules.NewJails enforces: a network is shorter than a
// client and needs at least two of them.
func (v *validator) escalate(f string, e *Escalate, ipv6Prefix int) {
	if e.IPv4 < 8 || e.IPv4 > 31 {
		v.add(join(f, "ipv4"), "%d is not between 8 and 31 (an IPv4 network shorter than one address)", e.IPv4)
	}
	if e.IPv6 < 16 || e.IPv6 > 63 || e.IPv6 >= ipv6Prefix {
		v.add(join(f, "ipv6"), "%d is not between 16 and 63 and shorter than ipv6_prefix (%d), by which IPv6 clients are banned", e.IPv6, ipv6Prefix)
	}
	if e.After < 2 || e.After > 1000 {
		v.add(join(f, "after"), "%d is not between 2 and 1000", e.After)
	}
}

// JailConfig maps a config jail to the rules package's.
func JailConfig(j Jail) rules.JailConfig {
	c := rules.JailConfig{MaxRetry: j.MaxRetry, FindTime: j.FindTime.D(), BanTime: j.BanTime.D(), Forget: j.Forget.D()}
	if j.Increment != nil {
		c.Increment = &rules.Increment{Factor: j.Increment.Factor, Max: j.Increment.Max.D()}
	}
	if e := j.Escalate; e != nil {
		c.Escalate = &rules.Escalate{IPv4: e.IPv4, IPv6: e.IPv6, After: e.After}
	}
	return c
}

// unwrapCompile drops the "compile …:" context of a rules error: the
// config error already names the field.
func unwrapCompile(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

// probes compiles each pattern on its own, so an error names its entry.
func (v *validator) probes(p *Probes) { v.probesAt("probes", p) }

// probesAt checks a probes block at field f: the global one or a host's.
func (v *validator) probesAt(f string, p *Probes) {
	presets := match.PresetNames()
	for i, name := range p.Presets {
		if !slices.Contains(presets, name) {
			v.add(f+".presets["+strconv.Itoa(i)+"]", "%q is not one of %s", name, strings.Join(presets, ", "))
		}
	}
	for i, pat := range p.Paths {
		if _, err := match.CompileProbes(match.ProbeConfig{Paths: []string{pat}}); err != nil {
			v.add(f+".paths["+strconv.Itoa(i)+"]", "%v", unwrapCompile(err))
		}
	}
	for i, pat := range p.Exclude {
		if _, err := match.CompileProbes(match.ProbeConfig{Exclude: []string{pat}}); err != nil {
			v.add(f+".exclude["+strconv.Itoa(i)+"]", "%v", unwrapCompile(err))
		}
	}
	if p.Status != 403 && p.Status != 404 {
		v.add(f+".status", "%d is not 403 or 404", p.Status)
	}
}

// firewallBackends are the values of firewall.backend.
var firewallBackends = []string{"ipset", "nftables", "iptables", "auto", "none"}

// state checks state_dir, firewall and notify.
func (v *validator) state(f *File) {
	if d := f.StateDir; d != "" {
		if !filepath.IsAbs(d) {
			v.add("state_dir", "%q is not an absolute path", d)
		} else if fi, err := os.Stat(d); err == nil && !fi.IsDir() {
			v.add("state_dir", "%s is not a directory", d)
		} else if err != nil {
			if _, perr := os.Stat(filepath.Dir(d)); perr != nil {
				v.add("state_dir", "neither %s nor its parent exists", d)
			}
		}
	}
	if !slices.Contains(firewallBackends, f.Firewall.Backend) {
		v.add("firewall.backend", "%q is not one of %s", f.Firewall.Backend, strings.Join(firewallBackends, ", "))
	}
	for i, p := range f.Firewall.Ports {
		if p < 1 || p > 65535 {
			v.add("firewall.ports["+strconv.Itoa(i)+"]", "%d is not a port (1-65535)", p)
		}
	}
	n := f.Notify
	if n == nil {
		return
	}
	if n.Webhook == "" && n.Email == nil {
		v.add("notify", "give a webhook, an email, or both")
	}
	if n.Webhook != "" {
		if u, err := url.Parse(n.Webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("notify.webhook", "%q is not an absolute http(s) URL", n.Webhook)
		}
	}
	if e := n.Email; e != nil {
		if _, _, err := net.SplitHostPort(e.SMTP); err != nil {
			v.add("notify.email.smtp", "%q is not host:port", e.SMTP)
		}
		if !strings.Contains(e.From, "@") {
			v.add("notify.email.from", "%q is not an e-mail address", e.From)
		}
		if len(e.To) == 0 {
			v.add("notify.email.to", "at least one recipient is required")
		}
		for i, to := range e.To {
			if !strings.Contains(to, "@") {
				v.add("notify.email.to["+strconv.Itoa(i)+"]", "%q is not an e-mail address", to)
			}
		}
		if e.Username.IsZero() != e.Password.IsZero() {
			v.add("notify.email", "give both username and password, or neither")
		}
	}
}
