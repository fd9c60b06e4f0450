package config

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"gatehouse/signer"
)

// tokenScopes are the values of admin.tokens[].scopes, in the order
// messages list them.
var tokenScopes = []string{"bans:read", "bans:write", "sign:s3", "sign:cloudfront", "sign:link", "ui"}

func (v *validator) tokens(tokens []Token) {
	names := map[string]string{}
	secrets := map[[32]byte]string{}
	for i, t := range tokens {
		p := "admin.tokens[" + strconv.Itoa(i) + "]"
		switch first, dup := names[t.Name]; {
		case t.Name == "":
			v.add(p+".name", "a name is required (it identifies the token in the audit log)")
		case dup:
			v.add(p+".name", "%q is already the name of %s (line %d)", t.Name, parent(first), v.line(first))
		default:
			names[t.Name] = p + ".name"
		}

		switch first, dup := secrets[t.Token.digest]; {
		case t.Token.IsZero():
			v.add(p+".token", "a token is required; %s", secretHelp)
		case dup:
			v.add(p+".token", "same secret as %s (line %d); give each token its own secret", parent(first), v.line(first))
		default:
			secrets[t.Token.digest] = p + ".token"
		}
		if t.Token.HasValue() {
			if err := CheckBearerToken(t.Token.Value()); err != nil {
				v.add(p+".token", "%v", err)
			}
		}

		if len(t.Scopes) == 0 {
			v.add(p+".scopes", "at least one scope is required: %s", strings.Join(tokenScopes, ", "))
		}
		seen := map[string]bool{}
		for j, s := range t.Scopes {
			field := p + ".scopes[" + strconv.Itoa(j) + "]"
			switch {
			case !slices.Contains(tokenScopes, s):
				v.add(field, "%q is not one of %s", s, strings.Join(tokenScopes, ", "))
			case seen[s]:
				v.add(field, "%s is listed twice", s)
			}
			seen[s] = true
		}
		for j, pre := range t.Prefixes {
			if err := signer.CheckPrefix(pre); err != nil {
				v.add(p+".prefixes["+strconv.Itoa(j)+"]", "%v", err)
			}
		}
	}
}

// adminNames checks admin.names: host names or IP addresses, without a
// port or a wildcard, each once.
func (v *validator) adminNames(names []string) {
	seen := map[string]bool{}
	for i, n := range names {
		field := "admin.names[" + strconv.Itoa(i) + "]"
		key := strings.TrimSuffix(strings.ToLower(n), ".")
		if a, err := netip.ParseAddr(strings.Trim(key, "[]")); err == nil {
			switch {
			case a.Zone() != "":
				v.add(field, "%q has a zone; a Host header never carries one", n)
				continue
			case a.IsUnspecified():
				v.add(field, "%q is the unspecified address; name an address clients connect to", n)
				continue
			}
			key = a.Unmap().String()
		} else if err := checkDNSName(key); err != nil {
			hint := ""
			if strings.Contains(n, ":") || strings.Contains(n, "*") {
				hint = " (write a bare name: no port, no scheme, no wildcard)"
			}
			v.add(field, "%q is not a host name or an IP address: %v%s", n, err, hint)
			continue
		}
		if seen[key] {
			v.add(field, "%s is listed twice", n)
		}
		seen[key] = true
	}
}
