package filter

import "sort"

// Builtins returns the names of the built-in filters, sorted.
func Builtins() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// JournalMatch returns the systemd units and syslog identifiers whose
// journal entries the built-in filter name reads by default.
func JournalMatch(name string) (units, identifiers []string) {
	switch name {
	case "sshd":
		return []string{"ssh.service", "sshd.service"}, nil
	case "recidive":
		return []string{"gatehouse.service"}, nil
	}
	return nil, nil
}
