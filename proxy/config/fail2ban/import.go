package fail2ban

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/proxy/config"
	"gatehouse/rules/watch/filter"
)

// MaxBan is the longest ban an import writes: gatehouse's longest,
// ten years. fail2ban's permanent ban (bantime -1) becomes this.
const MaxBan = 10 * 365 * 24 * time.Hour

// fail2ban's own defaults (fail2ban/server/jail.py and filter.py), for
// a jail whose files set none.
const (
	defaultMaxRetry = 3
	defaultFindTime = 10 * time.Minute
	defaultBanTime  = 10 * time.Minute
)

// ImportConfig tunes Import.
type ImportConfig struct {
	// Dir is the configuration directory as the operator names it
	// ("/etc/fail2ban"): findings and comments name files under it.
	// Empty: file names relative to the directory.
	Dir string
	// Skip, when not nil, leaves out the jails it returns true for,
	// without a finding: a caller that maps them itself (import nginx
	// maps the HTTP jails onto its inline jails).
	Skip func(WatchDef) bool
}

// Imported is a fail2ban configuration mapped onto gatehouse's config:
// each enabled jail a watch entry and a jail of the same name, with what
// its ban did (firewall, mail) and what it never counts (allow).
type Imported struct {
	// Dir is ImportConfig.Dir.
	Dir string
	// Skipped are the enabled jails ImportConfig.Skip took, for the
	// caller to carry (or list as not carried).
	Skipped []WatchDef
	// selfNoted and allowNoted: the findings on ignoreself and on
	// ignoreip's scope were made.
	selfNoted, allowNoted bool
	// Watches and Jails are the carried jails, in the order fail2ban's
	// files declare them.
	Watches []ImportedWatch
	Jails   []ImportedJail
	// Allow are the ignoreip prefixes of the carried jails, each once.
	Allow []Allowed
	// Firewall is the kernel enforcement the jails' ban actions asked
	// for; nil when none did.
	Firewall *ImportedFirewall
	// Mail is notify.email, from the jails whose actions mailed bans;
	// nil when none did.
	Mail *ImportedMail
	// NotCarried lists what was left out or changed, sorted by file and
	// line, with paths under Dir.
	NotCarried []Finding
}

// ImportedWatch is one watch entry and where its jail was declared.
type ImportedWatch struct {
	Watch config.Watch
	Src   Pos
	// Notes explain the mapping (written as comments).
	Notes []string
}

// ImportedJail is one counting jail.
type ImportedJail struct {
	Name string
	Jail config.Jail
	Src  Pos
	// Notes explain the mapping (written as comments).
	Notes []string
}

// Allowed is one ignoreip entry carried to allow.
type Allowed struct {
	Prefix netip.Prefix
	Src    Pos
}

// ImportedFirewall is firewall.backend and firewall.ports. Ports nil
// means every port (some jail dropped every port).
type ImportedFirewall struct {
	Backend string
	Ports   []int
	Src     Pos
}

// ImportedMail is notify.email from fail2ban's mail actions.
type ImportedMail struct {
	To      []string
	From    string
	Jails   []string // the jails that mailed their bans
	Src     Pos      // the first mailing action
	ToSrc   Pos      // destemail; zero when fail2ban's default was used
	FromSrc Pos      // sender; zero when fail2ban's default was used
}

