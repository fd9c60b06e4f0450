package nginx

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/proxy/config/fail2ban"
	"gatehouse/proxy/config/nginx/conf"
)

// jailNames maps fail2ban filters to the gatehouse jail that counts the
// same offences. gatehouse counts in the request path what these filters
// read from nginx's or Apache's logs.
var jailNames = map[string]string{
	"nginx-http-auth":  "auth",
	"apache-auth":      "auth",
	"nginx-botsearch":  "probes",
	"apache-botsearch": "probes",
	"apache-noscript":  "probes",
	"nginx-limit-req":  "limit",
}

// maxBan is gatehouse's longest ban (rules: ten years).
const maxBan = 10 * 365 * 24 * time.Hour

// fail2ban turns the enabled jails of a jail file into gatehouse jails
// and their ignoreip into allow.
func (t *translator) fail2ban(f *fail2ban.JailFile) {
	pos := func(line int, what string) *conf.Directive {
		return &conf.Directive{Name: what, File: f.File, Line: line}
	}
	get := func(s *fail2ban.Section, key string) (string, int, bool) {
		v, line, ok, err := f.Get(s, key)
		if err != nil {
			t.find(pos(line, key), "%v", err)
			return "", line, false
		}
		return v, line, ok
	}
	anyHTTP := false
	for _, s := range f.Sections {
		switch s.Name {
		case "DEFAULT", "INCLUDES", "Init", "Definition":
			continue
		}
		src := pos(s.Line, "["+s.Name+"]")
		on := false
		if v, line, ok := get(s, "enabled"); ok {
			b, err := fail2ban.ParseBool(v)
			if err != nil {
				t.find(pos(line, "enabled"), "%v", err)
				continue
			}
			on = b
		}
		if !on {
			continue
		}
		filter := s.Name
		if v, _, ok := get(s, "filter"); ok && v != "" {
			filter = v
		}
		filter, _, _ = strings.Cut(strings.TrimSpace(filter), "[")
		name := jailNames[strings.TrimSpace(filter)]
		switch {
		case name == "" && t.opts.Fail2banWatch != nil:
			continue // carried as a watch entry, or listed, by watchJails
		case filter == "recidive":
			t.find(src, "recidive: give the jails an increment (bantime.increment) instead; gatehouse keeps each client's ban history")
			continue
		case name == "":
			t.find(src, "filter %s reads logs gatehouse does not write: give --fail2ban the fail2ban directory (with filter.d) to carry it as a watch entry", filter)
			continue
		case findJail(t.out.jails, name) != nil:
			t.find(src, "jail %s already comes from %s", name, from(findJail(t.out.jails, name).src))
			continue
		}
		anyHTTP = true
		j := &jailOut{name: name, src: src, maxretry: 5, findtime: 10 * time.Minute, bantime: 10 * time.Minute}
		if v, line, ok := get(s, "maxretry"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				t.find(pos(line, "maxretry"), "%q is not a number between 1 and 1000", v)
			} else {
				j.maxretry = n
			}
		}
		j.findtime = t.f2bTime(s, "findtime", j.findtime, get, pos)
		j.bantime = t.f2bTime(s, "bantime", j.bantime, get, pos)
		if j.bantime < 0 || j.bantime > maxBan {
			j.bantime = maxBan
			j.notes = append(j.notes, "fail2ban banned for ever (bantime -1) or longer than gatehouse's longest ban, ten years")
		}
		t.increment(s, j, get, pos)
		t.out.jails = append(t.out.jails, j)
		t.ignoreIP(s, get, pos)
		t.banaction(s, get, pos)
		t.mailAction(s, src, get, pos)
		if name == "probes" && !t.anyRefusingRoute() {
			t.find(src, "fail2ban counted scanner requests in nginx's log; gatehouse counts requests to locations that refuse everyone, and this config has none: add probes.presets (common, secrets, vcs and shells are safe on any site) and probes.jail")
		}
		if name == "limit" {
			if len(t.out.rates) == 0 {
				t.find(src, "no limit_req in the nginx config: nothing to count")
				t.out.jails = t.out.jails[:len(t.out.jails)-1]
			} else {
				j.notes = append(j.notes, "every request a limits.rates entry refuses is an offence here, as fail2ban counted nginx's limit_req refusals")
			}
		}
	}
	t.mailNotify(f, pos)
	if d := f.Section("DEFAULT"); d != nil && anyHTTP {
		t.ignoreIP(d, get, pos)
	}
}

type f2bGet func(s *fail2ban.Section, key string) (string, int, bool)

func (t *translator) f2bTime(s *fail2ban.Section, key string, def time.Duration, get f2bGet, pos func(int, string) *conf.Directive) time.Duration {
	v, line, ok := get(s, key)
	if !ok {
		return def
	}
	d, err := fail2ban.ParseTime(v)
	if err != nil {
		t.find(pos(line, key), "%v", err)
		return def
	}
	return d
}

