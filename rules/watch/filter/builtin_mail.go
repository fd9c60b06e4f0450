package filter

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// postfix judges the smtpd and postscreen lines of Postfix (the daemon
// name may carry an instance and service, "postfix-in/submission/smtpd").
// Modes follow fail2ban's postfix filter: more (the default) and normal
// catch rejected commands (RCPT, EHLO, DATA… with a 4xx/5xx reject reason)
// and pipelining/error aborts; auth catches SASL authentication failures
// (not a lost connection to the SASL server, not an unknown mechanism);
// rbl only DNSBL rejections; ddos lost connections before DATA/AUTH,
// disconnects after failed AUTH only, postscreen PREGREET/HANGUP and
// command limits, and rate limits; extra is auth and normal; aggressive is
// all of them plus unknown mechanisms and hosts whose name does not resolve
// back to their address; errors only "too many errors".
func postfix(mode string) Config {
	const (
		port = `(?::\d+)?`
		// client is Postfix's "name[address]" (name may be "unknown" or
		// empty, as postscreen writes "[address]:port").
		client = `[^\[]*\[<HOST>\]` + port
	)
	// Reject reasons that blame the client, after "4xx/5xx x.y.z <arg>: ".
	reasons := []string{
		`Service unavailable`, `Access denied`, `Relay access denied`,
		`Client host rejected`, `Command rejected`, `Data command rejected`,
		`Malformed DNS server reply`, `Host not found`, `Domain not found`,
		`need fully-qualified hostname`, `match`,
		`[Uu]ser unknown`, `[Uu]ndeliverable address`,
	}
	reject := `^[A-Z]{4,} from ` + client + `: [45][50][04] [45]\.\d\.\d+ (?:(?:<[^>]*>)?: )?` +
		`(?:(?:Helo command|Sender address|Recipient address) rejected: )?(?:` + strings.Join(reasons, "|") + `)\b`
	after := `^from ` + client + `:?`
	mech := `(?i:LOGIN|PLAIN|CRAM-MD5|DIGEST-MD5)`
	sasl := `^` + client + `: SASL ` + mech + ` authentication failed:`
	saslAuth := sasl + notPrefix(" Connection lost to authentication server", " Invalid authentication mechanism")
	saslAggr := sasl + notPrefix(" Connection lost to authentication server")
	rbl := `^[A-Z]{4,} from ` + client + `: [45]54 [45]\.7\.1 Service unavailable; Client host \[\S+\] blocked\b`
	rate := `^(?:Message delivery request|Connection) rate limit exceeded: \d+ from [^\[]*\[<ADDR>\]`
	noResolve := `^hostname \S+ does not resolve to address <ADDR>`

	// The kind of message, between the daemon (and queue id) and the part
	// the failregexes read.
	const (
		kReject  = `(?:milter-)?reject:|(?:improper command pipelining|too many errors) after \S+`
		kWarning = `warning:`
		kErrors  = `too many errors after \S+`
	)
	// lost connection after any command but DATA and AUTH: a client
	// dropping the connection in the DATA phase is not hostile, and one
	// that fails AUTH is counted by its "disconnect … auth=0/n" line.
	kLost := `lost connection after ` + upperWordNot("DATA", "AUTH")
	kDDoS := kLost + `|(?:PREGREET \d+|HANGUP) after \S+|COMMAND (?:TIME|COUNT|LENGTH) LIMIT|` + kWarning
	// disconnect lines count only when AUTH was tried and never succeeded.
	disconnect := `disconnect <F-CONTENT>from \S+(?: \S+=\d+)* auth=0/(?:[1-9]|\d{2,}).*?</F-CONTENT>`

	var kinds string
	var re []string
	withDisconnect := false
	switch mode {
	case "more", "normal":
		kinds, re = kReject, []string{reject, after}
	case "auth":
		kinds, re = kWarning, []string{saslAuth}
	case "rbl":
		kinds, re = kReject, []string{rbl}
	case "ddos":
		kinds, re, withDisconnect = kDDoS, []string{after, rate}, true
	case "extra":
		kinds, re = kWarning+`|`+kReject, []string{saslAuth, reject, after}
	case "aggressive":
		kinds, re, withDisconnect = kWarning+`|`+kReject+`|`+kDDoS, []string{saslAggr, reject, after, noResolve, rate}, true
	case "errors":
		kinds, re = kErrors, []string{`^from ` + client + `$`}
	}
	body := `(?:` + kinds + `) <F-CONTENT>.+?</F-CONTENT>`
	if withDisconnect {
		body = `(?:` + body + `|` + disconnect + `)`
	}
	return Config{
		DatePattern: syslogDates,
		PrefRegex: `^` + syslogPrefix(`postfix(?:[^\w\[\s][^\[\s]*)?`) + `(?:\w+: )?` + body +
			`(?:, sasl_username=<F-USER>\S+</F-USER>)?\s*$`,
		FailRegex: re,
	}
}

