package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/proxy/config"
	"gatehouse/rules"
)

// Admin API scopes (DESIGN.md).
const (
	scopeBansRead  = "bans:read"
	scopeBansWrite = "bans:write"
)

// maxAdminBody bounds an admin API request body.
const maxAdminBody = 64 << 10

// defaultManualBan is the length of a manual ban without a duration.
const defaultManualBan = time.Hour

// apiBan is a ban as the admin API shows it.
type apiBan struct {
	IP     string    `json:"ip"`
	Jail   string    `json:"jail"`
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
	Count  int       `json:"count"`
}

func toAPIBan(b rules.Ban) apiBan {
	ip := b.Prefix.String()
	if b.Prefix.IsSingleIP() {
		ip = b.Prefix.Addr().String()
	}
	return apiBan{IP: ip, Jail: b.Jail, Reason: b.Reason, Until: b.Until.UTC(), Count: b.Count}
}

// authorize finds the token of the request's bearer credentials and
// checks it carries scope. On failure it answers 401 or 403 itself and
// returns that status; on success it returns the token's name, for the
// audit log, and status 0.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, scope string) (who string, status int) {
	tokens := s.current.Load().cfg.Admin.Tokens
	auth := r.Header["Authorization"]
	var presented string
	if len(auth) == 1 && len(auth[0]) > 7 && strings.EqualFold(auth[0][:7], "bearer ") {
		presented = strings.TrimSpace(auth[0][7:])
	}
	if presented == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse admin"`)
		writeError(w, http.StatusUnauthorized, "a bearer token is required", "")
		return "", http.StatusUnauthorized
	}
	var tok *config.Token
	// Every token is compared (constant time each), so timing does not
	// tell which one matched.
	for i := range tokens {
		if tokens[i].Token.Matches(presented) && tok == nil {
			tok = &tokens[i]
		}
	}
	if tok == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse admin", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "unknown token", "")
		return "", http.StatusUnauthorized
	}
	if !slices.Contains(tok.Scopes, scope) {
		writeError(w, http.StatusForbidden, "token "+tok.Name+" lacks scope "+scope, "")
		return tok.Name, http.StatusForbidden
	}
	return tok.Name, 0
}

// audited wraps an admin API handler: it authorises scope and writes one
// audit line per call — who, what, when, result. Tokens never appear.
func (s *Server) audited(scope string, h func(w http.ResponseWriter, r *http.Request) (status int)) http.Handler {
	audit := s.log.With("component", "audit")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		who, status := s.authorize(w, r, scope)
		if status == 0 {
			status = h(w, r)
		}
		audit.Info("admin call", "token", who, "method", r.Method, "path", r.URL.Path,
			"remote", r.RemoteAddr, "status", status, "duration", time.Since(start).Seconds())
	})
}

// durationValue is a duration given as a string ("15m", "2h", "1d") or a
// number of seconds.
type durationValue time.Duration

// durationError is a bad duration value; its type tells the handler which
// field to name.
type durationError struct{ msg string }

func (e *durationError) Error() string { return e.msg }

func (d *durationValue) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		secs, err := strconv.ParseFloat(string(n), 64)
		if err != nil || secs < 0 || secs > float64(maxBanDuration/time.Second) {
			return &durationError{fmt.Sprintf("%s is not a number of seconds between 0 and %d", n, int64(maxBanDuration/time.Second))}
		}
		*d = durationValue(time.Duration(secs * float64(time.Second)))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &durationError{`want a duration such as "15m" or a number of seconds`}
	}
	v, err := config.ParseDuration(s)
	if err != nil {
		return &durationError{err.Error()}
	}
	*d = durationValue(v)
	return nil
}

// maxBanDuration caps a manual ban at ten years, as jails cap theirs.
const maxBanDuration = 10 * 365 * 24 * time.Hour

// banRequest is POST /v1/bans.
type banRequest struct {
	IP       string         `json:"ip"`
	Duration *durationValue `json:"duration"`
	Reason   string         `json:"reason"`
}

// parseBanTarget parses an address or a prefix; a bare address bans that
// address alone.
func parseBanTarget(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
		}
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("%s has host bits set; did you mean %s?", s, p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (s *Server) listBans(w http.ResponseWriter, _ *http.Request) int {
	bans := s.bans.List()
	slices.SortFunc(bans, func(a, b rules.Ban) int { return a.Until.Compare(b.Until) })
	out := make([]apiBan, 0, len(bans))
	now := time.Now()
	for _, b := range bans {
		if b.Until.After(now) {
			out = append(out, toAPIBan(b))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return http.StatusOK
}

func (s *Server) addBan(w http.ResponseWriter, r *http.Request) int {
	var req banRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		field := ""
		var ute *json.UnmarshalTypeError
		var de *durationError
		switch {
		case errors.As(err, &de):
			field = "duration"
		case errors.As(err, &ute):
			field = ute.Field
		}
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error(), field)
		return http.StatusBadRequest
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "one JSON object expected", "")
		return http.StatusBadRequest
	}
	prefix, err := parseBanTarget(req.IP)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error(), "ip")
		return http.StatusUnprocessableEntity
	}
	d := defaultManualBan
	if req.Duration != nil {
		d = time.Duration(*req.Duration)
	}
	if d <= 0 {
		writeError(w, http.StatusUnprocessableEntity, "duration must be greater than 0", "duration")
		return http.StatusUnprocessableEntity
	}
	if len(req.Reason) > 256 {
		writeError(w, http.StatusUnprocessableEntity, "reason is longer than 256 bytes", "reason")
		return http.StatusUnprocessableEntity
	}
	now := time.Now()
	b, err := s.bans.Ban(rules.Ban{Prefix: prefix, Reason: req.Reason, Until: now.Add(d), Created: now})
	switch {
	case errors.Is(err, rules.ErrAllowed):
		writeError(w, http.StatusUnprocessableEntity, prefix.String()+" overlaps the allow list", "ip")
		return http.StatusUnprocessableEntity
	case err != nil:
		writeError(w, http.StatusUnprocessableEntity, err.Error(), "ip")
		return http.StatusUnprocessableEntity
	}
	if err := s.persistBan(b); err != nil {
		s.log.Error("persist manual ban", "prefix", b.Prefix, "error", err)
		writeError(w, http.StatusInternalServerError, "the ban is active but could not be saved", "")
		return http.StatusInternalServerError
	}
	s.log.Info("manual ban", "prefix", b.Prefix, "until", b.Until, "reason", b.Reason)
	writeJSON(w, http.StatusCreated, toAPIBan(b))
	return http.StatusCreated
}

func (s *Server) deleteBan(w http.ResponseWriter, r *http.Request) int {
	prefix, err := parseBanTarget(r.PathValue("ip"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "ip")
		return http.StatusBadRequest
	}
	if !s.bans.Unban(prefix) {
		writeError(w, http.StatusNotFound, "no ban for "+prefix.String(), "ip")
		return http.StatusNotFound
	}
	if err := s.unpersistBan(prefix); err != nil {
		s.log.Error("persist unban", "prefix", prefix, "error", err)
		writeError(w, http.StatusInternalServerError, "the ban is lifted but the change could not be saved", "")
		return http.StatusInternalServerError
	}
	s.log.Info("manual unban", "prefix", prefix)
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}
