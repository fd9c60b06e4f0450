package proxy

import (
	"encoding/json"
	"net/http"

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
	w.WriteHeader(code)
	// The admin client may be gone; nothing else to do with the error.
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with the admin API's JSON error body; field names the
// request field at fault, if any.
func writeError(w http.ResponseWriter, code int, msg, field string) {
	writeJSON(w, code, apiError{Error: msg, Field: field})
}

// adminHandler serves the admin listener: health, readiness, metrics and
// the token-authenticated /v1 API.
// It is only ever bound to admin.listen, never to the public listener.
func (s *Server) adminHandler() http.Handler {
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
	mux.Handle("POST /v1/bans", s.audited(scopeBansWrite, s.addBan))
	mux.Handle("DELETE /v1/bans/{ip...}", s.audited(scopeBansWrite, s.deleteBan))
	mux.Handle("/v1/bans", methodNotAllowed("GET, POST"))
	mux.Handle("/v1/bans/", methodNotAllowed("DELETE"))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint", "")
	})
	return mux
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
