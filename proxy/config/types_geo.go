package config

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Geo is a country and ASN rule (keys hosts[].geo and
// hosts[].routes[].geo), against the databases of intel.geoip. A
// route's geo replaces the host's; "geo: off" exempts the route. A
// refused client gets 403, and an offence for the host's (route's) jail
// when one is named, as access does. Clients in the global allow list
// always pass.
type Geo struct {
	// Off exempts a route from its host's rule ("geo: off").
	Off bool `yaml:"-"`
	// Allow admits only clients of these countries: ISO 3166-1 alpha-2
	// codes in either case, and "unknown" for addresses the country
	// database gives no country (private, loopback, unlisted), which are
	// refused unless named. Default none. Not with Deny.
	Allow []string `yaml:"allow"`
	// Deny refuses the clients of these countries ("unknown" as in
	// Allow; unnamed, an address without a country passes). Default
	// none.
	Deny []string `yaml:"deny"`
	// ASNDeny refuses clients of these autonomous systems (numbers, or
	// "AS" and the number). Needs intel.geoip.asn. Default none.
	ASNDeny []ASN `yaml:"asn_deny"`
	// ASNAllow admits only clients of these autonomous systems; an
	// address without an ASN is refused. Needs intel.geoip.asn. Not with
	// ASNDeny. Default none.
	ASNAllow []ASN `yaml:"asn_allow"`
}

// ASN is an autonomous system number: 64500 or "AS64500".
type ASN uint32

// UnmarshalYAML parses a number with an optional "AS" prefix.
func (a *ASN) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalarText(n, `an AS number such as 64500 or "AS64500"`)
	if err != nil {
		return err
	}
	v, err := ParseASN(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// ParseASN parses "64500" or "AS64500" (any case): 1–4294967295.
func ParseASN(s string) (ASN, error) {
	t := s
	if len(t) > 2 && strings.EqualFold(t[:2], "AS") {
		t = t[2:]
	}
	n, err := strconv.ParseUint(t, 10, 32)
	if err != nil || n == 0 || t[0] == '+' {
		return 0, fmt.Errorf("%q is not an AS number (1-4294967295, optionally written AS64500)", s)
	}
	return ASN(n), nil
}
