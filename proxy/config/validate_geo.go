package config

import (
	"fmt"
	"strings"

	"gatehouse/rules/intel/geo"
)

// This file checks intel.geoip and the geo rules of hosts and routes.

// geoip checks intel.geoip: each database named is read and verified,
// so that a missing or broken file fails check and serve's start rather
// than letting every client through.
func (v *validator) geoip(f *File) {
	g := f.Intel.GeoIP
	if g == nil {
		return
	}
	if g.Country == "" && g.ASN == "" {
		v.add("intel.geoip", "name a country or an asn database (or leave geoip out)")
	}
	for _, db := range []struct{ kind, path string }{{"country", g.Country}, {"asn", g.ASN}} {
		if db.path == "" {
			continue
		}
		if err := geo.Check(db.kind, db.path); err != nil {
			v.add("intel.geoip."+db.kind, "%v", err)
		}
	}
}

// geoRule checks a host's or route's geo block at field.
func (v *validator) geoRule(f *File, field string, g *Geo, route bool) {
	if g == nil {
		return
	}
	if g.Off {
		if !route {
			v.add(field, `"off" is for routes; a host without a geo rule leaves geo out`)
		}
		return
	}
	var db GeoIP
	if f.Intel.GeoIP != nil {
		db = *f.Intel.GeoIP
	}
	if len(g.Allow) > 0 && len(g.Deny) > 0 {
		v.add(field, "allow and deny exclude each other: write one list")
	}
	if len(g.ASNAllow) > 0 && len(g.ASNDeny) > 0 {
		v.add(field, "asn_allow and asn_deny exclude each other: write one list")
	}
	if len(g.Allow) == 0 && len(g.Deny) == 0 && len(g.ASNAllow) == 0 && len(g.ASNDeny) == 0 {
		v.add(field, "an empty rule: give allow, deny, asn_deny or asn_allow (or write off on a route)")
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"allow", g.Allow}, {"deny", g.Deny}} {
		if l.list == nil {
			continue
		}
		if db.Country == "" {
			v.add(field+"."+l.key, "a country rule needs intel.geoip.country")
		}
		seen := map[string]bool{}
		for i, c := range l.list {
			p := fmt.Sprintf("%s.%s[%d]", field, l.key, i)
			cc, ok := geo.ParseCountry(c)
			switch {
			case strings.EqualFold(c, geo.Unknown):
				cc = geo.Unknown
			case !ok:
				v.add(p, "%q is not an ISO 3166-1 alpha-2 country code (such as DE, US) or %q", c, geo.Unknown)
				continue
			}
			if seen[cc] {
				v.add(p, "%s is listed twice", cc)
			}
			seen[cc] = true
		}
	}
	for _, l := range []struct {
		key  string
		list []ASN
	}{{"asn_deny", g.ASNDeny}, {"asn_allow", g.ASNAllow}} {
		if l.list != nil && db.ASN == "" {
			v.add(field+"."+l.key, "an ASN rule needs intel.geoip.asn")
		}
	}
}
