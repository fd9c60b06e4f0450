package filter

import (
	"testing"
	"time"
)

// TestHostContinued checks that an address a host tag captures is not
// blamed when the line goes on with more of a name, a zone or a longer
// address: a name such as 10.66.0.1.evil.example is chosen by whoever runs
// its DNS zone, and would frame 10.66.0.1. What may follow an address
// (a port, a bracket, a full stop) still leaves it the address.
func TestHostContinued(t *testing.T) {
	t.Parallel()
	sshd := compileBuiltin(t, "sshd", "normal", func(cfg *Config) { cfg.Location = time.UTC })
	// a custom filter that lets anything follow the address
	loose, err := Compile(Config{FailRegex: []string{`^auth failed from <HOST>`, `^remote: <HOST>-\d+;`, `^client <HOST>(?::\d+)?\s`}, DatePattern: "{NONE}"})
	if err != nil {
		t.Fatal(err)
	}
	const pre = "Dec  7 12:00:00 h sshd[1]: Failed password for root from "
	for _, tc := range []struct {
		f          *Filter
		line       string
		host, name string
	}{
		{sshd, pre + "10.66.0.1.evil.example port 22 ssh2", "", "10.66.0.1.evil.example"},
		{sshd, pre + "10.66.0.1-evil.example port 22 ssh2", "", "10.66.0.1-evil.example"},
		{sshd, pre + "10.66.0.1_x port 22 ssh2", "", "10.66.0.1_x"},
		{sshd, pre + "1.2.3.4.5 port 22 ssh2", "", "1.2.3.4.5"},
		{sshd, pre + "1.2.3.4567 port 22 ssh2", "", "1.2.3.4567"},
		{sshd, pre + "1.2.3.4%eth0 port 22 ssh2", "", "1.2.3.4%eth0"},
		{sshd, pre + "fe80::1%eth0 port 22 ssh2", "", "fe80::1%eth0"},
		{sshd, pre + "::10.0.0.5 port 22 ssh2", "::a00:5", ""},
		{sshd, pre + "64:ff9b::10.0.0.5 port 22 ssh2", "64:ff9b::a00:5", ""},
		{sshd, pre + "::FFFF:10.0.0.5 port 22 ssh2", "10.0.0.5", ""},
		{sshd, pre + "::ffff:1.2.3.4 port 22 ssh2", "1.2.3.4", ""},
		{sshd, pre + "1.2.3.4 port 22 ssh2", "1.2.3.4", ""},
		{sshd, pre + "2001:db8::1 port 22 ssh2", "2001:db8::1", ""},
		{sshd, pre + "1.2.3.4:22 port 22 ssh2", "1.2.3.4", ""},
		{sshd, pre + "[1.2.3.4]:22 port 22 ssh2", "1.2.3.4", ""},
		{sshd, pre + "[2001:db8::1]:22 port 22 ssh2", "2001:db8::1", ""},
		{sshd, pre + "mail.example.com port 22 ssh2", "", "mail.example.com"},
		{loose, "auth failed from 1.2.3.4.", "1.2.3.4", ""},
		{loose, "auth failed from 1.2.3.4..", "1.2.3.4", ""},
		{loose, "auth failed from 1.2.3.4, retrying", "1.2.3.4", ""},
		{loose, "auth failed from 1.2.3.4-", "1.2.3.4", ""},
		{loose, "auth failed from 1.2.3.4.evil.example.", "", "1.2.3.4.evil.example"},
		{loose, "auth failed from 1.2.3.4-22.evil.example", "", "1.2.3.4-22.evil.example"},
		{loose, "remote: 1.2.3.4-1780;", "1.2.3.4", ""},
		{loose, "remote: 1.2.3.4-1780.evil.example-1780;", "", "1.2.3.4-1780.evil.example"},
		{loose, "client 2001:db8::1234:58430 GET", "2001:db8::1234", ""},
	} {
		r := tc.f.Match(tc.line)
		host := ""
		if r.Host.IsValid() {
			host = r.Host.String()
		}
		if r.Kind != Fail || host != tc.host || r.HostName != tc.name {
			t.Errorf("Match(%q) = %v host %q name %q, want fail host %q name %q", tc.line, r.Kind, host, r.HostName, tc.host, tc.name)
		}
	}
}