// increment reads bantime.increment and friends. fail2ban's default
// formula bans for bantime × factor × 2^(n-1) on the n-th ban, which is
// gatehouse's increment with factor 2 and a first ban of bantime × factor.
func (t *translator) increment(s *fail2ban.Section, j *jailOut, get f2bGet, pos func(int, string) *conf.Directive) {
	v, line, ok := get(s, "bantime.increment")
	if !ok {
		return
	}
	on, err := fail2ban.ParseBool(v)
	if err != nil {
		t.find(pos(line, "bantime.increment"), "%v", err)
		return
	}
	if !on {
		return
	}
	factor := 1.0
	if v, line, ok := get(s, "bantime.factor"); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			t.find(pos(line, "bantime.factor"), "%q is not a positive number", v)
		} else {
			factor = f
		}
	}
	for _, key := range []string{"bantime.multipliers", "bantime.formula"} {
		if v, line, ok := get(s, key); ok && v != "" {
			t.find(pos(line, key), "gatehouse grows bans by a factor (bantime × 2^(n-1) here), not by %s", key)
		}
	}
	if v, line, ok := get(s, "bantime.overalljails"); ok {
		if b, _ := fail2ban.ParseBool(v); b {
			t.find(pos(line, "bantime.overalljails"), "gatehouse keeps ban history per jail")
		}
	}
	first := time.Duration(float64(j.bantime) * factor)
	if factor != 1 {
		j.notes = append(j.notes, fmt.Sprintf("bantime.factor %v: the first ban lasts bantime × %v", factor, factor))
	}
	j.bantime = min(first, maxBan)
	j.factor = 2
	j.maxtime = t.f2bTime(s, "bantime.maxtime", 0, get, pos)
	if j.maxtime < 0 || j.maxtime > maxBan {
		j.maxtime = maxBan
	}
}

// ignoreIP adds a section's ignoreip addresses to allow.
func (t *translator) ignoreIP(s *fail2ban.Section, get f2bGet, pos func(int, string) *conf.Directive) {
	v, line, ok := get(s, "ignoreip")
	if !ok {
		return
	}
	src := pos(line, "ignoreip")
	for _, a := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\n' || r == '\t' }) {
		p, err := parseCIDR(a)
		if err != nil {
			t.find(src, "%q: gatehouse's allow takes addresses and CIDR prefixes, not host names", a)
			continue
		}
		t.out.allow = appendItem(t.out.allow, p.String(), src)
	}
}

// banaction maps fail2ban's firewall action to firewall.backend.
func (t *translator) banaction(s *fail2ban.Section, get f2bGet, pos func(int, string) *conf.Directive) {
	v, line, ok := get(s, "banaction")
	if !ok || t.out.firewall != nil {
		return
	}
	src := pos(line, "banaction")
	var backend string
	switch {
	case strings.HasPrefix(v, "iptables-ipset"):
		backend = "ipset"
	case strings.HasPrefix(v, "nftables"):
		backend = "nftables"
	case strings.HasPrefix(v, "iptables"):
		backend = "iptables"
	default:
		t.find(src, "%s: gatehouse syncs bans into ipset, nftables or iptables", v)
		return
	}
	fw := &firewallOut{backend: backend, src: src}
	if p, pline, ok := get(s, "port"); ok {
		for _, name := range strings.FieldsFunc(p, func(r rune) bool { return r == ',' || r == ' ' }) {
			switch name {
			case "http":
				fw.ports = append(fw.ports, 80)
			case "https":
				fw.ports = append(fw.ports, 443)
			default:
				n, err := strconv.Atoi(name)
				if err != nil || n < 1 || n > 65535 {
					t.find(pos(pline, "port"), "%q: firewall.ports takes port numbers", name)
					fw.ports = nil
					t.out.firewall = fw
					return
				}
				fw.ports = append(fw.ports, n)
			}
		}
	}
	t.out.firewall = fw
}

func (t *translator) anyRefusingRoute() bool {
	for _, h := range t.out.hosts {
		for _, r := range h.routes {
			if r.refuses {
				return true
			}
		}
	}
	return false
}

// mailActions are fail2ban's actions that mail a ban (jail.conf's
// action_mw, action_mwl and friends, and the mail actions they name).
var mailActions = []string{"action_mw", "action_mwl", "action_cf_mwl", "sendmail", "mail-whois", "mail-buffered", "mail.conf"}

// mailAction records whether an enabled jail mails its bans.
func (t *translator) mailAction(s *fail2ban.Section, src *conf.Directive, get f2bGet, pos func(int, string) *conf.Directive) {
	v, line, ok := t.opts.Fail2ban.Raw(s, "action")
	if !ok {
		return
	}
	for _, a := range mailActions {
		if strings.Contains(v, a) {
			if t.mail == nil {
				t.mail = &mailOut{src: pos(line, "action"), section: s}
			}
			t.mail.jails = append(t.mail.jails, s.Name)
			return
		}
	}
	t.noMail = append(t.noMail, s.Name)
}

