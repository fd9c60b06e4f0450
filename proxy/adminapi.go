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

// jailAdmin receives failed admin API authentications (a token that
// matches none), as fail2ban's jails receive failed logins.
const jailAdmin = "admin"

// authorize finds the token of the request's bearer credentials and
// checks it carries scope. On failure it answers 401 or 403 itself and
// returns that status; on success it returns the token, and status 0.
// A wrong token is an offence for the admin jail (a missing one is not,
// as basic auth does not count the unauthenticated first request), and a
// client the admin jail banned gets 403 before its token is looked at, so
// it cannot go on guessing. Bans from other jails and manual bans do not
// lock anyone out of the admin API: an operator can still lift them.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, scope string, client netip.Addr) (tok *config.Token, status int) {
	rt := s.current.Load()
	if b, banned := s.bans.Lookup(client); banned && b.Jail == jailAdmin {
		writeError(w, http.StatusForbidden, "banned", "")
		return nil, http.StatusForbidden
	}
	tokens := rt.cfg.Admin.Tokens
	auth := r.Header["Authorization"]
	var presented string
	if len(auth) == 1 && len(auth[0]) > 7 && strings.EqualFold(auth[0][:7], "bearer ") {
		presented = strings.TrimSpace(auth[0][7:])
	}
	if presented == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse admin"`)
		writeError(w, http.StatusUnauthorized, "a bearer token is required", "")
		return nil, http.StatusUnauthorized
	}
	// Every token is compared (constant time each), so timing does not
	// tell which one matched.
	for i := range tokens {
		if tokens[i].Token.Matches(presented) && tok == nil {
			tok = &tokens[i]
		}
	}
	if tok == nil {
		rt.jails.Report(jailAdmin, client, "bad admin token")
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse admin", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "unknown token", "")
		return nil, http.StatusUnauthorized
	}
	if !slices.Contains(tok.Scopes, scope) {
		writeError(w, http.StatusForbidden, "token "+tok.Name+" lacks scope "+scope, "")
		return tok, http.StatusForbidden
	}
	return tok, 0
}

// auditRecord is what a handler tells the audit log about its call.
type auditRecord struct {
	// token is the authorised token.
	token *config.Token
	// resource is what the call acted on (s3://bucket/key, a URL without
	// its query); never a secret or a signature.
	resource string
}

// audited wraps an admin API handler: it authorises scope and writes one
// audit line per call — who, what, when, result. Tokens never appear.
func (s *Server) audited(scope string, h func(w http.ResponseWriter, r *http.Request) (status int)) http.Handler {
	return s.auditedCall(scope, func(w http.ResponseWriter, r *http.Request, _ *auditRecord) int { return h(w, r) })
}

// auditedCall is audited for a handler that names the resource it acted
// on in the audit line: token name, method, path, action (the scope),
// resource, client IP, status and duration.
func (s *Server) auditedCall(scope string, h func(w http.ResponseWriter, r *http.Request, rec *auditRecord) (status int)) http.Handler {
	audit := s.log.With("component", "audit")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var client netip.Addr
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			client = ap.Addr().Unmap()
		}
		tok, status := s.authorize(w, r, scope, client)
		rec := &auditRecord{token: tok}
		if status == 0 {
			status = h(w, r, rec)
		}
		who := ""
		if tok != nil {
			who = tok.Name
		}
		audit.Info("admin call", "token", who, "method", r.Method, "path", r.URL.Path, "action", scope,
			"resource", rec.resource, "client_ip", client, "status", status, "duration", time.Since(start).Seconds())
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
	var d *time.Duration
	if req.Duration != nil {
		v := time.Duration(*req.Duration)
		d = &v
	}
	b, refused := s.manualBan(req.IP, d, req.Reason)
	if refused != nil {
		writeError(w, refused.status, refused.msg, refused.field)
		return refused.status
	}
	writeJSON(w, http.StatusCreated, toAPIBan(b))
	return http.StatusCreated
}

// banRefusal is a manual ban or unban that was refused or failed: the
// admin API's status, error message and field.
type banRefusal struct {
	status     int
	msg, field string
}

func (e *banRefusal) Error() string { return e.msg }

// manualBan bans target, an address or CIDR prefix, for d (nil: one
// hour) with reason, and saves the ban before returning. It is the one
// code path of POST /v1/bans and the dashboard's ban form.
func (s *Server) manualBan(target string, d *time.Duration, reason string) (rules.Ban, *banRefusal) {
	prefix, err := parseBanTarget(target)
	if err != nil {
		return rules.Ban{}, &banRefusal{http.StatusUnprocessableEntity, err.Error(), "ip"}
	}
	dur := defaultManualBan
	if d != nil {
		dur = *d
	}
	if dur <= 0 {
		return rules.Ban{}, &banRefusal{http.StatusUnprocessableEntity, "duration must be greater than 0", "duration"}
	}
	if len(reason) > 256 {
		return rules.Ban{}, &banRefusal{http.StatusUnprocessableEntity, "reason is longer than 256 bytes", "reason"}
	}
	now := time.Now()
	b, err := s.bans.Ban(rules.Ban{Prefix: prefix, Reason: reason, Until: now.Add(dur), Created: now})
	switch {
	case errors.Is(err, rules.ErrAllowed):
		return rules.Ban{}, &banRefusal{http.StatusUnprocessableEntity, prefix.String() + " overlaps the allow list", "ip"}
	case err != nil:
		return rules.Ban{}, &banRefusal{http.StatusUnprocessableEntity, err.Error(), "ip"}
	}
	if err := s.persistBan(b); err != nil {
		s.log.Error("persist manual ban", "prefix", b.Prefix, "error", err)
		return rules.Ban{}, &banRefusal{http.StatusInternalServerError, "the ban is active but could not be saved", ""}
	}
	s.log.Info("manual ban", "prefix", b.Prefix, "until", b.Until, "reason", b.Reason)
	return b, nil
}

func (s *Server) deleteBan(w http.ResponseWriter, r *http.Request) int {
	if refused := s.manualUnban(r.PathValue("ip")); refused != nil {
		writeError(w, refused.status, refused.msg, refused.field)
		return refused.status
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

// manualUnban lifts the ban of exactly target, an address or CIDR
// prefix, and saves that before returning. It is the one code path of
// DELETE /v1/bans/{ip} and the dashboard's unban form.
func (s *Server) manualUnban(target string) *banRefusal {
	prefix, err := parseBanTarget(target)
	if err != nil {
		return &banRefusal{http.StatusBadRequest, err.Error(), "ip"}
	}
	if !s.bans.Unban(prefix) {
		return &banRefusal{http.StatusNotFound, "no ban for " + prefix.String(), "ip"}
	}
	if err := s.unpersistBan(prefix); err != nil {
		s.log.Error("persist unban", "prefix", prefix, "error", err)
		return &banRefusal{http.StatusInternalServerError, "the ban is lifted but the change could not be saved", ""}
	}
	s.log.Info("manual unban", "prefix", prefix)
	return nil
}