// upperWordNot matches a word of upper-case ASCII letters that is none of
// words (each of them upper-case ASCII): RE2 has no negative look-ahead,
// so the other words are spelt out by length and first differing letter.
// The caller makes sure a non-letter follows.
func upperWordNot(words ...string) string {
	byLen := map[int][]string{}
	for _, w := range words {
		byLen[len(w)] = append(byLen[len(w)], w)
	}
	lens := slices.Sorted(maps.Keys(byLen))
	var alts []string
	last := 0 // every length up to last is handled
	for _, n := range lens {
		if n-1 > last {
			alts = append(alts, `[A-Z]{`+strconv.Itoa(last+1)+`,`+strconv.Itoa(n-1)+`}`)
		}
		alts = append(alts, fixedNot(byLen[n]))
		last = n
	}
	alts = append(alts, `[A-Z]{`+strconv.Itoa(last+1)+`,}`)
	return `(?:` + strings.Join(alts, "|") + `)`
}

// fixedNot matches a word of len(ws[0]) upper-case letters not in ws.
func fixedNot(ws []string) string {
	n := len(ws[0])
	first := map[byte][]string{}
	for _, w := range ws {
		first[w[0]] = append(first[w[0]], w[1:])
	}
	cls := ""
	var alts []string
	for c := byte('A'); c <= 'Z'; c++ {
		rest, ok := first[c]
		switch {
		case !ok:
			cls += string(c)
		case n > 1:
			alts = append(alts, string(c)+fixedNot(rest))
		}
	}
	if cls != "" {
		tail := ""
		if n > 1 {
			tail = `[A-Z]{` + strconv.Itoa(n-1) + `}`
		}
		alts = append([]string{`[` + cls + `]` + tail}, alts...)
	}
	if len(alts) == 0 {
		return `[^\x00-\x{10FFFF}]`
	}
	return `(?:` + strings.Join(alts, "|") + `)`
}

// dovecot judges Dovecot's login processes (imap, pop3, managesieve,
// submission) and its auth workers (PAM, passwd-file, SQL, LDAP). Mode
// normal counts failed logins; aggressive also counts clients that leave
// without trying to log in (no auth attempts, TLS handshake aborted).
// The address is the login process's rip=, the worker's "driver(user,
// address)" or the auth process's "auth(user,address,…)" prefix.
func dovecot(mode string) Config {
	const (
		// a login process ends the session, optionally with reasons
		// ("Disconnected: Inactivity", "Connection closed: read(…) failed: …")
		ended = `^(?:Login aborted|Aborted login|Disconnected|Remote closed connection|Client has quit the connection)` +
			`(?::(?: [^\( ]*|\([^\(]*\))*)?`
		// then the session's details up to the address, and nothing but
		// more details (no '>' but in the session id) after it
		details  = `\)[^:]*:(?: user=<<F-USER>[^>]*</F-USER>>,)?(?: method=\S+,)? rip=<ADDR>[^>]*(?:, session=<\S+>)?\s*$`
		userAddr = `\(\S*,<ADDR>(?:,\S*)?\)`
	)
	re := []string{
		`^authentication failure; logname=<F-ALT_USER1>\S*</F-ALT_USER1> uid=\S* euid=\S* tty=dovecot ruser=<F-USER>\S*</F-USER> rhost=<ADDR>(?:\s+user=<F-ALT_USER>\S*</F-ALT_USER>)?\s*$`,
		ended + ` \((?:auth failed, \d+ attempts(?: in \d+ secs)?|tried to use (?:disabled|disallowed) \S+ auth|proxy dest auth failed)` + details,
		`^pam` + userAddr + `: pam_authenticate\(\) failed: (?:User not known to the underlying authentication module: \d+ Time\(s\)|Authentication failure \([Pp]assword mismatch\?\)|Permission denied)\s*$`,
		`^(?:[a-z\-]{3,15}` + userAddr + `: )?(?:[Uu]nknown user|[Ii]nvalid credentials|[Pp]assword mismatch)`,
	}
	if mode == "aggressive" {
		re = append(re, ended+` \((?:no auth attempts|disconnected before auth was ready,|client didn't finish \S+ auth,|disconnected during TLS handshake)(?: (?:in|waited) \d+ secs)?`+details)
	}
	worker := `(?:(?:dovecot: )?auth(?:-worker)?(?:\((?:\S*,<ADDR>(?:,\S*)?|[^\)]+)\))?(?:<[^>]+>)?: )?`
	login := `(?:pam_unix(?:\(dovecot:auth\))?: |(?:pop3|imap|managesieve|submission)-login: )?`
	conn := `(?:[a-z\-]+: )?(?:conn \w+:auth(?:-worker)? \([^\)]+\): auth(?:-worker)?<\d+>: )?`
	return Config{
		DatePattern: syslogDates,
		PrefRegex: `^` + syslogPrefixHost(`(?:dovecot(?:-auth)?|auth)`, `\w+(?:[\-\.]\w+)*`) + worker + login +
			`(?:request \[\d+\]: )?(?:Info: )?` + conn + `<F-CONTENT>.+</F-CONTENT>$`,
		FailRegex: re,
	}
}
