package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/rules"
	"gatehouse/signer"
)

// Admin API scopes (DESIGN.md).
const (
	scopeBansRead  = "bans:read"
	scopeBansWrite = "bans:write"
)

// MaxBody bounds an admin API request body, in bytes.
const MaxBody = 64 << 10

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
	return apiBan{IP: b.IP(), Jail: b.Jail, Reason: b.Reason, Until: b.Until.UTC(), Count: b.Count}
}

// Jail receives failed admin API authentications (a token that matches
// none), as fail2ban's jails receive failed logins.
const Jail = "admin"

// authorize finds the token of the request's bearer credentials and
// checks it carries scope. On failure it answers 401 or 403 itself and
// returns that status; on success it returns the token, and status 0.
// A wrong token is an offence for the admin jail (a missing one is not,
// as basic auth does not count the unauthenticated first request). A
// client the admin jail banned never gets here: adminGate refuses it
// before any token is looked at, so it cannot go on guessing.
func (a *Admin) authorize(w http.ResponseWriter, r *http.Request, scope string, client netip.Addr) (tok *Token, status int) {
	cur := a.cfg.Current()
	tokens := cur.Tokens
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
		if tokens[i].Secret.Matches(presented) && tok == nil {
			tok = &tokens[i]
		}
	}
	if tok == nil {
		cur.Jails.Report(Jail, client, "bad admin token")
		a.noteAdminBan(client)
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
	// token is the authenticated token; nil when none was.
	token *Token
	// resource is what the call acted on or asked for (s3://bucket/key, a
	// URL without its query, a ban's address or prefix); never a secret
	// or a signature.
	resource string
	// banFor is a ban call's duration as asked ("2h", "600"), "" when the
	// call is not a ban or gave none.
	banFor string
}

// auditWriter is the ResponseWriter of an audited call: it keeps the
// error writeError answered with, for the audit line's result.
type auditWriter struct {
	http.ResponseWriter
	msg, field string
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (aw *auditWriter) Unwrap() http.ResponseWriter { return aw.ResponseWriter }

// result is the audit line's result: "ok", or the error the client got.
func (aw *auditWriter) result(status int) string {
	switch {
	case status < 400:
		return "ok"
	case aw.field != "":
		return aw.field + ": " + aw.msg
	}
	return aw.msg
}

// audited wraps an admin API handler: it authorises scope and writes one
// audit line per call — who, what, when, result. Tokens never appear.
func (a *Admin) audited(scope string, h func(w http.ResponseWriter, r *http.Request) (status int)) http.Handler {
	return a.auditedCall(scope, func(w http.ResponseWriter, r *http.Request, _ *auditRecord) int { return h(w, r) }, nil)
}

// auditedCall is audited for a handler that names the resource it acted
// on in the audit line: token name, method, path, action (the scope),
// resource, ban duration, client IP, status, result and duration. A
// call authorize refuses (no or wrong token, missing scope) is still
// described by describe, when not nil, so its audit line names what was
// asked; describe reads the body only of an authenticated caller
// (rec.token set).
func (a *Admin) auditedCall(scope string, h func(w http.ResponseWriter, r *http.Request, rec *auditRecord) (status int),
	describe func(r *http.Request, rec *auditRecord)) http.Handler {
	audit := a.log.With("component", "audit")
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &auditWriter{ResponseWriter: rw}
		client := peerAddr(r)
		tok, status := a.authorize(w, r, scope, client)
		rec := &auditRecord{token: tok}
		if status == 0 && r.ContentLength > MaxBody {
			// Refused before reading: the body is over the bound whatever
			// it holds.
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is over the limit of %d", r.ContentLength, MaxBody), "body")
			status = http.StatusRequestEntityTooLarge
		} else if status == 0 {
			status = h(w, r, rec)
		} else if describe != nil {
			describe(r, rec)
		}
		who := ""
		if tok != nil {
			who = tok.Name
		}
		attrs := []any{"token", who, "method", r.Method, "path", auditText(r.URL.Path), "action", scope, "resource", rec.resource}
		if rec.banFor != "" {
			attrs = append(attrs, "ban_duration", rec.banFor)
		}
		attrs = append(attrs, "client_ip", client, "status", status, "result", w.result(status), "duration", time.Since(start).Seconds())
		audit.Info("admin call", attrs...)
	})
}

