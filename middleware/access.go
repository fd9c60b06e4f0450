package middleware

import (
	"log/slog"
	"net/http"
	"net/netip"

	"gatehouse/rules"
)

// AccessRule is one allow or deny rule of an access list: the client
// addresses in Prefix, or every client when All.
type AccessRule struct {
	Allow  bool
	Prefix netip.Prefix
	All    bool
}

// AccessConfig configures Access.
type AccessConfig struct {
	// Rules are tried in order against the client address; the first
	// that names it decides, and a client no rule names is allowed (as
	// nginx's allow and deny do; the config makes lists end in "all").
	Rules []AccessRule
	// Jail, when set, receives an offence per denied request. Default
	// none: a denial is not an offence.
	Jail string
}

// Access answers 403 to the clients its rules deny: nginx's allow and
// deny, on the client address ClientIP resolved (X-Forwarded-For only
// through trusted proxies). It does not allocate.
func Access(cfg AccessConfig, jails *rules.Jails, log *slog.Logger) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := ScopeFrom(r)
			if accessAllowed(cfg.Rules, s.ClientIP) {
				next.ServeHTTP(w, r)
				return
			}
			s.Offence = "access"
			if cfg.Jail != "" && jails != nil {
				jails.Report(cfg.Jail, s.ClientIP, "access denied")
			}
			if log.Enabled(r.Context(), slog.LevelDebug) {
				log.Debug("access denied", "client_ip", s.ClientIP, "path", s.Path.Path)
			}
			PlainStatus(w, http.StatusForbidden)
		})
	}
}

// accessAllowed applies rules, first match wins, to ip; an invalid ip
// (no peer address) is named only by "all".
func accessAllowed(rs []AccessRule, ip netip.Addr) bool {
	for i := range rs {
		if rs[i].All || (ip.IsValid() && rs[i].Prefix.Contains(ip)) {
			return rs[i].Allow
		}
	}
	return true
}
