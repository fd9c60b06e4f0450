package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"gatehouse/proxy/ui"
	"gatehouse/rules"
	"gatehouse/signer"

	"github.com/prometheus/client_golang/prometheus"
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

// Config configures the admin listener's handler. Fields marked
// required must be set; the others may be left zero.
type Config struct {
	// Listen and Names are admin.listen and admin.names: the host names
	// and addresses the listener answers to (gate.go). Bound at start: a
	// change takes a restart.
	Listen string
	Names  []string
	// Current returns what the running config has built: it is called on
	// every request, so a reload's tokens, jails and signers take effect
	// at once. Required.
	Current func() Current
	// Bans is the gateway's ban list. Required.
	Bans *rules.BanList
	// SaveBan and DeleteBan make a manual ban or unban durable before the
	// API answers. nil: bans live in memory only.
	SaveBan   func(rules.Ban) error
	DeleteBan func(netip.Prefix) error
	// Ready reports whether the gateway serves (/readyz). Required.
	Ready func() bool
	// Metrics is exposed on /metrics, with the exposition's own error
	// counter registered in it. Required.
	Metrics *prometheus.Registry
	// Stats feeds the dashboard's charts. Required.
	Stats *ui.Stats
	// Fleet, Certificates, Firewall and Upstreams feed the dashboard's
	// panels; nil hides a panel (no fleet, no TLS, no kernel firewall).
	Fleet        ui.FleetSource
	Certificates ui.CertSource
	Firewall     func(ctx context.Context) (ui.FirewallStatus, error)
	Upstreams    func() []ui.Upstream
	Watch        func() []ui.WatchSource
	// Intel lists the feeds and trusted-proxy lists; nil: none.
	Intel func() []ui.IntelList
	// GeoBlocks counts the geo rules' refusals; nil: none.
	GeoBlocks func() []ui.GeoBlock
	// Log receives the listener's log; its audit lines go to Log with
	// component=audit. nil: discard.
	Log *slog.Logger
}

// Current is what one config has built that the admin listener uses.
type Current struct {
	// Tokens are admin.tokens.
	Tokens []Token
	// JailNames are the configured jails, sorted, for the dashboard.
	JailNames []string
	// Jails receive the admin jail's offences (wrong tokens).
	Jails *rules.Jails
	// Signing serves /v1/sign.
	Signing *Signing
}

// Token is one admin API token (admin.tokens[]).
type Token struct {
	// Name identifies the token in the audit log.
	Name string
	// Secret tells, in constant time, whether a presented token is this
	// one.
	Secret interface{ Matches(presented string) bool }
	// Scopes are what the token may do: "bans:read", "sign:s3", ….
	Scopes []string
	// Prefixes limit what the token may sign; empty: anything.
	Prefixes signer.Prefixes
}

// Admin is the admin listener's handler: health, readiness, metrics,
// the token-authenticated /v1 API and the dashboard, all behind the
// listener's Host, lockout and cross-origin rules (gate). It is only
// ever bound to admin.listen, never to the public listener. It is safe
// for concurrent use.
type Admin struct {
	cfg Config
	log *slog.Logger
	// locks remembers the admin jail's bans past their replacement in
	// the ban list (lockedOut).
	locks   adminLocks
	handler http.Handler
}

var _ http.Handler = (*Admin)(nil)

