package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"gatehouse/rules"
	"gatehouse/rules/match"
)

// HotlinkConfig configures Hotlink for one host.
type HotlinkConfig struct {
	// Status answers a refused request: 403 (default), 404 or 410.
	// Ignored when Redirect is set.
	Status int
	// Redirect, when set, sends refused requests there with 302 (a
	// placeholder image, the site's home page). Absolute http(s) URL.
	Redirect string
	// Jail, when set, receives an offence per refused request.
	Jail string
}

// Hotlink refuses requests for protected media whose Referer is not
// allowed (nginx valid_referers semantics, match.HotlinkMatcher). It needs
// the Scope's canonical path. A request with several Referer headers is
// refused: which one would count?
func Hotlink(cfg HotlinkConfig, m *match.HotlinkMatcher, jails *rules.Jails, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	if m == nil || jails == nil {
		return nil, errors.New("hotlink: no matcher or jails")
	}
	switch cfg.Status {
	case 0:
		cfg.Status = http.StatusForbidden
	case http.StatusForbidden, http.StatusNotFound, http.StatusGone:
	default:
		return nil, fmt.Errorf("hotlink status %d is not 403, 404 or 410", cfg.Status)
	}
	var location []string
	if cfg.Redirect != "" {
		u, err := url.Parse(cfg.Redirect)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("hotlink redirect %q is not an absolute http(s) URL", cfg.Redirect)
		}
		location = []string{u.String()}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := ScopeFrom(r)
			// Protected when the raw or the canonical path is: the
			// upstream receives the raw one.
			if !m.ProtectedRequest(match.RequestPath(r.RequestURI), s.Path) {
				next.ServeHTTP(w, r)
				return
			}
			ref := r.Header["Referer"]
			if len(ref) == 0 && m.Allowed("", false) || len(ref) == 1 && m.Allowed(ref[0], true) {
				next.ServeHTTP(w, r)
				return
			}
			if cfg.Jail != "" {
				s.Offence = "hotlink"
				jails.Report(cfg.Jail, s.ClientIP, "hotlink")
			}
			if log.Enabled(r.Context(), slog.LevelDebug) {
				log.Debug("hotlink refused", "client_ip", s.ClientIP, "host", s.Host, "path", s.Path.Path)
			}
			if location != nil {
				w.Header()["Location"] = location
				w.Header()["Cache-Control"] = []string{"no-store"}
				w.WriteHeader(http.StatusFound)
				return
			}
			PlainStatus(w, cfg.Status)
		})
	}, nil
}
