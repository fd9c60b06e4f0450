package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// Session limits.
const (
	// sessionTTL is how long a sign-in lasts.
	sessionTTL = 8 * time.Hour
	// maxSessions bounds the sessions held; signing in beyond it ends
	// the oldest.
	maxSessions = 256
)

// Cookie names. Over TLS the session cookie carries the __Host- prefix,
// which browsers accept only Secure, host-only and on path / (RFC 6265bis
// §4.1.3.2), so no other site or subdomain can plant one.
const (
	sessionCookie       = "gatehouse_session"
	secureSessionCookie = "__Host-gatehouse_session"
	loginCookie         = "gatehouse_login"
	secureLoginCookie   = "__Host-gatehouse_login"
)

// session is one signed-in browser.
type session struct {
	// token is the admin token presented at sign-in, held in memory only
	// and authenticated again on every request, so a token removed or
	// stripped of its scope by a reload ends its sessions at once.
	token   string
	csrf    string // the form token of this session
	created time.Time
	flash   flash // shown once by the next page
}

// flash is a one-time message of a form's result.
type flash struct {
	Msg string
	Err bool
}

// sessions holds the sessions, keyed by the SHA-256 of their cookie
// value. Safe for concurrent use.
type sessions struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[[sha256.Size]byte]*session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, m: map[[sha256.Size]byte]*session{}}
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	var b [32]byte
	// crypto/rand.Read never fails (Go 1.24).
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session for an authenticated token and returns its
// cookie value.
func (ss *sessions) create(token string) (string, *session) {
	id := randomToken()
	now := ss.now()
	s := &session{token: token, csrf: randomToken(), created: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var oldest [sha256.Size]byte
	var oldestAt time.Time
	for k, o := range ss.m {
		if now.Sub(o.created) >= sessionTTL {
			delete(ss.m, k)
		} else if oldestAt.IsZero() || o.created.Before(oldestAt) {
			oldest, oldestAt = k, o.created
		}
	}
	if len(ss.m) >= maxSessions {
		delete(ss.m, oldest)
	}
	ss.m[sha256.Sum256([]byte(id))] = s
	return id, s
}

// get returns the live session of cookie value id, or nil.
func (ss *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	k := sha256.Sum256([]byte(id))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[k]
	if s != nil && ss.now().Sub(s.created) >= sessionTTL {
		delete(ss.m, k)
		return nil
	}
	return s
}

// end removes the session of cookie value id.
func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(id)))
}

// setFlash leaves a message for the session's next page.
func (ss *sessions) setFlash(s *session, f flash) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.flash = f
}

// takeFlash returns and clears the session's message.
func (ss *sessions) takeFlash(s *session) flash {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f := s.flash
	s.flash = flash{}
	return f
}

// sameToken compares a submitted form token with the expected one in
// constant time; an empty expected token never matches.
func sameToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// secure reports whether r came over TLS: cookies are then Secure.
func secure(r *http.Request) bool { return r.TLS != nil }

func sessionCookieName(r *http.Request) string {
	if secure(r) {
		return secureSessionCookie
	}
	return sessionCookie
}

func loginCookieName(r *http.Request) string {
	if secure(r) {
		return secureLoginCookie
	}
	return loginCookie
}

// setCookie sets an HttpOnly, SameSite=Strict cookie on path /, Secure
// over TLS; maxAge < 0 deletes it.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   secure(r),
		SameSite: http.SameSiteStrictMode,
	})
}

// cookieValue returns the value of the request's cookie name, "" if none.
func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}
