package ui

import (
	"net/http"
)

// maxFormBody bounds a form submission.
const maxFormBody = 16 << 10

// visit is an authenticated request: its session and token.
type visit struct {
	id   string // the session cookie's value
	sess *session
	p    Principal
}

// signedIn returns the request's session when it is live and its token
// still authenticates with a scope that may sign in. A session whose
// token no longer does is ended.
func (h *Handler) signedIn(r *http.Request) (visit, bool) {
	id := cookieValue(r, sessionCookieName(r))
	s := h.sess.get(id)
	if s == nil {
		return visit{}, false
	}
	p, ok := h.cfg.Authenticate(s.token)
	if !ok || !p.canView() {
		h.sess.end(id)
		return visit{}, false
	}
	return visit{id: id, sess: s, p: p}, true
}

// viewer serves a page to a signed-in browser; others are sent to the
// sign-in page.
func (h *Handler) viewer(fn func(http.ResponseWriter, *http.Request, visit)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok := h.signedIn(r)
		if !ok {
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		fn(w, r, v)
	}
}

// form checks a form submission of a signed-in browser: same origin
// (Sec-Fetch-Site or Origin, when the browser sends them) and the
// session's CSRF token. Any failure is 403.
func (h *Handler) form(fn func(http.ResponseWriter, *http.Request, visit)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h.cop.Check(r); err != nil {
			h.errorPage(w, r, http.StatusForbidden, "cross-origin request refused")
			return
		}
		v, ok := h.signedIn(r)
		if !ok {
			h.errorPage(w, r, http.StatusForbidden, "sign in first")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		if err := r.ParseForm(); err != nil {
			h.errorPage(w, r, http.StatusBadRequest, "unreadable form")
			return
		}
		if !sameToken(r.PostForm.Get("csrf"), v.sess.csrf) {
			h.cfg.Audit.Warn("ui form refused", "token", v.p.Name, "path", r.URL.Path,
				"remote", r.RemoteAddr, "status", http.StatusForbidden, "why", "csrf token missing or wrong")
			h.errorPage(w, r, http.StatusForbidden, "the form is stale or forged: reload the page and try again")
			return
		}
		fn(w, r, v)
	}
}

// writer is form for actions that change bans: they need a token with
// bans:write.
func (h *Handler) writer(fn func(http.ResponseWriter, *http.Request, visit)) http.HandlerFunc {
	return h.form(func(w http.ResponseWriter, r *http.Request, v visit) {
		if !v.p.canWrite() {
			h.cfg.Audit.Warn("ui form refused", "token", v.p.Name, "path", r.URL.Path,
				"remote", r.RemoteAddr, "status", http.StatusForbidden, "why", "token lacks scope "+ScopeBansWrite)
			h.errorPage(w, r, http.StatusForbidden, "token "+v.p.Name+" lacks scope "+ScopeBansWrite)
			return
		}
		fn(w, r, v)
	})
}

// loginData is the sign-in page's data.
type loginData struct {
	Error string
}

// loginPage shows the sign-in form. Its CSRF token is a random value
// also set as a cookie (double submit): a form posted from elsewhere
// cannot know it.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.signedIn(r); ok {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	h.renderLogin(w, r, http.StatusOK, "")
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	token := randomToken()
	setCookie(w, r, loginCookieName(r), token, 600)
	h.render(w, r, code, "login", page{Title: "Sign in", CSRF: token, Data: loginData{Error: msg}})
}

// login exchanges an admin token with scope ui or bans:write for a
// session cookie.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if err := h.cop.Check(r); err != nil {
		h.errorPage(w, r, http.StatusForbidden, "cross-origin request refused")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "unreadable form")
		return
	}
	if !sameToken(r.PostForm.Get("csrf"), cookieValue(r, loginCookieName(r))) {
		h.cfg.Audit.Warn("ui sign-in refused", "remote", r.RemoteAddr, "status", http.StatusForbidden, "why", "csrf token missing or wrong")
		h.errorPage(w, r, http.StatusForbidden, "the sign-in form is stale or forged: reload the page and try again")
		return
	}
	p, ok := h.cfg.Authenticate(r.PostForm.Get("token"))
	if !ok || !p.canView() {
		why := "unknown token"
		if ok {
			why = "token lacks scope " + ScopeUI + " or " + ScopeBansWrite
		} else if h.cfg.BadToken != nil {
			h.cfg.BadToken(peer(r))
		}
		h.cfg.Audit.Warn("ui sign-in refused", "token", p.Name, "remote", r.RemoteAddr, "status", http.StatusUnauthorized, "why", why)
		h.renderLogin(w, r, http.StatusUnauthorized, "That token is unknown or lacks the ui scope.")
		return
	}
	id, _ := h.sess.create(r.PostForm.Get("token"))
	setCookie(w, r, loginCookieName(r), "", -1)
	setCookie(w, r, sessionCookieName(r), id, int(sessionTTL.Seconds()))
	h.cfg.Audit.Info("ui sign-in", "token", p.Name, "remote", r.RemoteAddr, "status", http.StatusSeeOther)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// logout ends the session.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request, v visit) {
	h.sess.end(v.id)
	setCookie(w, r, sessionCookieName(r), "", -1)
	h.cfg.Audit.Info("ui sign-out", "token", v.p.Name, "remote", r.RemoteAddr, "status", http.StatusSeeOther)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
