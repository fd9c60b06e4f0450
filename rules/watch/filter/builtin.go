package filter

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The built-in filters are written for gatehouse from the log formats of
// the daemons and fail2ban's sample logs; they follow the behaviour of
// fail2ban's filter.d files of the same name (which modes catch what), in
// RE2 syntax, without fail2ban's look-arounds and conditional groups.

// syslogDates are the timestamps of syslog files, the journal's short
// output and RFC 5424 ("<PRI>1 " and an ISO 8601 time): fail2ban's default
// templates at the line start, then after an RFC 5424 header.
const syslogDates = "{^LN-BEG}\n^<\\d+>\\d+\\s+{DATE}"

// syslogPrefix returns the part of a syslog, journal or RFC 5424 line
// between the (already removed) timestamp and the message of daemon:
// optional facility, host name, kernel and vserver markers, the daemon with
// its pid, and Solaris message ids.
func syslogPrefix(daemon string) string { return syslogPrefixHost(daemon, `\S+`) }

// syslogPrefixHost is syslogPrefix with host the expression of the host
// name field.
func syslogPrefixHost(daemon, host string) string {
	d := `[\[\(]?` + daemon + `(?:\(\S+\))?[\]\)]?:?`
	file := `\s*(?:<[^.]+\.[^.]+>\s+)?(?:` + host + `\s+)?(?:kernel:\s?\[ *\d+\.\d+\]:?\s+)?(?:@vserver_\S+\s+)?` +
		`(?:(?:\[\d+\]?:\s+` + d + `|` + d + `(?:\[\d+\])?:?)\s+)?(?:kernel:\s?\[ *\d+\.\d+\]:?\s+)?(?:\[ID \d+ \S+\]\s+)?`
	rfc5424 := `\s*` + host + ` ` + d + ` \d+ \S+ (?:[^\[\]\s]+|(?:\[(?:[^\]"]*|"[^"]*")*\])+)\s+`
	return `(?:` + rfc5424 + `|` + file + `)`
}

// Builtin returns the built-in filter name in the given mode ("" is the
// filter's default mode). Builtins lists the names, Modes their modes.
func Builtin(name, mode string) (Config, error) {
	b, ok := builtins[name]
	if !ok {
		return Config{}, fmt.Errorf("filter %q is not built in (built in: %s)", name, strings.Join(Builtins(), ", "))
	}
	if mode == "" {
		mode = b.modes[0]
	}
	if !slices.Contains(b.modes, mode) {
		return Config{}, fmt.Errorf("filter %s: mode %q is not one of %s", name, mode, strings.Join(b.modes, ", "))
	}
	return b.build(mode), nil
}

// Builtins returns the names of the built-in filters, sorted: sshd,
// postfix, dovecot, vsftpd, proftpd, nginx-http-auth and recidive.
func Builtins() []string {
	return slices.Sorted(maps.Keys(builtins))
}

// Modes returns the modes of the built-in filter name and the one that ""
// stands for; ok is false if there is no such filter. The slice is the
// caller's.
func Modes(name string) (modes []string, def string, ok bool) {
	b, ok := builtins[name]
	if !ok {
		return nil, "", false
	}
	return slices.Clone(b.modes), b.modes[0], true
}

// JournalMatch returns what selects the journal entries of the built-in
// filter name's daemon: systemd units (_SYSTEMD_UNIT) and syslog
// identifiers (SYSLOG_IDENTIFIER), an entry matching any one of them being
// selected. They are the units of Debian's packages, as fail2ban's
// journalmatch names them. No built-in filter selects by identifier: any
// local user can log under any identifier (logger -t sshd …) and so get
// any address banned, while _SYSTEMD_UNIT is set by journald from the
// process's cgroup. Both are nil for a name that is not built in. The
// slices are the caller's.
func JournalMatch(name string) (units, identifiers []string) {
	b, ok := builtins[name]
	if !ok {
		return nil, nil
	}
	return slices.Clone(b.units), slices.Clone(b.idents)
}

type builtin struct {
	modes  []string // the first is the default
	build  func(mode string) Config
	units  []string // journal: _SYSTEMD_UNIT
	idents []string // journal: SYSLOG_IDENTIFIER
}

var builtins = map[string]builtin{
	"sshd": {[]string{"normal", "ddos", "extra", "aggressive"}, sshd,
		[]string{"ssh.service", "sshd.service"}, nil},
	"recidive": {[]string{"gatehouse", "fail2ban"}, recidive,
		[]string{"gatehouse.service"}, nil},
	"postfix": {[]string{"more", "normal", "auth", "rbl", "ddos", "extra", "aggressive", "errors"}, postfix,
		[]string{"postfix.service", "postfix@-.service"}, nil},
	"dovecot":         {[]string{"normal", "aggressive"}, dovecot, []string{"dovecot.service"}, nil},
	"vsftpd":          {[]string{"normal"}, vsftpd, []string{"vsftpd.service"}, nil},
	"proftpd":         {[]string{"normal"}, proftpd, []string{"proftpd.service"}, nil},
	"nginx-http-auth": {[]string{"normal", "auth", "fallback", "aggressive"}, nginxHTTPAuth, []string{"nginx.service"}, nil},
}

