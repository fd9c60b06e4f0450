package proxy

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/proxy/config"
	"gatehouse/proxy/ui"
	"gatehouse/rules"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// apiError is the admin API's error body (DESIGN.md: {"error", "field"}).
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	// No HTML escaping: a signed URL's "&" stays "&" (not "\u0026") for
	// the shells and scripts that read the answer; the body is never HTML.
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	// The admin client may be gone; nothing else to do with the error.
	_ = enc.Encode(v)
}

// writeError answers with the admin API's JSON error body; field names the
// request field at fault, if any. Within an audited call it also tells
// the audit line the error.
func writeError(w http.ResponseWriter, code int, msg, field string) {
	if aw, ok := w.(*auditWriter); ok {
		aw.msg, aw.field = msg, field
	}
	writeJSON(w, code, apiError{Error: msg, Field: field})
}

// adminHandler serves the admin listener: health, readiness, metrics,
// the token-authenticated /v1 API and the dashboard, all behind the
// listener's Host, lockout and cross-origin rules (adminGate).
// It is only ever bound to admin.listen, never to the public listener.
func (s *Server) adminHandler() http.Handler {
	cfg := s.current.Load().cfg
	mux := http.NewServeMux()
	mux.Handle("/healthz", only(http.MethodGet, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})))
	mux.Handle("/readyz", only(http.MethodGet, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})))
	mux.Handle("/metrics", only(http.MethodGet,
		promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Registry: s.metrics.reg})))
	mux.Handle("GET /v1/bans", s.audited(scopeBansRead, s.listBans))
	mux.Handle("POST /v1/bans", s.auditedCall(scopeBansWrite, s.addBan, describeBan))
	mux.Handle("DELETE /v1/bans/{ip...}", s.auditedCall(scopeBansWrite, s.deleteBan, describeUnban))
	mux.Handle("/v1/bans", methodNotAllowed("GET, POST"))
	mux.Handle("/v1/bans/", methodNotAllowed("DELETE"))
	mux.Handle("POST /v1/sign/s3", s.auditedCall(scopeSignS3, s.signS3, describeSign(s3Resource)))
	mux.Handle("POST /v1/sign/cloudfront", s.auditedCall(scopeSignCloudFront, s.signCloudFront, describeSign(cloudFrontResource)))
	mux.Handle("POST /v1/sign/link", s.auditedCall(scopeSignLink, s.signLink, describeSign(linkResource)))
	mux.Handle("/v1/sign/s3", methodNotAllowed("POST"))
	mux.Handle("/v1/sign/cloudfront", methodNotAllowed("POST"))
	mux.Handle("/v1/sign/link", methodNotAllowed("POST"))
	mux.Handle("/ui/", s.dashboard())
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint", "")
	})
	// The listener is bound once; admin.listen and admin.names changes
	// need a restart (warnRestartOnly).
	return s.adminGate(ui.NewHostCheck(cfg.Admin.Listen, cfg.Admin.Names), mux)
}

// only answers methods other than method (and HEAD for GET) with a JSON
// 405, where ServeMux's method patterns would answer plain text.
func only(method string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, "method not allowed", "")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// methodNotAllowed answers a known path's other methods with a JSON 405.
func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method not allowed", "")
	})
}