// New builds the admin listener's handler.
func New(cfg Config) (*Admin, error) {
	switch {
	case cfg.Current == nil:
		return nil, errors.New("admin: no Current")
	case cfg.Bans == nil:
		return nil, errors.New("admin: no ban list")
	case cfg.Ready == nil:
		return nil, errors.New("admin: no Ready")
	case cfg.Metrics == nil:
		return nil, errors.New("admin: no metrics")
	case cfg.Stats == nil:
		return nil, errors.New("admin: no dashboard stats")
	}
	a := &Admin{cfg: cfg, log: cfg.Log}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("/healthz", only(http.MethodGet, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})))
	mux.Handle("/readyz", only(http.MethodGet, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !cfg.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})))
	mux.Handle("/metrics", only(http.MethodGet,
		promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{Registry: cfg.Metrics})))
	mux.Handle("GET /v1/bans", a.audited(scopeBansRead, a.listBans))
	mux.Handle("POST /v1/bans", a.auditedCall(scopeBansWrite, a.addBan, describeBan))
	mux.Handle("DELETE /v1/bans/{ip...}", a.auditedCall(scopeBansWrite, a.deleteBan, describeUnban))
	mux.Handle("/v1/bans", methodNotAllowed("GET, POST"))
	mux.Handle("/v1/bans/", methodNotAllowed("DELETE"))
	mux.Handle("POST /v1/sign/s3", a.auditedCall(scopeSignS3, a.signS3, describeSign(s3Resource)))
	mux.Handle("POST /v1/sign/cloudfront", a.auditedCall(scopeSignCloudFront, a.signCloudFront, describeSign(cloudFrontResource)))
	mux.Handle("POST /v1/sign/link", a.auditedCall(scopeSignLink, a.signLink, describeSign(linkResource)))
	mux.Handle("/v1/sign/s3", methodNotAllowed("POST"))
	mux.Handle("/v1/sign/cloudfront", methodNotAllowed("POST"))
	mux.Handle("/v1/sign/link", methodNotAllowed("POST"))
	dash, err := a.dashboard()
	if err != nil {
		return nil, err
	}
	mux.Handle("/ui/", dash)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint", "")
	})
	a.handler = a.gate(ui.NewHostCheck(cfg.Listen, cfg.Names), mux)
	return a, nil
}

// ServeHTTP serves one request on the admin listener.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.handler.ServeHTTP(w, r)
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

// dashboard builds the /ui/ handler (package ui) over the gateway's state.
// Its ban and unban forms go through manualBan and manualUnban, the admin
// API's own code.
func (a *Admin) dashboard() (http.Handler, error) {
	cfg := ui.Config{
		Listen:       a.cfg.Listen,
		Names:        a.cfg.Names,
		Bans:         a.cfg.Bans,
		Stats:        a.cfg.Stats,
		Fleet:        a.cfg.Fleet,
		Certificates: a.cfg.Certificates,
		Firewall:     a.cfg.Firewall,
		Authenticate: a.dashboardToken,
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
			b, refused := a.manualBan(target, d, reason)
			if refused != nil {
				return rules.Ban{}, refused
			}
			return b, nil
		},
		Unban: func(target string) error {
			if refused := a.manualUnban(target); refused != nil {
				return refused
			}
			return nil
		},
		Jails: func() []string {
			return a.cfg.Current().JailNames
		},
		Upstreams: a.cfg.Upstreams,
		Watch:     a.cfg.Watch,
		Intel:     a.cfg.Intel,
		GeoBlocks: a.cfg.GeoBlocks,
		// The listener's one lockout rule (adminGate), not "any ban":
		// an operator another jail banned can still unban themselves.
		Banned: a.lockedOut,
		BadToken: func(client netip.Addr) {
			a.cfg.Current().Jails.Report(Jail, client, "bad admin token")
			a.noteAdminBan(client)
		},
		Audit: a.log.With("component", "audit"),
		Log:   a.log.With("component", "ui"),
	}
	return ui.New(cfg)
}

// dashboardToken authenticates a dashboard session's admin token as
// authorize does: compared with every configured token, in constant time
// each.
func (a *Admin) dashboardToken(presented string) (ui.Principal, bool) {
	if presented == "" {
		return ui.Principal{}, false
	}
	tokens := a.cfg.Current().Tokens
	var tok *Token
	for i := range tokens {
		if tokens[i].Secret.Matches(presented) && tok == nil {
			tok = &tokens[i]
		}
	}
	if tok == nil {
		return ui.Principal{}, false
	}
	return ui.Principal{Name: tok.Name, Scopes: tok.Scopes}, true
}
