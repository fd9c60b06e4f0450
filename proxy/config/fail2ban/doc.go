// Package fail2ban reads fail2ban jail files (jail.local): the INI
// dialect of Python's configparser that fail2ban uses, with %(name)s
// interpolation and [DEFAULT] fallback (Parse, JailFile.Get), and its
// value syntax for booleans and times (ParseBool, ParseTime, matching
// fail2ban's str2seconds). It is the reader behind "gatehouse import
// nginx --fail2ban"; proxy/config/nginx maps the jails it reads onto
// gatehouse's.
//
// It reads only the bytes it is given and holds no global state; a
// JailFile is immutable once parsed and safe for concurrent use.
package fail2ban
