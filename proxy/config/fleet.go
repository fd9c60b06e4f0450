package config

import (
	"crypto/x509"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"gatehouse/rules/fleet"
)

// applyFleetDefaults fills the fleet block's defaults (see Fleet).
func applyFleetDefaults(fl *Fleet) {
	if fl == nil {
		return
	}
	if fl.Prefix == "" {
		fl.Prefix = "gh"
	}
	if fl.Node == "" {
		// An unknown host name is reported by validation, as an empty node.
		fl.Node, _ = os.Hostname()
	}
}

// fleet checks the fleet block.
func (v *validator) fleet(f *File) {
	fl := f.Fleet
	if fl == nil {
		return
	}
	if f.StateDir == "" {
		v.add("fleet", "fleet mode needs state_dir: each node keeps its outbox and stream position in bans.db")
	}
	tlsOn := false
	switch u, err := url.Parse(fl.Redis); {
	case fl.Redis == "":
		v.add("fleet.redis", "required: the Redis URL, redis://host:6379/0 or rediss://user@host:6380/0")
	case err != nil:
		// url's error quotes the URL, which may hold a password.
		v.add("fleet.redis", "not a URL")
	case u.Scheme != "redis" && u.Scheme != "rediss":
		v.add("fleet.redis", "scheme %q is not redis or rediss", u.Scheme)
	default:
		tlsOn = u.Scheme == "rediss"
		if _, set := u.User.Password(); set {
			v.add("fleet.redis", "a password inside the URL is refused; give it in fleet.password (env:NAME or file:PATH)")
		}
		if host, port, err := net.SplitHostPort(u.Host); err != nil || host == "" {
			v.add("fleet.redis", "%q is not host:port", u.Host)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.add("fleet.redis", "port %q is not a port (1-65535)", port)
		}
		if db := strings.TrimPrefix(u.Path, "/"); db != "" {
			if n, err := strconv.Atoi(db); err != nil || n < 0 {
				v.add("fleet.redis", "database %q is not a number", db)
			}
		}
		if u.RawQuery != "" || u.Fragment != "" {
			v.add("fleet.redis", "query and fragment are not supported; put settings in the fleet block")
		}
	}
	if fl.CARoot != "" {
		switch pem, err := os.ReadFile(fl.CARoot); {
		case err != nil:
			v.add("fleet.ca_root", "%v", err)
		case !x509.NewCertPool().AppendCertsFromPEM(pem):
			v.add("fleet.ca_root", "%s holds no PEM certificate", fl.CARoot)
		case !tlsOn:
			v.add("fleet.ca_root", "set, but fleet.redis is not a rediss:// URL")
		}
	}
	if strings.ContainsAny(fl.Prefix, "{} ") {
		v.add("fleet.prefix", "%q holds a brace or a space", fl.Prefix)
	}
	if err := fleet.CheckNode(fl.Node); err != nil {
		v.add("fleet.node", "%v", err)
	}
	for i, name := range fl.ShareJails {
		field := "fleet.share_jails[" + strconv.Itoa(i) + "]"
		j, ok := f.Jails[name]
		switch {
		case !ok:
			v.add(field, "%q is not a configured jail", name)
		case j.Rate > 0:
			v.add(field, "%q is a rate jail; rate jails count per node", name)
		case slices.Index(fl.ShareJails, name) < i:
			v.add(field, "%q is listed twice", name)
		}
	}
}