// dashboard builds the /ui/ handler (package ui) over the server's state.
// Its ban and unban forms go through manualBan and manualUnban, the admin
// API's own code.
func (s *Server) dashboard() http.Handler {
	cfg := ui.Config{
		Listen:       s.current.Load().cfg.Admin.Listen,
		Names:        s.current.Load().cfg.Admin.Names,
		Bans:         s.bans,
		Stats:        s.metrics.dash,
		Fleet:        s.fleetSource(s.current.Load().cfg),
		Authenticate: s.dashboardToken,
		Ban: func(target, duration, reason string) (rules.Ban, error) {
			var d *time.Duration
			if duration != "" {
				// The form's text is read as the API reads its JSON
				// duration: a number of seconds or a duration string.
				raw := []byte(duration)
				if _, err := strconv.ParseFloat(duration, 64); err != nil {
					raw = []byte(strconv.Quote(duration))
				}
				var dv durationValue
				if err := dv.UnmarshalJSON(raw); err != nil {
					// A *signer.DecodeError, whose text names the field.
					return rules.Ban{}, &banRefusal{http.StatusBadRequest, err.Error(), "duration"}
				}
				v := time.Duration(dv)
				d = &v
			}
			b, refused := s.manualBan(target, d, reason)
			if refused != nil {
				return rules.Ban{}, refused
			}
			return b, nil
		},
		Unban: func(target string) error {
			if refused := s.manualUnban(target); refused != nil {
				return refused
			}
			return nil
		},
		Jails: func() []string {
			return slices.Sorted(maps.Keys(s.current.Load().cfg.Jails))
		},
		Upstreams: s.upstreamHealth,
		// The listener's one lockout rule (adminGate), not "any ban":
		// an operator another jail banned can still unban themselves.
		Banned: s.lockedOut,
		BadToken: func(client netip.Addr) {
			s.current.Load().jails.Report(jailAdmin, client, "bad admin token")
			s.noteAdminBan(client)
		},
		Audit: s.log.With("component", "audit"),
		Log:   s.log.With("component", "ui"),
	}
	if s.tls != nil {
		cfg.Certificates = s.tls
	}
	if s.firewall != nil {
		cfg.Firewall = func(ctx context.Context) (ui.FirewallStatus, error) {
			st, err := s.firewall.Status(ctx)
			if err != nil {
				return ui.FirewallStatus{}, err
			}
			fs := ui.FirewallStatus{Backend: st.Backend, Entries: len(st.Entries), Want: st.Want,
				Missing: st.Missing, Stale: st.Stale, LastPass: st.LastPass}
			if st.LastError != nil {
				fs.LastError = st.LastError.Error()
			}
			return fs, nil
		}
	}
	h, err := ui.New(cfg)
	if err != nil {
		// Only a programming error gets here: every field is set above.
		s.log.Error("dashboard unavailable", "error", err)
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusInternalServerError, "dashboard unavailable", "")
		})
	}
	return h
}

// dashboardToken authenticates a dashboard session's admin token as
// authorize does: compared with every configured token, in constant time
// each.
func (s *Server) dashboardToken(presented string) (ui.Principal, bool) {
	if presented == "" {
		return ui.Principal{}, false
	}
	tokens := s.current.Load().cfg.Admin.Tokens
	var tok *config.Token
	for i := range tokens {
		if tokens[i].Token.Matches(presented) && tok == nil {
			tok = &tokens[i]
		}
	}
	if tok == nil {
		return ui.Principal{}, false
	}
	return ui.Principal{Name: tok.Name, Scopes: tok.Scopes}, true
}

// upstreamHealth lists the current runtime's upstreams with their
// passive health, by host.
func (s *Server) upstreamHealth() []ui.Upstream {
	rt := s.current.Load()
	seen := map[*route]bool{}
	var routes []*route
	for _, m := range []map[string]*route{rt.router.exact, rt.router.wildcard} {
		for _, r := range m {
			if !seen[r] {
				seen[r] = true
				routes = append(routes, r)
			}
		}
	}
	slices.SortFunc(routes, func(a, b *route) int { return strings.Compare(a.name, b.name) })
	var out []ui.Upstream
	for _, r := range routes {
		p, ok := r.proxy.Transport.(*pool)
		if !ok {
			continue
		}
		for _, u := range p.ups {
			up := ui.Upstream{Host: r.name, URL: u.url.Redacted()}
			if t := u.downUntil.Load(); t != 0 {
				up.DownUntil = time.Unix(0, t)
			}
			out = append(out, up)
		}
	}
	return out
}