// mailNotify carries the mail action over to notify.email: fail2ban's
// destemail and sender map; the transport does not (fail2ban hands mail
// to the local sendmail, gatehouse speaks SMTP with STARTTLS), so the
// SMTP server is written as the local one and listed for the admin.
func (t *translator) mailNotify(f *fail2ban.JailFile, pos func(int, string) *conf.Directive) {
	m := t.mail
	if m == nil {
		return
	}
	m.to, m.from = []string{"root@localhost"}, "root@localhost" // jail.conf's defaults
	if v, line, ok, err := f.Get(m.section, "destemail"); ok && err == nil {
		m.to = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
		m.toSrc = pos(line, "destemail")
	}
	if v, line, ok, err := f.Get(m.section, "sender"); ok && err == nil && !strings.Contains(v, "<") {
		m.from = v
		m.fromSrc = pos(line, "sender")
	}
	t.find(m.src, "fail2ban mailed bans through the local sendmail; gatehouse's notify.email sends over SMTP with STARTTLS to notify.email.smtp, written as localhost:25: set the mail server (and username/password if it needs them)")
	if m.toSrc == nil {
		t.find(m.src, "no destemail: fail2ban's default, root@localhost, is written to notify.email.to")
	}
	if len(t.noMail) > 0 {
		t.find(m.src, "gatehouse mails every ban; fail2ban mailed bans of %s only, not of %s", strings.Join(m.jails, ", "), strings.Join(t.noMail, ", "))
	}
}

// mailOut is notify.email, from the fail2ban jails that mailed bans.
type mailOut struct {
	src     *conf.Directive // the action line
	section *fail2ban.Section
	jails   []string // jails that mailed
	to      []string
	from    string
	toSrc   *conf.Directive
	fromSrc *conf.Directive
}

// HTTPJail reports whether import nginx maps the fail2ban jail d onto
// one of its inline jails (auth, probes, limit) rather than a watch
// entry: the filter reads nginx's or Apache's logs. It is the Skip of
// the fail2ban.Import that fills Options.Fail2banWatch.
func HTTPJail(d fail2ban.WatchDef) bool {
	_, ok := jailNames[d.Filter.Name]
	return ok
}

// watchJails adds fail2ban's other jails, as fail2ban.Import mapped
// them: watch entries, their jails, allow, firewall and mail.
func (t *translator) watchJails(im *fail2ban.Imported) {
	at := func(p fail2ban.Pos, what string) *conf.Directive {
		return &conf.Directive{Name: what, File: p.File, Line: p.Line}
	}
	carried := map[string]bool{}
	for _, j := range im.Jails {
		if other := findJail(t.out.jails, j.Name); other != nil {
			t.find(at(j.Src, "["+j.Name+"]"), "not carried: jail %s already comes from %s", j.Name, from(other.src))
			continue
		}
		carried[j.Name] = true
		out := &jailOut{name: j.Name, src: at(j.Src, "["+j.Name+"]"), maxretry: j.Jail.MaxRetry,
			findtime: j.Jail.FindTime.D(), bantime: j.Jail.BanTime.D(), notes: j.Notes}
		if inc := j.Jail.Increment; inc != nil {
			out.factor, out.maxtime = inc.Factor, inc.Max.D()
		}
		t.out.jails = append(t.out.jails, out)
	}
	for _, w := range im.Watches {
		if carried[w.Watch.Jail] {
			t.out.watches = append(t.out.watches, w)
		}
	}
	for _, a := range im.Allow {
		t.out.allow = appendItem(t.out.allow, a.Prefix.String(), at(a.Src, "ignoreip"))
	}
	if f := im.Firewall; f != nil {
		switch fw := t.out.firewall; {
		case fw == nil:
			t.out.firewall = &firewallOut{backend: f.Backend, ports: f.Ports, src: at(f.Src, "banaction")}
		case fw.backend != f.Backend:
			t.find(at(f.Src, "banaction"), "%s is carried as firewall backend %s (%s): gatehouse has one kernel backend", f.Backend, fw.backend, from(fw.src))
		case len(fw.ports) == 0 || len(f.Ports) == 0:
			if len(fw.ports) > 0 {
				t.find(at(f.Src, "banaction"), "a jail dropped every port of a banned address: firewall.ports is left out, so bans of the HTTP jails drop every port too")
			}
			fw.ports = nil
		default:
			for _, p := range f.Ports {
				if !slices.Contains(fw.ports, p) {
					fw.ports = append(fw.ports, p)
				}
			}
			t.find(at(f.Src, "banaction"), "firewall.ports is shared by every jail: bans drop ports %v, the HTTP jails' and the watched services' alike", fw.ports)
		}
	}
	if m := im.Mail; m != nil {
		if t.mail == nil {
			t.mail = &mailOut{src: at(m.Src, "action"), to: m.To, from: m.From}
			if m.ToSrc != (fail2ban.Pos{}) {
				t.mail.toSrc = at(m.ToSrc, "destemail")
			}
			if m.FromSrc != (fail2ban.Pos{}) {
				t.mail.fromSrc = at(m.FromSrc, "sender")
			}
		}
		t.mail.jails = append(t.mail.jails, m.Jails...)
	}
	for _, f := range im.NotCarried {
		t.find(at(f.Pos, "fail2ban"), "%s", f.Msg)
	}
}