// Import reads the fail2ban configuration directory fsys (see
// ReadJails) and maps every enabled jail onto a watch entry and a jail.
// A jail's filter becomes the built-in filter of the same name when
// gatehouse has one and the jail uses fail2ban's filter file as shipped
// (no filter.d/NAME.local nor NAME.d/, no failregex, ignoreregex,
// prefregex or datepattern of its own, no argument but mode); any other
// becomes its regexes as fail2ban resolves them, which must compile with
// filter.Compile or the jail is not carried. Everything that is not
// carried, or carried with a changed meaning, is in NotCarried; nothing
// is dropped silently. An error means the directory cannot be read as
// fail2ban would read it.
func Import(fsys fs.FS, cfg ImportConfig) (*Imported, error) {
	defs, findings, err := ReadJails(fsys)
	if err != nil {
		return nil, err
	}
	im := &Imported{Dir: cfg.Dir}
	ports := map[string][]int{} // jail → ports its ban dropped; nil: all
	var mailless []string
	for _, d := range defs {
		if cfg.Skip != nil && cfg.Skip(d) {
			im.Skipped = append(im.Skipped, d)
			continue
		}
		if !im.jail(fsys, d, ports, &mailless, &findings) {
			continue
		}
	}
	im.firewallPorts(ports, defs, &findings)
	if m := im.Mail; m != nil {
		findings = append(findings, Finding{m.Src, "fail2ban mailed bans through the local sendmail; gatehouse's notify.email sends over SMTP with STARTTLS to notify.email.smtp, written as localhost:25: set the mail server (and username/password if it needs them)"})
		if m.ToSrc == (Pos{}) {
			findings = append(findings, Finding{m.Src, "no destemail: fail2ban's default, root@localhost, is written to notify.email.to"})
		}
		if len(mailless) > 0 {
			findings = append(findings, Finding{m.Src, fmt.Sprintf("gatehouse mails every ban; fail2ban mailed bans of %s only, not of %s", strings.Join(m.Jails, ", "), strings.Join(mailless, ", "))})
		}
	}
	for i := range findings {
		findings[i].Pos = im.abs(findings[i].Pos)
	}
	slices.SortStableFunc(findings, func(a, b Finding) int {
		if c := strings.Compare(a.Pos.File, b.Pos.File); c != 0 {
			return c
		}
		return a.Pos.Line - b.Pos.Line
	})
	im.NotCarried = slices.Compact(findings)
	for i := range im.Watches {
		im.Watches[i].Src = im.abs(im.Watches[i].Src)
	}
	for i := range im.Jails {
		im.Jails[i].Src = im.abs(im.Jails[i].Src)
	}
	for i := range im.Allow {
		im.Allow[i].Src = im.abs(im.Allow[i].Src)
	}
	if f := im.Firewall; f != nil {
		f.Src = im.abs(f.Src)
	}
	if m := im.Mail; m != nil {
		m.Src, m.ToSrc, m.FromSrc = im.abs(m.Src), im.abs(m.ToSrc), im.abs(m.FromSrc)
	}
	return im, nil
}

func (im *Imported) abs(p Pos) Pos {
	if p.File != "" && im.Dir != "" && !path.IsAbs(p.File) {
		p.File = path.Join(im.Dir, p.File)
	}
	return p
}

// watchName is what config accepts as a watch entry's name.
var watchName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// jail maps one enabled jail; false when it is not carried.
func (im *Imported) jail(fsys fs.FS, d WatchDef, ports map[string][]int, mailless *[]string, findings *[]Finding) bool {
	src := d.Src["enabled"]
	not := func(p Pos, format string, args ...any) {
		if p == (Pos{}) {
			p = src
		}
		*findings = append(*findings, Finding{p, fmt.Sprintf("jail %s: ", d.Name) + fmt.Sprintf(format, args...)})
	}
	if !watchName.MatchString(d.Name) {
		not(src, "not carried: a watch name takes letters, digits, '.', '_' and '-' (at most 64)")
		return false
	}
	w := ImportedWatch{Watch: config.Watch{Name: d.Name, Jail: d.Name}, Src: src}
	if !im.filter(fsys, d, &w, not) {
		return false
	}
	if !im.source(d, &w, not) {
		return false
	}
	j := ImportedJail{Name: d.Name, Src: src}
	j.Jail.MaxRetry = d.MaxRetry
	if j.Jail.MaxRetry == 0 {
		j.Jail.MaxRetry = defaultMaxRetry
		j.Notes = append(j.Notes, "no maxretry: fail2ban's default, 3")
	}
	if j.Jail.MaxRetry > 1000 {
		not(d.Src["maxretry"], "not carried: maxretry %d is more than gatehouse's 1000", d.MaxRetry)
		return false
	}
	find, ban := d.FindTime, d.BanTime
	if _, ok := d.Src["findtime"]; !ok {
		find = defaultFindTime
	}
	if _, ok := d.Src["bantime"]; !ok {
		ban = defaultBanTime
	}
	if find <= 0 {
		not(d.Src["findtime"], "not carried: findtime %v is not a positive time", d.FindTime)
		return false
	}
	if ban < 0 || ban > MaxBan {
		ban = MaxBan
		j.Notes = append(j.Notes, "fail2ban banned for ever (bantime -1) or longer than ten years: gatehouse's longest ban, ten years")
	}
	if ban == 0 {
		not(d.Src["bantime"], "not carried: bantime 0 bans nobody")
		return false
	}
	j.Jail.FindTime, j.Jail.BanTime = config.Duration(find), config.Duration(ban)
	im.increment(d, &j, not)
	if self, err := ParseBool(d.Settings["ignoreself"]); (err != nil || self) && !im.selfNoted {
		// fail2ban's default is true; said once, not per jail.
		im.selfNoted = true
		not(d.Src["ignoreself"], "ignoreself is carried in part: gatehouse never counts loopback and link-local addresses; add this host's own public addresses to allow")
	}
	for _, a := range d.IgnoreIP {
		p, err := parsePrefix(a)
		if err != nil {
			not(d.Src["ignoreip"], "ignoreip %q is not carried: allow takes addresses and CIDR prefixes, not host names", a)
			continue
		}
		if !slices.ContainsFunc(im.Allow, func(x Allowed) bool { return x.Prefix == p }) {
			im.Allow = append(im.Allow, Allowed{p, d.Src["ignoreip"]})
			if !im.allowNoted {
				// allow is global: a jail's own ignoreip now covers
				// every jail, HTTP ones included.
				im.allowNoted = true
				not(d.Src["ignoreip"], "ignoreip is carried to allow, which no jail counts nor bans (every jail, the HTTP ones too): check that each address belongs there")
			}
		}
	}
	mailed := im.actions(d, ports, not)
	if !mailed {
		*mailless = append(*mailless, d.Name)
	}
	im.Watches = append(im.Watches, w)
	im.Jails = append(im.Jails, j)
	return true
}