// readBody reads an admin API request body of at most MaxBody
// bytes. When it cannot, it answers itself (413 over the bound) and
// returns that status; otherwise status is 0.
func readBody(w http.ResponseWriter, r *http.Request) (body []byte, status int) {
	rw := w
	if aw, ok := w.(*auditWriter); ok {
		rw = aw.ResponseWriter // so the server closes the connection after a 413
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over the limit of %d bytes", MaxBody), "body")
		return nil, http.StatusRequestEntityTooLarge
	case err != nil:
		writeError(w, http.StatusBadRequest, "unreadable body", "body")
		return nil, http.StatusBadRequest
	}
	return body, 0
}

// durationValue is a ban duration given as a string ("15m", "2h", "1d")
// or a number of seconds. Both forms have the one cap, maxBanDuration.
type durationValue time.Duration

// UnmarshalJSON reads either form; a bad or over-cap value is a
// *signer.DecodeError for field duration.
func (d *durationValue) UnmarshalJSON(b []byte) error {
	bad := func(format string, args ...any) error {
		return &signer.DecodeError{Field: "duration", Msg: fmt.Sprintf(format, args...)}
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		secs, err := strconv.ParseFloat(string(n), 64)
		switch {
		case err != nil || secs < 0:
			return bad("%s is not a number of seconds of at least 0", n)
		case secs > maxBanDuration.Seconds():
			// Compared before converting: a huge float would overflow.
			return bad("%s seconds %s", n, overBanCap)
		}
		*d = durationValue(time.Duration(secs * float64(time.Second)))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return bad(`want a duration such as "15m" or a number of seconds`)
	}
	v, err := signer.ParseDuration(s)
	switch {
	case err != nil:
		return bad("%v", err)
	case v > maxBanDuration:
		return bad("%q %s", s, overBanCap)
	}
	*d = durationValue(v)
	return nil
}

// maxBanDuration caps a manual ban at ten years, as jails cap theirs. It
// is the one cap for every form a duration comes in: a JSON number or
// string (API, CLI) and the dashboard's form.
const maxBanDuration = 10 * 365 * 24 * time.Hour

