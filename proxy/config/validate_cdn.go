package config

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gatehouse/rules/intel"
)

// trustedProxies checks trusted_proxies: no empty or repeated entry, a
// file: list that exists and parses, a url: list that can be had (a
// refresh to fetch it, or a last good copy in state_dir), and warns when
// a CDN's ranges are trusted while anyone can reach the listener.
func (v *validator) trustedProxies(f *File) {
	seen := map[string]int{}
	var cdns []string
	for i, t := range f.TrustedProxies {
		field := "trusted_proxies[" + strconv.Itoa(i) + "]"
		if !t.IsValid() {
			v.add(field, "empty entry; write an IP address, CIDR prefix, provider (%s), file:PATH or url:URL", strings.Join(trustedProviders, ", "))
			continue
		}
		key := t.String()
		if j, dup := seen[key]; dup {
			v.add(field, "%s is already trusted_proxies[%d]", t.Label(), j)
			continue
		}
		seen[key] = i
		switch {
		case t.Prefix.IsValid():
			if err := intel.VetTrusted(intel.NewSet([]netip.Prefix{t.Prefix})); err != nil {
				v.warn(field, "%v: any client from it can name any address", err)
			}
		case t.Provider != "":
			cdns = append(cdns, t.Provider)
		case t.File != "":
			v.trustedFile(field, t.File)
		case t.URL != "":
			v.trustedURL(field, f, t)
		}
	}
	if len(cdns) == 0 {
		return
	}
	cdn := strings.Join(cdns, ", ") + " is"
	if len(cdns) > 1 {
		cdn = strings.Join(cdns, ", ") + " are"
	}
	for _, l := range []struct{ field, addr string }{{"listen.http", f.Listen.HTTP}, {"listen.https", f.Listen.HTTPS}} {
		if l.field == "listen.https" && !f.TLSOn() {
			continue
		}
		if open, host := publicListen(l.addr); open {
			v.warn("trusted_proxies", "%s trusted but %s %q accepts any peer (%s): clients that skip the CDN are served (a CDN header they send is ignored); firewall the port to the CDN's ranges",
				cdn, l.field, l.addr, host)
			return
		}
	}
}

// publicListen reports whether a listen address accepts peers from other
// hosts: a wildcard or a non-loopback address. It returns how to name it.
func publicListen(addr string) (bool, string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return true, "every address"
	}
	if host == "localhost" {
		return false, ""
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return true, host // a name: whatever it resolves to
	}
	if a.IsLoopback() {
		return false, ""
	}
	return true, host
}

// trustedFile checks a file: list: an absolute path to a list that
// parses.
func (v *validator) trustedFile(field, path string) {
	if !filepath.IsAbs(path) {
		v.add(field, "file:%s: the path is not absolute", path)
		return
	}
	fh, err := os.Open(path)
	if err != nil {
		v.add(field, "file:%s: %v", path, err)
		return
	}
	defer fh.Close()
	l, err := intel.Parse(fh, intel.FormatPlain, intel.Limits{})
	if err != nil {
		v.add(field, "file:%s: %v", path, err)
		return
	}
	if l.Skipped > 0 {
		v.warn(field, "file:%s: %d malformed lines are skipped, the first: %v", path, l.Skipped, l.FirstSkipped)
	}
	if err := intel.VetTrusted(intel.NewSet(l.Prefixes)); err != nil {
		v.add(field, "file:%s: %v", path, err)
	}
}

// trustedURL checks that a url: list can be had at start: intel.refresh
// fetches it, or state_dir holds its last good copy.
func (v *validator) trustedURL(field string, f *File, t TrustedProxy) {
	if strings.HasPrefix(t.URL, "http://") {
		v.warn(field, "%s is fetched over plain http: whoever can change it in transit can make any address a trusted proxy; use https", t.Label())
	}
	if f.Intel.Refresh != 0 {
		if f.StateDir == "" {
			v.warn(field, "%s has no last good copy without state_dir: each start trusts nobody from it until a fetch succeeds", t.Label())
		}
		return
	}
	if f.StateDir == "" {
		v.add(field, "%s is never fetched: set intel.refresh, and state_dir to keep its last good copy", t.Label())
		return
	}
	if _, err := os.Stat(TrustedListCopy(f.StateDir, t)); err != nil {
		v.add(field, "%s has no copy in state_dir and intel.refresh is off: set intel.refresh to fetch it", t.Label())
	}
}
