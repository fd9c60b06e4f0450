package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"gatehouse/rules/match"
	"gatehouse/signer"
)

// SignedLinksConfig configures SignedLinks for one host.
type SignedLinksConfig struct {
	// Paths lists the protected path prefixes, on segment boundaries as
	// match.PrefixSet reads them ("/paid" covers "/paid/a", not
	// "/paid-trailer"). Required.
	Paths []string
}

// SignedLinks answers 403 to a request under cfg.Paths that does not carry
// a valid gateway-signed link (signer.Links.Verify): parameters missing,
// malformed or repeated, a signature no key made for this method, host,
// raw path, query and expiry (and client address, for a bound link), an
// expired link, or one whose expiry lies beyond max_expires. A request is
// protected when its raw path, its canonical path or the canonical
// path's probe form is under a prefix (match.PrefixSet.CoversRequest), so
// "//paid/a" and "/PAID/a" are protected as well. The signature is
// checked against the raw path the upstream receives
// (r.URL.EscapedPath()), not the canonical one: "/paid//a.mp4",
// "/paid/./a.mp4" and "/paid/%61.mp4" are other objects on a key-value
// store upstream, so the link of "/paid/a.mp4" does not open them (issue
// 17).
//
// The link parameters are removed from the query before the request goes
// on, on every protected request: the upstream receives exactly the
// query the link was signed for, and an access log line, written from
// the same request, never shows them. Refusals are logged at debug
// without the signature. It needs the Scope's client IP, canonical path
// and request host (ClientIP, Hygiene).
func SignedLinks(cfg SignedLinksConfig, links *signer.Links, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	if links == nil {
		return nil, errors.New("signed links: no signer")
	}
	if len(cfg.Paths) == 0 {
		return nil, errors.New("signed links: no protected paths")
	}
	paths, err := match.CompilePrefixes(cfg.Paths)
	if err != nil {
		return nil, fmt.Errorf("signed links paths: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := ScopeFrom(r)
			if !paths.CoversRequest(match.RequestPath(r.RequestURI), s.Path) {
				next.ServeHTTP(w, r)
				return
			}
			host := s.RequestHost
			if host == "" {
				// Only when Hygiene did not run (a test calling this
				// middleware alone): the same canonical form.
				host, _, _ = CanonicalHost(r.Host)
			}
			stripped, err := links.Verify(r.Method, host, r.URL.EscapedPath(), r.URL.RawQuery, s.ClientIP)
			if stripped != r.URL.RawQuery {
				r.URL.RawQuery = stripped
				r.RequestURI = withQuery(r.RequestURI, stripped)
			}
			if err != nil {
				if log.Enabled(r.Context(), slog.LevelDebug) {
					log.Debug("signed link refused", "client_ip", s.ClientIP, "host", s.Host, "path", s.Path.Path, "reason", err.Error())
				}
				PlainStatus(w, http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

// withQuery replaces the query of a request-target.
func withQuery(uri, query string) string {
	path, _, _ := strings.Cut(uri, "?")
	if query == "" {
		return path
	}
	return path + "?" + query
}