// filter sets w's filter; false when the jail is not carried.
func (im *Imported) filter(fsys fs.FS, d WatchDef, w *ImportedWatch, not func(Pos, string, ...any)) bool {
	f := d.Filter
	if f.Name == "recidive" {
		// fail2ban's recidive reads fail2ban's own log, which stops being
		// written; gatehouse's reads gatehouse's ban lines.
		w.Watch.Filter = &config.WatchFilter{Builtin: "recidive"}
		w.Watch.Journal = &config.WatchJournal{Units: []string{"gatehouse.service"}}
		w.Notes = append(w.Notes, "recidive over gatehouse's own ban lines (the journal of gatehouse.service)")
		if len(d.Files) > 0 {
			not(d.Src["logpath"], "logpath %s is not carried: recidive reads gatehouse's ban lines from the journal of gatehouse.service, not fail2ban's log (write watch files if gatehouse logs to a file)", strings.Join(d.Files, " "))
		}
		return true
	}
	if why := builtinMismatch(fsys, d); why == "" {
		w.Watch.Filter = &config.WatchFilter{Builtin: f.Name}
		if f.Mode != "" {
			w.Watch.Mode = f.Mode
		}
		w.Notes = append(w.Notes, fmt.Sprintf("fail2ban's %s filter as shipped: gatehouse's built-in %s", f.Name, f.Name))
		return true
	} else if slices.Contains(filter.Builtins(), f.Name) {
		w.Notes = append(w.Notes, fmt.Sprintf("filter %s as this directory resolves it, not the built-in one: %s", f.Name, why))
	}
	if f.MaxLines > 1 {
		not(f.Src["maxlines"], "not carried: filter %s reads %d lines at once (maxlines); gatehouse's filters read one", f.Name, f.MaxLines)
		return false
	}
	wf := &config.WatchFilter{FailRegex: f.FailRegex, IgnoreRegex: f.IgnoreRegex, PrefRegex: f.PrefRegex, DatePattern: f.DatePattern}
	if _, err := filter.Compile(filter.Config{FailRegex: wf.FailRegex, IgnoreRegex: wf.IgnoreRegex, PrefRegex: wf.PrefRegex, DatePattern: wf.DatePattern}); err != nil {
		p := d.Src["filter"]
		var re *filter.RegexError
		if errors.As(err, &re) {
			key := re.Field
			if key != "prefregex" {
				key += "[" + strconv.Itoa(re.Index) + "]"
			}
			if fp, ok := f.Src[key]; ok {
				p = fp
			}
			err = re.Err
		} else if fp, ok := f.Src["datepattern"]; ok && strings.Contains(err.Error(), "date") {
			p = fp
		}
		not(p, "not carried: filter %s: %v", f.Name, err)
		return false
	}
	w.Watch.Filter = wf
	return true
}

