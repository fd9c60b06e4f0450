package middleware

import (
	"errors"
	"log/slog"
	"net/http"

	"gatehouse/rules/match"
)

// CanonicalPath computes the request's canonical path once (match.Canonical
// of the request-target as sent) and stores it in the Scope, where every
// path decision below reads it: probes, hotlink, basic auth. A path that
// cannot be normalised safely — an encoded slash or NUL, double encoding,
// ".." above the root — gets 400: two readers of such a path can disagree,
// which is how path rules are bypassed. The upstream still receives the
// path as sent. It needs the Scope set by ClientIP.
//
// The gateway's chain uses Hygiene, which computes the same canonical path
// as part of its view of the whole request; CanonicalPath is the path
// step alone.
func CanonicalPath(log *slog.Logger) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := ScopeFrom(r)
			c, err := match.Canonical(match.RequestPath(r.RequestURI))
			if err != nil {
				if log.Enabled(r.Context(), slog.LevelDebug) {
					var upe *match.UnsafePathError
					reason := err.Error()
					if errors.As(err, &upe) {
						reason = upe.Reason
					}
					log.Debug("unsafe path refused", "client_ip", s.ClientIP, "reason", reason)
				}
				PlainStatus(w, http.StatusBadRequest)
				return
			}
			s.Path = c
			next.ServeHTTP(w, r)
		})
	}
}