// overBanCap ends the message refusing a duration over maxBanDuration.
const overBanCap = "is more than the maximum ban of 3650d (ten years)"

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
		if p.Bits() == 0 {
			return netip.Prefix{}, fmt.Errorf("%s would ban every address", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
	}
	if a.Zone() != "" {
		// A zone names an interface of this host, not a client; dropping
		// it would ban an address the caller did not write.
		return netip.Prefix{}, fmt.Errorf("%q has a zone; give the address without it", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (a *Admin) listBans(w http.ResponseWriter, _ *http.Request) int {
	bans := a.cfg.Bans.List()
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

func (a *Admin) addBan(w http.ResponseWriter, r *http.Request, rec *auditRecord) int {
	body, status := readBody(w, r)
	if status != 0 {
		return status
	}
	describeBanBody(body, rec)
	req, err := signer.Decode[banRequest](bytes.NewReader(body))
	if err != nil {
		field, msg := "body", err.Error()
		if de := (*signer.DecodeError)(nil); errors.As(err, &de) {
			field, msg = de.Field, de.Msg
		}
		writeError(w, http.StatusBadRequest, msg, field)
		return http.StatusBadRequest
	}
	var d *time.Duration
	if req.Duration != nil {
		v := time.Duration(*req.Duration)
		d = &v
	}
	b, refused := a.manualBan(req.IP, d, req.Reason)
	if refused != nil {
		writeError(w, refused.status, refused.msg, refused.field)
		return refused.status
	}
	writeJSON(w, http.StatusCreated, toAPIBan(b))
	return http.StatusCreated
}

// describeBan names, for the audit line of a POST /v1/bans refused
// before its handler ran, the address or prefix and the duration asked.
func describeBan(r *http.Request, rec *auditRecord) {
	if rec.token == nil {
		return // an unauthenticated body is not worth reading
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody))
	if err == nil {
		describeBanBody(body, rec)
	}
}

// describeBanBody reads the ban target and duration from a POST
// /v1/bans body as far as it parses, even when it is invalid, so the
// audit line of a refused ban still names them.
func describeBanBody(body []byte, rec *auditRecord) {
	var loose struct {
		IP       json.RawMessage `json:"ip"`
		Duration json.RawMessage `json:"duration"`
	}
	if json.Unmarshal(body, &loose) != nil {
		return
	}
	var ip string
	if json.Unmarshal(loose.IP, &ip) == nil {
		rec.resource = banResource(ip)
	}
	if len(loose.Duration) > 0 {
		var s string
		if json.Unmarshal(loose.Duration, &s) != nil {
			s = string(loose.Duration)
		}
		rec.banFor = auditResource(s)
	}
}

// describeUnban names the target of a DELETE /v1/bans/{ip} refused
// before its handler ran.
func describeUnban(r *http.Request, rec *auditRecord) {
	rec.resource = banResource(r.PathValue("ip"))
}

// banResource is a ban target as the audit line names it: the parsed
// prefix (203.0.113.7/32) when it parses, the text as given otherwise.
func banResource(target string) string {
	if p, err := parseBanTarget(target); err == nil {
		return p.String()
	}
	return auditResource(target)
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
func (a *Admin) manualBan(target string, d *time.Duration, reason string) (rules.Ban, *banRefusal) {
	prefix, err := parseBanTarget(target)
	if err != nil {
		return rules.Ban{}, &banRefusal{http.StatusUnprocessableEntity, err.Error(), "ip"}
	}
	dur := defaultManualBan
	if d != nil {
		dur = *d
	}
	switch {
	case dur <= 0:
		return rules.Ban{}, &banRefusal{http.StatusUnprocessableEntity, "duration must be greater than 0", "duration"}
	case dur > maxBanDuration:
		// durationValue refuses these already; a caller passing a
		// time.Duration meets the same cap.
		return rules.Ban{}, &banRefusal{http.StatusUnprocessableEntity, signer.FormatDuration(dur) + " " + overBanCap, "duration"}
	}
	if len(reason) > 256 {
		return rules.Ban{}, &banRefusal{http.StatusUnprocessableEntity, "reason is longer than 256 bytes", "reason"}
	}
	now := time.Now()
	b, err := a.cfg.Bans.Ban(rules.Ban{Prefix: prefix, Reason: reason, Until: now.Add(dur), Created: now})
	switch {
	case errors.Is(err, rules.ErrAllowed):
		return rules.Ban{}, &banRefusal{http.StatusUnprocessableEntity, prefix.String() + " overlaps the allow list", "ip"}
	case err != nil:
		return rules.Ban{}, &banRefusal{http.StatusUnprocessableEntity, err.Error(), "ip"}
	}
	if err := a.saveBan(b); err != nil {
		a.log.Error("persist manual ban", "prefix", b.Prefix, "error", err)
		return rules.Ban{}, &banRefusal{http.StatusInternalServerError, "the ban is active but could not be saved", ""}
	}
	a.log.Info("manual ban", "prefix", b.Prefix, "until", b.Until, "reason", b.Reason)
	return b, nil
}

func (a *Admin) deleteBan(w http.ResponseWriter, r *http.Request, rec *auditRecord) int {
	describeUnban(r, rec)
	if refused := a.manualUnban(r.PathValue("ip")); refused != nil {
		writeError(w, refused.status, refused.msg, refused.field)
		return refused.status
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

// manualUnban lifts the ban of exactly target, an address or CIDR
// prefix, and saves that before returning. It is the one code path of
// DELETE /v1/bans/{ip} and the dashboard's unban form.
func (a *Admin) manualUnban(target string) *banRefusal {
	prefix, err := parseBanTarget(target)
	if err != nil {
		return &banRefusal{http.StatusBadRequest, err.Error(), "ip"}
	}
	if !a.cfg.Bans.Unban(prefix) {
		return &banRefusal{http.StatusNotFound, "no ban for " + prefix.String(), "ip"}
	}
	a.locks.drop(prefix)
	if err := a.unsaveBan(prefix); err != nil {
		a.log.Error("persist unban", "prefix", prefix, "error", err)
		return &banRefusal{http.StatusInternalServerError, "the ban is lifted but the change could not be saved", ""}
	}
	a.log.Info("manual unban", "prefix", prefix)
	return nil
}

// saveBan makes a manual ban durable, when the gateway saves bans.
func (a *Admin) saveBan(b rules.Ban) error {
	if a.cfg.SaveBan == nil {
		return nil
	}
	return a.cfg.SaveBan(b)
}

// unsaveBan makes a manual unban durable, when the gateway saves bans.
func (a *Admin) unsaveBan(p netip.Prefix) error {
	if a.cfg.DeleteBan == nil {
		return nil
	}
	return a.cfg.DeleteBan(p)
}