// builtinMismatch says why the jail's filter is not the built-in filter
// of its name as shipped; "" when it is.
func builtinMismatch(fsys fs.FS, d WatchDef) string {
	f := d.Filter
	if !slices.Contains(filter.Builtins(), f.Name) {
		return "no built-in filter of that name"
	}
	for k := range d.Spec.Args {
		if k != "mode" {
			return "the jail passes " + k + " to it"
		}
	}
	for _, name := range []string{"filter.d/" + f.Name + ".local"} {
		if st, err := fs.Stat(fsys, name); err == nil && st.Mode().IsRegular() {
			return name + " changes it"
		}
	}
	if m, _ := fs.Glob(fsys, "filter.d/"+f.Name+".d/*"); len(m) > 0 { // only a malformed pattern fails
		return "filter.d/" + f.Name + ".d/ changes it"
	}
	for k, p := range f.Src {
		if k != "mode" && !strings.HasPrefix(p.File, "filter.d/") {
			return fmt.Sprintf("the jail sets %s (%s)", strings.SplitN(k, "[", 2)[0], p)
		}
	}
	if _, err := filter.Builtin(f.Name, f.Mode); err != nil {
		return err.Error()
	}
	return ""
}

// source sets w's files or journal; false when the jail is not carried.
func (im *Imported) source(d WatchDef, w *ImportedWatch, not func(Pos, string, ...any)) bool {
	if w.Watch.Journal != nil { // recidive: set with its filter
		return true
	}
	if !d.Journal {
		for _, f := range d.Files {
			if !path.IsAbs(f) {
				not(d.Src["logpath"], "not carried: logpath %q is not an absolute path", f)
				return false
			}
		}
		w.Watch.Files = d.Files
		return true
	}
	if b := w.Watch.Filter; b != nil && b.Builtin != "" {
		// Debian's own filter: its journalmatch is the one the built-in
		// filter knows, by unit (fail2ban's _COMM=sshd has no equal).
		w.Watch.Journal = &config.WatchJournal{}
		units, _ := filter.JournalMatch(b.Builtin)
		w.Notes = append(w.Notes, "journal: the built-in filter's units ("+strings.Join(units, ", ")+")")
		return true
	}
	j := &config.WatchJournal{}
	for _, line := range d.Filter.JournalMatch {
		for alt := range strings.SplitSeq(line, "+") {
			terms := strings.Fields(alt)
			// Terms of one alternative must all hold: when a unit is
			// among them, the unit alone is carried (narrower than "any
			// of", and journald sets it); an identifier alone could be
			// forged by any local user.
			hasUnit := slices.ContainsFunc(terms, func(t string) bool { return strings.HasPrefix(t, "_SYSTEMD_UNIT=") })
			var carried []string
			for _, t := range terms {
				k, v, _ := strings.Cut(t, "=")
				if hasUnit && k != "_SYSTEMD_UNIT" {
					continue
				}
				switch k {
				case "_SYSTEMD_UNIT":
					if !slices.Contains(j.Units, v) {
						j.Units = append(j.Units, v)
					}
					carried = append(carried, t)
				case "SYSLOG_IDENTIFIER":
					if !slices.Contains(j.Identifiers, v) {
						j.Identifiers = append(j.Identifiers, v)
					}
					carried = append(carried, t)
				}
			}
			switch {
			case len(carried) == 0:
				not(d.Filter.Src["journalmatch"], "journalmatch %q is not carried: gatehouse selects journal entries by _SYSTEMD_UNIT and SYSLOG_IDENTIFIER only", strings.TrimSpace(alt))
			case hasUnit && len(carried) < len(terms):
				not(d.Filter.Src["journalmatch"], "journalmatch %q is carried as %s: gatehouse selects by unit alone", strings.TrimSpace(alt), strings.Join(carried, ", "))
			case len(carried) < len(terms) || len(carried) > 1:
				not(d.Filter.Src["journalmatch"], "journalmatch %q is carried as any of %s: gatehouse selects by unit or identifier, each alone", strings.TrimSpace(alt), strings.Join(carried, ", "))
			}
			if !hasUnit && len(carried) > 0 {
				not(d.Filter.Src["journalmatch"], "journalmatch %q selects by SYSLOG_IDENTIFIER, which any local user can log under (logger -t): prefer the service's unit", strings.TrimSpace(alt))
			}
		}
	}
	if len(j.Units) == 0 && len(j.Identifiers) == 0 {
		not(d.Src["backend"], "not carried: backend %s and filter %s selects no unit nor identifier gatehouse can read", d.Backend, d.Filter.Name)
		return false
	}
	w.Watch.Journal = j
	return true
}

