// Package fail2ban reads fail2ban jail files (jail.local): the INI
// dialect of Python's configparser that fail2ban uses, with %(name)s
// interpolation and [DEFAULT] fallback (Parse, JailFile.Get), and its
// value syntax for booleans and times (ParseBool, ParseTime, matching
// fail2ban's str2seconds). It is the reader behind "gatehouse import
// nginx --fail2ban"; proxy/config/nginx maps the jails it reads onto
// gatehouse's.
//
// ReadFilter and ReadJails read a whole configuration directory
// (/etc/fail2ban) as fail2ban's client does: [INCLUDES] before/after
// files, .local and .d/ overrides (%(known/key)s), %(section/key)s
// references, [Init] and filter arguments (sshd[mode=aggressive]), and
// the <tag> substitution that builds failregex from mode-selected
// options. They return FilterDef and WatchDef with fail2ban's regex
// syntax kept, each value's file:line, and Findings for what cannot be
// carried; compiling the regexes is the filter engine's job.
//
// Import maps a whole directory onto gatehouse's config for "gatehouse
// import fail2ban" (and the non-HTTP jails of "import nginx --fail2ban
// DIR"): each enabled jail a watch entry (the built-in filter of the
// same name when the shipped filter file is used unchanged, else its
// regexes, compiled with rules/watch/filter) and a jail; ignoreip to
// allow, ban actions to firewall, mail actions to notify.email, and
// every other option listed with file:line. Imported.YAML writes it.
//
// It reads only the bytes it is given and holds no global state; a
// JailFile is immutable once parsed and safe for concurrent use.
package fail2ban