// sshd covers OpenSSH's authentication failures. Lines of one connection
// share the prefix (host and pid), so helper lines (<F-NOFAIL>) lend their
// address to later failures without one, and an accepted login
// (<F-MLFGAINED>) settles the connection.
func sshd(mode string) Config {
	const (
		port  = `(?: (?:port \d+|on \S+)){0,2}`
		suff  = `(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*`
		ssh   = `(?: ssh\d*)?`
		alg   = `(?:\w+ ){0,2}\w+`
		users = `<F-USER>\S+|.*?</F-USER>`
		// closing of a connection, with an optional user
		closing = `(?:Connection (?:closed|reset)|Disconnect(?:ed|ing))`
		authng  = `(?: (?:by|from))?(?: (?:invalid|authenticating) user <F-USER>\S+|.*?</F-USER>)?(?: from)?`
	)
	// noFrom is text that does not contain " from ": fail2ban's
	// (?:(?! from ).)* without a look-ahead, so that a user name cannot
	// smuggle in a second "from <address>".
	noFrom := `(?:[^ ]| +[^ f]| +f[^r]| +fr[^o]| +fro[^m]| +from[^ ])*(?: +(?:f(?:r(?:om?)?)?)?)?`
	notTooMany := `(?:: (?:[^T\[][^\[]*|T(?:[^o\[][^\[]*)?)?)?`
	failed := `(?:<F-NOFAIL>publickey</F-NOFAIL>|\S+)`
	re := []string{
		`^[aA]uthentication (?:failure|error|failed) for <F-USER>.*?</F-USER> (?:from )?<HOST>(?: via \S+)?` + suff + `$`,
		`^User not known to the underlying authentication module for <F-USER>.*?</F-USER> (?:from )?<HOST>` + suff + `$`,
		`^Failed publickey for invalid user <F-USER>\S+</F-USER> from <HOST>` + port + ssh + `: `,
		`^Failed publickey for invalid user <F-USER>.*?</F-USER> from <HOST>` + port + ssh + noFrom + `$`,
		`^Failed ` + failed + ` for (?:invalid user )?<F-USER>\S+</F-USER> from <HOST>` + port + ssh + `: `,
		`^Failed ` + failed + ` for invalid user <F-USER>.*?</F-USER> from <HOST>` + port + ssh + noFrom + `$`,
		`^Failed ` + failed + ` for <F-USER>[^:]+</F-USER> from <HOST>` + port + ssh + noFrom + `$`,
		`^<F-USER>ROOT</F-USER> LOGIN REFUSED FROM <HOST>`,
		`^[iI](?:llegal|nvalid) user <F-USER>.*?</F-USER> (?:from )?<HOST>` + suff + `$`,
		`^User ` + users + ` (?:from )?<HOST> not allowed because (?:not listed in AllowUsers|listed in DenyUsers|not in any group|a group is listed in DenyGroups|none of user's groups are listed in AllowGroups)` + suff + `$`,
		`^refused connect from \S+ \(<HOST>\)`,
		`^Received <F-MLFFORGET>disconnect</F-MLFFORGET> from <HOST>` + port + `:\s*3: .*: Auth fail` + suff + `$`,
		`^<F-NOFAIL>pam_[a-z]+\(sshd:auth\):\s+authentication failure;</F-NOFAIL>(?:\s+(?:(?:logname|e?uid|tty)=\S*)){0,4}\s+ruser=<F-ALT_USER>\S*</F-ALT_USER>\s+rhost=<HOST>(?:\s+user=<F-USER>\S*</F-USER>)?` + suff + `$`,
		`^maximum authentication attempts exceeded for (?:invalid user )?<F-USER>.*?</F-USER> (?:from )?<HOST>` + port + ssh + suff + `$`,
		`^User ` + users + ` not allowed because account is locked` + suff,
		`^<F-MLFFORGET>Disconnecting</F-MLFFORGET>(?: from)? (?:invalid|authenticating) user <F-USER>\S+</F-USER> <HOST>` + port + `:\s*Change of username or service not allowed:\s*.*\[preauth\]\s*$`,
		`^Disconnecting: Too many authentication failures(?: for ` + users + `)?` + suff + `$`,
		`^<F-NOFAIL>Received <F-MLFFORGET>disconnect</F-MLFFORGET></F-NOFAIL> from <HOST>` + port + `:\s*11:`,
	}
	ddos := []string{
		`^(?:Did not receive identification string from|Timeout before authentication for(?: connection from)?) <HOST>`,
		`^kex_exchange_identification: (?:read: )?(?:[Cc]lient sent invalid protocol identifier|[Cc]onnection (?:closed by remote host|reset by peer))`,
		`^Bad protocol version identification '(?:[^']|.*?)' (?:from )?<HOST>` + suff + `$`,
		`^<F-NOFAIL>SSH: Server;Ltype:</F-NOFAIL> (?:Authname|Version|Kex);Remote: <HOST>-\d+;[A-Z]\w+:`,
		`^Read from socket failed: Connection <F-MLFFORGET>reset</F-MLFFORGET> by peer`,
		`^(?:banner exchange|ssh_dispatch_run_fatal): Connection from <HOST>` + port + `: (?:invalid format|(?:message authentication code incorrect|[Cc]onnection corrupted) \[preauth\])`,
	}
	extra := []string{
		`^Received <F-MLFFORGET>disconnect</F-MLFFORGET> from <HOST>` + port + `:\s*14: No(?: supported)? authentication methods available`,
		`^Unable to negotiate with <HOST>` + port + `: no matching ` + alg + ` found.`,
		`^Unable to negotiate a ` + alg,
		`^no matching ` + alg + ` found:`,
	}
	closedNoFail := `^<F-NOFAIL><F-MLFFORGET>` + closing + `</F-MLFFORGET></F-NOFAIL>` + authng + ` <ADDR>` + port + notTooMany + `(?: \[preauth\])?\s*$`
	closedPreauth := `^<F-MLFFORGET>` + closing + `</F-MLFFORGET>` + authng + ` <ADDR>` + port + notTooMany + `\s+\[preauth\]\s*$`
	closedOther := `^<F-NOFAIL><F-MLFFORGET>` + closing + `</F-MLFFORGET></F-NOFAIL>` + authng + ` <ADDR>(?:` + port + notTooMany + `|\s*)$`
	extraOther := `^<F-MLFFORGET>Disconnected</F-MLFFORGET>(?: from)? (?:invalid|authenticating) user ` + users + ` (?:from )?<HOST>` + port + ` \[preauth\]\s*$`
	switch mode {
	case "normal":
		re = append(re, closedNoFail)
	case "ddos", "aggressive":
		re = append(re, closedPreauth, closedOther)
	case "extra":
		re = append(re, extraOther)
	}
	re = append(re, `^<F-MLFFORGET><F-MLFGAINED>Accepted \w+</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST>(?:\s|$)`)
	switch mode {
	case "ddos":
		re = append(re, ddos...)
	case "extra":
		re = append(re, extra...)
	case "aggressive":
		re = append(re, ddos...)
		re = append(re, extra...)
	}
	re = append(re, `^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>`)
	return Config{
		DatePattern: syslogDates,
		PrefRegex:   `^<F-MLFID>` + syslogPrefix(`sshd(?:-session)?`) + `</F-MLFID>(?:(?:error|fatal): (?:PAM: )?)?<F-CONTENT>.+</F-CONTENT>$`,
		FailRegex:   re,
	}
}

