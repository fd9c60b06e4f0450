package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"gatehouse/rules"
	"gatehouse/rules/match"
)

// DefaultProbeJail is the jail probes are reported to unless configured.
const DefaultProbeJail = "probes"

// ProbeBlockConfig configures ProbeBlock.
type ProbeBlockConfig struct {
	// Status answers a probe: 403 (default) or 404, to look like nothing
	// is there.
	Status int
	// Jail receives an offence per probe. Default "probes".
	Jail string
	// ForHost, when set, gives the rules of a host with probes of its
	// own (hosts[].probes), by the request's host (Scope.RequestHost);
	// ok false: the rules above. A nil Matcher blocks nothing.
	ForHost func(requestHost string) (rules ProbeRules, ok bool)
}

// ProbeRules are one host's probe rules.
type ProbeRules struct {
	Matcher *match.ProbeMatcher
	// Status and Jail as in ProbeBlockConfig; both required.
	Status int
	Jail   string
}

// ProbeBlock rejects requests whose canonical path matches a probe rule
// (/wp-login.php, /.env, /.git/config …) and reports an offence to the
// jail. It needs the Scope's canonical path (CanonicalPath). A miss costs
// one trie walk and no allocation.
func ProbeBlock(cfg ProbeBlockConfig, m *match.ProbeMatcher, jails *rules.Jails, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	switch cfg.Status {
	case 0:
		cfg.Status = http.StatusForbidden
	case http.StatusForbidden, http.StatusNotFound:
	default:
		return nil, fmt.Errorf("probe status %d is not 403 or 404", cfg.Status)
	}
	if jails == nil {
		return nil, errors.New("probe block: no jails")
	}
	if cfg.Jail == "" {
		cfg.Jail = DefaultProbeJail
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := ScopeFrom(r)
			m, status, jail := m, cfg.Status, cfg.Jail
			if cfg.ForHost != nil {
				if hr, ok := cfg.ForHost(s.RequestHost); ok {
					m, status, jail = hr.Matcher, hr.Status, hr.Jail
				}
			}
			rule, hit := m.MatchRequest(match.RequestPath(r.RequestURI), s.Path)
			if !hit {
				next.ServeHTTP(w, r)
				return
			}
			s.Offence = "probe " + rule
			jails.Report(jail, s.ClientIP, "probe")
			if log.Enabled(r.Context(), slog.LevelDebug) {
				log.Debug("probe blocked", "client_ip", s.ClientIP, "rule", rule, "path", s.Path.Path)
			}
			PlainStatus(w, status)
		})
	}, nil
}
