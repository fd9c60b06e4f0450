package config

import (
	"strconv"
)

// Summary describes f in one line for "gatehouse check", e.g. "3 hosts, 5
// upstreams, admin on 127.0.0.1:9901 (2 tokens), access log json".
// Upstreams are counted once per distinct URL.
func (f *File) Summary() string {
	ups := map[string]bool{}
	for _, h := range f.Hosts {
		for _, u := range h.Upstreams {
			ups[u.String()] = true
		}
		for _, r := range h.Routes {
			for _, u := range r.Upstreams {
				ups[u.String()] = true
			}
		}
	}
	admin := "admin off"
	if f.Admin.Listen != "off" {
		admin = "admin on " + f.Admin.Listen
		if n := len(f.Admin.Tokens); n > 0 {
			admin += " (" + plural(n, "token") + ")"
		}
	}
	access := "access log " + f.Log.Access
	if f.Log.Access != "off" && f.Log.AccessFile != "" && f.Log.AccessFile != "-" {
		access += " to " + f.Log.AccessFile
	}
	tls := ""
	if f.TLS != nil {
		tls = ", https on " + f.Listen.HTTPS + " (" + plural(len(f.ManagedNames()), "ACME name") + ", " +
			plural(len(f.TLS.Certificates), "static certificate") + ")"
	}
	watch := ""
	if n := len(f.Watch); n > 0 {
		watch = ", " + plural(n, "watch source")
	}
	return plural(len(f.Hosts), "host") + ", " + plural(len(ups), "upstream") + tls + watch + f.trustedSummary() + ", " + admin + ", " + access
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