// increment reads bantime.increment and friends. fail2ban's default
// formula bans for bantime × factor × 2^(n-1) on the n-th ban, which is
// gatehouse's increment with factor 2 and a first ban of bantime × factor.
func (im *Imported) increment(d WatchDef, j *ImportedJail, not func(Pos, string, ...any)) {
	v, ok := d.Settings["bantime.increment"]
	if !ok {
		return
	}
	on, err := ParseBool(v)
	if err != nil {
		not(d.Src["bantime.increment"], "bantime.increment: %v", err)
		return
	}
	if !on {
		return
	}
	factor := 1.0
	if v, ok := d.Settings["bantime.factor"]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			not(d.Src["bantime.factor"], "bantime.factor %q is not a positive number: 1 is used", v)
		} else {
			factor = f
		}
	}
	for _, key := range []string{"bantime.multipliers", "bantime.formula"} {
		if v := d.Settings[key]; v != "" {
			not(d.Src[key], "%s is not carried: gatehouse grows bans by a factor (bantime × 2^(n-1) here)", key)
		}
	}
	if v, ok := d.Settings["bantime.overalljails"]; ok {
		if b, _ := ParseBool(v); b {
			not(d.Src["bantime.overalljails"], "bantime.overalljails is not carried: gatehouse keeps ban history per jail")
		}
	}
	if v := d.Settings["bantime.rndtime"]; v != "" {
		not(d.Src["bantime.rndtime"], "bantime.rndtime is not carried: gatehouse's bans last exactly their time")
	}
	first := min(time.Duration(float64(j.Jail.BanTime.D())*factor), MaxBan)
	if factor != 1 {
		j.Notes = append(j.Notes, fmt.Sprintf("bantime.factor %v: the first ban lasts bantime × %v", factor, factor))
	}
	inc := &config.Increment{Factor: 2}
	if v, ok := d.Settings["bantime.maxtime"]; ok && v != "" {
		mt, err := ParseTime(v)
		switch {
		case err != nil:
			not(d.Src["bantime.maxtime"], "bantime.maxtime: %v", err)
		case mt < 0 || mt > MaxBan:
			inc.Max = config.Duration(MaxBan)
		default:
			inc.Max = config.Duration(mt)
		}
	}
	if inc.Max > 0 && config.Duration(first) > inc.Max {
		// fail2ban caps every ban at maxtime, the first too.
		first = inc.Max.D()
		j.Notes = append(j.Notes, "the first ban is capped at bantime.maxtime, as fail2ban caps every ban")
	}
	j.Jail.BanTime = config.Duration(first)
	j.Jail.Increment = inc
}

// serviceNames are the /etc/services names fail2ban's jail.conf uses in
// port = …, with their TCP ports.
var serviceNames = map[string][]int{
	"ssh": {22}, "ftp": {21}, "ftp-data": {20}, "ftps": {990}, "ftps-data": {989},
	"http": {80}, "https": {443}, "smtp": {25}, "submission": {587}, "submissions": {465}, "smtps": {465}, "465": {465},
	"imap": {143}, "imap2": {143}, "imap3": {220}, "imaps": {993}, "pop3": {110}, "pop3s": {995},
	"sieve": {4190}, "mysql": {3306}, "postgresql": {5432}, "ldap": {389}, "ldaps": {636},
	"domain": {53}, "telnet": {23}, "rsync": {873}, "openvpn": {1194}, "xmpp-client": {5222},
}

// portList reads fail2ban's port option: names, numbers and first:last
// ranges; all reports a range that covers every port.
func portList(s string) (ports []int, all bool, err error) {
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if a, b, ok := strings.Cut(p, ":"); ok {
			lo, e1 := strconv.Atoi(a)
			hi, e2 := strconv.Atoi(b)
			if e1 != nil || e2 != nil || lo < 0 || hi > 65535 || lo > hi {
				return nil, false, fmt.Errorf("%q is not a port range", p)
			}
			if lo <= 1 && hi >= 65535 {
				return nil, true, nil
			}
			if hi-lo > 64 {
				return nil, false, fmt.Errorf("range %s: firewall.ports lists ports one by one", p)
			}
			for n := max(lo, 1); n <= hi; n++ {
				ports = append(ports, n)
			}
			continue
		}
		if n, err := strconv.Atoi(p); err == nil && n >= 1 && n <= 65535 {
			ports = append(ports, n)
			continue
		}
		named, ok := serviceNames[strings.ToLower(p)]
		if !ok {
			return nil, false, fmt.Errorf("port %q is not a number nor a service name gatehouse knows", p)
		}
		ports = append(ports, named...)
	}
	return ports, false, nil
}

