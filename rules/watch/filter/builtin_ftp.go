package filter

// vsftpd judges vsftpd's failed logins, from its PAM module through syslog
// or from its own log ("[pid N] [user] FAIL LOGIN: Client "address"").
func vsftpd(string) Config {
	p := syslogPrefix(`vsftpd`)
	return Config{
		DatePattern: syslogDates,
		FailRegex: []string{
			`^` + p + `(?:\(?pam_unix(?:\(\S+\))?\)?:?\s+)?authentication failure; logname=<F-ALT_USER1>\S*</F-ALT_USER1> uid=\S* euid=\S* tty=(?:ftp)? ruser=<F-USER>\S*</F-USER> rhost=<HOST>(?:\s+user=<F-ALT_USER>\S*</F-ALT_USER>)?\s*$`,
			`^(?:\s*\[pid \d+\] |` + p + `)\[<F-USER>[^\]]+</F-USER>\] FAIL LOGIN: Client "<HOST>"(?:\s*$|,)`,
		},
	}
}

// proftpd judges ProFTPD's refused logins (unknown user, wrong password,
// refused by configuration), root login attempts and the maximum number of
// attempts. Its lines name the client as "name[address]" after the server
// name.
func proftpd(string) Config {
	const why = `(?:[uU]ser not authorized for login|[nN]o such user found|[iI]ncorrect password|[pP]assword expired|` +
		`[aA]ccount disabled|[iI]nvalid shell: '\S+'|[uU]ser in \S+|[lL]imit (?:access|configuration) denies login|` +
		`[nN]ot a UserAlias|[mM]aximum login length exceeded)`
	return Config{
		DatePattern: syslogDates,
		PrefRegex:   `^` + syslogPrefix(`proftpd`) + `\S+ \(\S+\[<HOST>\]\)[: -]+ <F-CONTENT>(?:USER|SECURITY|Maximum) .+</F-CONTENT>$`,
		FailRegex: []string{
			`^USER <F-USER>\S+|.*?</F-USER>(?: \(Login failed\))?: ` + why,
			`^SECURITY VIOLATION: <F-USER>\S+|.*?</F-USER> login attempted`,
			`^Maximum login attempts \(\d+\) exceeded`,
		},
	}
}

// nginxHTTPAuth judges nginx's error log for failed basic authentication
// (htpasswd: unknown user or wrong password; PAM), for an nginx that still
// runs beside gatehouse. Mode fallback counts failed TLS handshakes (the
// noise of scanners) instead; aggressive counts both. Lines may come from
// the file or the journal ("host nginx[pid]: …" before nginx's own date).
func nginxHTTPAuth(mode string) Config {
	auth := []string{
		`^user "<F-USER>(?:[^"]+|.*?)</F-USER>":? (?:password mismatch|was not found in "[^"]*")$`,
		`^(?:PAM: )?user '<F-USER>(?:[^']+|.*?)</F-USER>' - not authenticated: Authentication failure$`,
	}
	tls := `^SSL_(?:do_handshake|read)\(\) failed \(SSL: error:\S+(?: \S+){1,3}[^\)]*\)[^,]*`
	var re []string
	switch mode {
	case "normal", "auth":
		re = auth
	case "fallback":
		re = []string{tls}
	case "aggressive":
		re = append(auth, tls)
	}
	// The journal prefix ("host nginx[pid]: ", maybe with a repeated
	// "host nginx: " and nginx's date) is skipped as far as the last
	// [error] marker's start.
	return Config{
		DatePattern: syslogDates,
		PrefRegex: `^\s*(?:[^\[\s]\S* nginx\[\d+\]: [^\[]*)?\[(?:error|crit)\] \d+#\d+: \*\d+\s+<F-CONTENT>.*</F-CONTENT>` +
			`, client: <ADDR>(?:, (?:server|request|host|referrer): (?:"[^"]*"|\S*)){0,4}\s*$`,
		FailRegex: re,
	}
}
