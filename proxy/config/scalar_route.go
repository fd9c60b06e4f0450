package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RatePer is a request rate written as nginx writes it: "10r/s" or
// "30r/m". The zero RatePer means the key was not set.
type RatePer struct {
	// PerSecond is the rate in requests per second.
	PerSecond float64
	// text is the rate as written, for messages and headers.
	text string
}

// String returns the rate as written.
func (r RatePer) String() string { return r.text }

// Window returns the rate's unit in seconds (1 or 60) and the requests
// per unit, for the RateLimit-Policy header.
func (r RatePer) Window() (seconds int, quota float64) {
	if strings.HasSuffix(r.text, "r/m") {
		return 60, r.PerSecond * 60
	}
	return 1, r.PerSecond
}

// UnmarshalYAML parses a scalar with ParseRate.
func (r *RatePer) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalarText(n, `a rate such as "10r/s" or "30r/m"`)
	if err != nil {
		return err
	}
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// ParseRate parses "Nr/s" or "Nr/m" with N a positive whole number, as
// nginx's limit_req_zone rate= takes it.
func ParseRate(s string) (RatePer, error) {
	num, per := s, 1.0
	switch {
	case strings.HasSuffix(s, "r/s"):
		num = s[:len(s)-3]
	case strings.HasSuffix(s, "r/m"):
		num, per = s[:len(s)-3], 60
	default:
		return RatePer{}, fmt.Errorf("%q is not a rate; write requests per second or minute as nginx does: \"10r/s\", \"30r/m\"", s)
	}
	n, err := strconv.Atoi(num)
	if err != nil || !isDigits(num) || n <= 0 || n > 1_000_000 {
		return RatePer{}, fmt.Errorf("%q: the request count must be a whole number from 1 to 1000000", s)
	}
	return RatePer{PerSecond: float64(n) / per, text: s}, nil
}

// RateDelay is limits.rates.NAME.delay: a count of requests, or
// "nodelay".
type RateDelay struct {
	// N is the requests over the rate answered at once.
	N int
	// NoDelay answers the whole burst at once.
	NoDelay bool
}

// UnmarshalYAML accepts a whole number ≥ 0 or "nodelay".
func (d *RateDelay) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalarText(n, `a whole number or "nodelay"`)
	if err != nil {
		return err
	}
	if s == "nodelay" {
		*d = RateDelay{NoDelay: true}
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || !isDigits(s) || v > 1_000_000 {
		return fmt.Errorf("%q: write a whole number of requests (0 to 1000000) or \"nodelay\"", s)
	}
	*d = RateDelay{N: v}
	return nil
}

// AccessRule is one entry of an access list (hosts[].access,
// hosts[].routes[].access): "allow CIDR", "deny CIDR", "allow all" or
// "deny all", as nginx's allow and deny take them.
type AccessRule struct {
	// Allow is true for allow, false for deny.
	Allow bool
	// Prefix is the addresses the rule names; the zero Prefix with All.
	Prefix netip.Prefix
	// All names every client.
	All bool
}

// String writes the rule back as it is written in the file.
func (a AccessRule) String() string {
	verb := "deny"
	if a.Allow {
		verb = "allow"
	}
	if a.All {
		return verb + " all"
	}
	return verb + " " + a.Prefix.String()
}

// UnmarshalYAML parses a scalar with ParseAccessRule.
func (a *AccessRule) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalarText(n, `a rule such as "allow 10.0.0.0/8" or "deny all"`)
	if err != nil {
		return err
	}
	v, err := ParseAccessRule(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// ParseAccessRule parses "allow|deny CIDR|IP|all".
func ParseAccessRule(s string) (AccessRule, error) {
	verb, arg, ok := strings.Cut(strings.TrimSpace(s), " ")
	arg = strings.TrimSpace(arg)
	var a AccessRule
	switch {
	case !ok || arg == "":
		return a, fmt.Errorf("%q: write \"allow ADDRESS\" or \"deny ADDRESS\", where ADDRESS is an IP address, a CIDR prefix or all", s)
	case verb == "allow":
		a.Allow = true
	case verb != "deny":
		return a, fmt.Errorf("%q: a rule starts with allow or deny", s)
	}
	if arg == "all" {
		a.All = true
		return a, nil
	}
	p, err := ParsePrefix(arg)
	if err != nil {
		return a, err
	}
	a.Prefix = p
	return a, nil
}

// Names is a list of names that may also be written as one scalar
// ("limit: login" or "limit: [login, api]"). The single name "off" is
// kept as written; the field using it says what it means.
type Names []string

// UnmarshalYAML accepts a scalar or a list of scalars.
func (ns *Names) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*ns = Names{n.Value}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("expected a name or a list of names, found %s", describe(n))
	}
	out := make(Names, 0, len(n.Content))
	for _, item := range n.Content {
		if item.Kind != yaml.ScalarNode {
			return fmt.Errorf("expected a name, found %s", describe(item))
		}
		out = append(out, item.Value)
	}
	*ns = out
	return nil
}

// Off reports whether ns is the single name "off".
func (ns Names) Off() bool { return len(ns) == 1 && ns[0] == "off" }