// firewallActions maps fail2ban ban actions to firewall.backend, by the
// start of the action's name.
var firewallActions = []struct{ prefix, backend string }{
	{"iptables-ipset", "ipset"},
	{"nftables", "nftables"},
	{"iptables", "iptables"},
}

// actions maps the jail's actions to firewall and notify.email, and
// reports whether one mailed its bans.
func (im *Imported) actions(d WatchDef, ports map[string][]int, not func(Pos, string, ...any)) (mailed bool) {
	p := d.Src["action"]
	for line := range strings.SplitSeq(d.Settings["action"], "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		spec, err := ParseFilterSpec(line)
		if err != nil {
			not(p, "action %q is not carried: %v", line, err)
			continue
		}
		name := spec.Name
		backend := ""
		for _, fa := range firewallActions {
			if strings.HasPrefix(name, fa.prefix) {
				backend = fa.backend
				break
			}
		}
		switch {
		case backend != "":
			im.banAction(d, spec, backend, ports, not)
		case strings.Contains(name, "mail"):
			mailed = true
			im.mail(d)
		default:
			not(p, "action %s is not carried: gatehouse bans in its own kernel sets (firewall) and notifies by mail or webhook (notify)", name)
		}
	}
	return mailed
}

func (im *Imported) banAction(d WatchDef, spec FilterSpec, backend string, ports map[string][]int, not func(Pos, string, ...any)) {
	p := d.Src["action"]
	if bp, ok := d.Src["banaction"]; ok && strings.HasPrefix(d.Settings["banaction"], spec.Name) {
		p = bp
	}
	if im.Firewall == nil {
		im.Firewall = &ImportedFirewall{Backend: backend, Src: p}
	} else if im.Firewall.Backend != backend {
		not(p, "action %s is carried as firewall backend %s (%s): gatehouse has one kernel backend", spec.Name, im.Firewall.Backend, im.Firewall.Src)
	}
	if proto := spec.Args["protocol"]; proto != "" && proto != "tcp" {
		not(p, "action %s: protocol %s is not carried: firewall.ports are TCP ports (with no ports every packet is dropped)", spec.Name, proto)
	}
	if strings.Contains(spec.Name, "allports") || spec.Args["type"] == "allports" {
		ports[d.Name] = nil
		return
	}
	ps, all, err := portList(spec.Args["port"])
	if err != nil {
		not(d.Src["port"], "%v: every port of a banned address is dropped", err)
		all = true
	}
	if all || len(ps) == 0 {
		ports[d.Name] = nil
		return
	}
	ports[d.Name] = append(ports[d.Name], ps...)
}

// firewallPorts sets firewall.ports: the union of the ports the jails'
// bans dropped, or none (every port) when one jail dropped every port.
// Either way a jail's ban now drops what the others' did: listed.
func (im *Imported) firewallPorts(ports map[string][]int, defs []WatchDef, findings *[]Finding) {
	f := im.Firewall
	if f == nil {
		return
	}
	var union []int
	all := false
	for _, ps := range ports {
		if ps == nil {
			all = true
		}
		union = append(union, ps...)
	}
	slices.Sort(union)
	union = slices.Compact(union)
	if !all {
		f.Ports = union
	}
	for _, d := range defs {
		ps, ok := ports[d.Name]
		if !ok || ps == nil {
			continue
		}
		slices.Sort(ps)
		ps = slices.Compact(ps)
		if all || !slices.Equal(ps, union) {
			drops := "every port"
			if !all {
				drops = "ports " + intList(union)
			}
			*findings = append(*findings, Finding{d.Src["enabled"], fmt.Sprintf("jail %s: fail2ban dropped ports %s of a banned address; gatehouse's kernel sets drop %s for every jail", d.Name, intList(ps), drops)})
		}
	}
}

func intList(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// mail records a jail whose action mails its bans.
func (im *Imported) mail(d WatchDef) {
	if im.Mail == nil {
		m := &ImportedMail{To: []string{"root@localhost"}, From: "root@localhost", Src: d.Src["action"]} // jail.conf's defaults
		if v := d.Settings["destemail"]; v != "" {
			m.To = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
			m.ToSrc = d.Src["destemail"]
		}
		if v := d.Settings["sender"]; v != "" && !strings.Contains(v, "<") {
			m.From, m.FromSrc = v, d.Src["sender"]
		}
		im.Mail = m
	}
	im.Mail.Jails = append(im.Mail.Jails, d.Name)
}

// parsePrefix reads an ignoreip entry: an address or a CIDR prefix,
// host bits masked as fail2ban masks them.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
