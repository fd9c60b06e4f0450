package config

// Watch is one log-watch source (key watch[]): log lines of a service
// the gateway does not proxy (sshd, postfix, dovecot …), judged by a
// fail2ban-style filter; every line the filter blames is an offence by
// the address it names, for Jail. The jails, ban list, kernel sets,
// fleet and notifications are the same as for HTTP offences.
type Watch struct {
	// Name names the source in logs, metrics and the saved read
	// positions: letters, digits, '.', '_' and '-'. Unique. Required.
	Name string `yaml:"name"`
	// Filter judges the lines: the name of a built-in filter (sshd,
	// postfix, dovecot, vsftpd, proftpd, nginx-http-auth, recidive), or a
	// block of fail2ban-syntax regexes. Required.
	Filter *WatchFilter `yaml:"filter"`
	// Mode is the built-in filter's mode (fail2ban's mode=, such as
	// sshd's normal, ddos, extra and aggressive). Default: the filter's
	// default mode. Only for a built-in filter.
	Mode string `yaml:"mode"`
	// Files are the log files to follow: paths or globs (filepath.Match
	// syntax), followed across rotation; files that appear later are
	// picked up. Exactly one of Files and Journal.
	Files []string `yaml:"files"`
	// Journal reads the systemd journal instead of files.
	Journal *WatchJournal `yaml:"journal"`
	// Jail receives the offences; it must be defined under jails.
	// Default: the source's name.
	Jail string `yaml:"jail"`
	// Tail starts files met at the very first start at their end rather
	// than their start (a line's own time decides whether it counts
	// either way). Default false, as fail2ban's default.
	Tail bool `yaml:"tail"`
	// Resolve looks up a host name a line blames (when the filter's
	// <HOST> matched a name rather than an address) and counts every
	// address it resolves to. Default false: such lines are skipped, since
	// whoever writes the log line chooses the name and its DNS answer.
	Resolve bool `yaml:"resolve"`
	// Timezone is the zone of timestamps that carry none (syslog's "Dec
	// 7 12:00:01"): "local", "UTC" or an IANA name. Default "local".
	Timezone string `yaml:"timezone"`
}

// WatchFilter is a watch source's filter (key watch[].filter): either a
// built-in filter's name (the scalar form, kept in Builtin) or
// fail2ban-syntax regexes.
type WatchFilter struct {
	// Builtin is the name given in the scalar form ("filter: sshd").
	Builtin string `yaml:"-"`
	// FailRegex are the regexes that blame a line's <HOST> (fail2ban's
	// failregex), in Go's RE2 syntax plus fail2ban's tags <HOST>, <ADDR>,
	// <IP4>, <IP6>, <F-USER>…</F-USER>. At least one.
	FailRegex []string `yaml:"failregex"`
	// IgnoreRegex are the regexes that excuse a line failregex blamed.
	IgnoreRegex []string `yaml:"ignoreregex"`
	// PrefRegex is matched first; its <F-CONTENT> part is what failregex
	// sees (fail2ban's prefregex). Default none: the whole line.
	PrefRegex string `yaml:"prefregex"`
	// DatePattern is where the line's timestamp is (fail2ban's
	// datepattern, such as "{^LN-BEG}" or "%%Y-%%m-%%d %%H:%%M:%%S").
	// Default: fail2ban's automatic detection of common formats.
	DatePattern string `yaml:"datepattern"`
}

// WatchJournal selects the journal entries a watch source reads (key
// watch[].journal): entries of any of Units or of any of Identifiers.
// Both empty: the built-in filter's usual units (sshd: ssh.service and
// sshd.service).
type WatchJournal struct {
	// Units are systemd units (_SYSTEMD_UNIT), such as ssh.service.
	Units []string `yaml:"units"`
	// Identifiers are syslog identifiers (SYSLOG_IDENTIFIER), such as
	// sshd, for services that log through syslog().
	Identifiers []string `yaml:"identifiers"`
	// Directory reads the journal files of this directory (journalctl
	// --directory), such as a container's or a remote host's journal
	// collected by systemd-journal-remote. Default: the system journal.
	Directory string `yaml:"directory"`
}