// recidive reads gatehouse's own log of bans (log/slog text or JSON lines,
// "level=INFO msg=ban component=jails jail=J prefix=P"), from a file or the
// journal, and blames the banned address of any jail but recidive itself.
// The record must start the line (after a syslog prefix): gatehouse's
// access log goes to the same journal, and a client's User-Agent or path
// written there must not read as a ban. Mode fail2ban reads
// fail2ban's log ("NOTICE [jail] Ban 192.0.2.1") instead.
// gatehouseRecord is what may come before gatehouse's own log record on
// a line: a syslog line's date, host and "gatehouse[PID]:", the journal's
// host and identifier, or nothing (its own log file).
const gatehouseRecord = `(?:(?:[A-Z][a-z]{2}\s+\d{1,2}\s+\d\d:\d\d:\d\d\s+)?\S+\s+gatehouse(?:\[\d+\])?:\s*)?`

func recidive(mode string) Config {
	if mode == "fail2ban" {
		return Config{
			DatePattern: syslogDates,
			PrefRegex:   `^` + syslogPrefix(`fail2ban(?:-server|\.actions)?`) + `(?:fail2ban\.actions\s*(?:\[\d+\])?:\s+)?(?:NOTICE\s+)?<F-CONTENT>.+</F-CONTENT>$`,
			FailRegex:   []string{`\[[^\]]*\]\s+Ban\s+<HOST>\s*$`},
			IgnoreRegex: []string{`\[recidive\]\s+Ban\s`},
		}
	}
	return Config{
		DatePattern: `time=?"?{DATE}`,
		FailRegex: []string{
			`^` + gatehouseRecord + `\s*level=INFO\s+msg=ban\s+(?:component=jails\s+)?jail=[\w.-]+\s+prefix=<ADDR>(?:/\d+)?(?:\s|$)`,
			`^` + gatehouseRecord + `\{"time":"[^"]*",\s*"level":"INFO","msg":"ban",(?:"component":"jails",)?"jail":"[\w.-]+","prefix":"<ADDR>(?:/\d+)?"`,
		},
		IgnoreRegex: []string{`\bjail=recidive\s`, `"jail":"recidive"`},
	}
}
