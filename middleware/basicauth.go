package middleware

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/middleware/htpasswd"
	"gatehouse/rules"
	"gatehouse/rules/filever"
	"gatehouse/rules/match"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Defaults of CredentialsConfig.
const (
	defaultAuthCacheSize = 4096
	defaultAuthCacheTTL  = 10 * time.Minute
	// maxAuthHeader bounds the Authorization value that is decoded at
	// all: real credentials are far shorter.
	maxAuthHeader = 4096
)

// CredentialsConfig configures a Credentials store.
type CredentialsConfig struct {
	// Path is the htpasswd file. Required.
	Path string
	// CacheSize bounds the cache of successful verifications (entries).
	// Default 4096.
	CacheSize int
	// CacheTTL is how long a successful verification is remembered.
	// Default 10m.
	CacheTTL time.Duration
	// MaxConcurrent bounds expensive hash verifications running at once
	// (bcrypt, SHA-crypt), so a password spray cannot take every CPU.
	// Default: the number of CPUs.
	MaxConcurrent int
	// AllowSlowHashes loads entries above htpasswd.MaxSafeBcryptCost or
	// htpasswd.MaxSafeSHACryptRounds. Default false: such a file is
	// refused (two wrong passwords for such a user would hold
	// every verification slot for minutes).
	AllowSlowHashes bool
}

// Credentials is an htpasswd file kept current on disk, with a cache of
// successful verifications: a logged-in browser pays bcrypt's cost once
// per CacheTTL, not on every request. It is safe for concurrent use.
//
// The cache key is a keyed SHA-256 of user, password and the stored hash,
// with a random per-process key: the cache holds no password, a changed
// line in the file can never hit an old entry, and a failed login is never
// cached (a wrong guess always costs the full hash).
type Credentials struct {
	path  string
	parse htpasswd.ParseConfig
	ttl   time.Duration
	key   [32]byte
	cache *lru.Cache[[32]byte, int64] // key → expiry, Unix nanoseconds
	sem   chan struct{}
	log   *slog.Logger
	now   func() time.Time

	users atomic.Pointer[htpasswd.File]
	mu    sync.Mutex      // serialises Refresh
	stamp filever.Version // of the loaded file; guarded by mu
	// empty remembers, per hash string of the loaded file, whether it
	// was made from the empty password, so a reload hashes only changed
	// lines; guarded by mu.
	empty map[string]bool
}

// NewCredentials loads cfg.Path and returns the store.
func NewCredentials(cfg CredentialsConfig, log *slog.Logger) (*Credentials, error) {
	if cfg.Path == "" {
		return nil, errors.New("credentials: no htpasswd file")
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = defaultAuthCacheSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = defaultAuthCacheTTL
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = runtime.NumCPU()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache, err := lru.New[[32]byte, int64](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("credentials cache: %w", err)
	}
	c := &Credentials{
		path:  cfg.Path,
		parse: htpasswd.ParseConfig{AllowSlowHashes: cfg.AllowSlowHashes},
		ttl:   cfg.CacheTTL,
		cache: cache,
		sem:   make(chan struct{}, cfg.MaxConcurrent),
		log:   log,
		now:   time.Now,
	}
	if _, err := rand.Read(c.key[:]); err != nil {
		return nil, fmt.Errorf("credentials cache key: %w", err)
	}
	if _, err := c.Refresh(); err != nil {
		return nil, err
	}
	return c, nil
}

// Refresh re-reads the htpasswd file when it changed on disk. A file that
// cannot be read or parsed leaves the previous users in place and is
// returned as the error. It reports whether a new version was loaded.
// Entries made from the empty password, which can never log in, are
// logged at warn with file, line and user (never the hash); finding them
// costs one hash per new or changed line, run in the verification slots.
func (c *Credentials) Refresh() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fi, err := os.Stat(c.path)
	if err != nil {
		return false, fmt.Errorf("htpasswd %s: %w", c.path, err)
	}
	if c.stamp.Same(filever.Of(fi)) {
		return false, nil
	}
	f, err := htpasswd.LoadWith(c.path, c.parse)
	if err != nil {
		return false, err
	}
	for _, e := range c.emptyPasswords(f) {
		c.log.Warn("htpasswd entry has an empty password; it can never log in", "path", c.path, "line", e.Line, "user", e.User)
	}
	// Unknown users are verified against the file's dummy entry so they
	// cost what known ones do; computing it now keeps that hash off the
	// request path.
	f.Dummy()
	c.users.Store(f)
	c.stamp = filever.Of(fi)
	return true, nil
}

// emptyPasswords returns f's entries made from the empty password, in
// line order, and remembers every verdict in c.empty for the next load.
// Slow entries (only loaded with AllowSlowHashes) are not checked: that
// would take minutes to days of CPU for a warning. Callers hold c.mu.
func (c *Credentials) emptyPasswords(f *htpasswd.File) []htpasswd.Entry {
	var entries []htpasswd.Entry
	for _, u := range f.Users() {
		if e, _ := f.Lookup(u); !e.Slow() {
			entries = append(entries, e)
		}
	}
	empty := make([]bool, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		if v, ok := c.empty[e.Hash]; ok {
			empty[i] = v
			continue
		}
		c.sem <- struct{}{} // a verification slot, like a login
		wg.Go(func() {
			defer func() { <-c.sem }()
			empty[i] = e.EmptyPassword()
		})
	}
	wg.Wait()
	verdicts := make(map[string]bool, len(entries))
	var out []htpasswd.Entry
	for i, e := range entries {
		verdicts[e.Hash] = empty[i]
		if empty[i] {
			out = append(out, e)
		}
	}
	c.empty = verdicts
	slices.SortFunc(out, func(a, b htpasswd.Entry) int { return a.Line - b.Line })
	return out
}

// Known reports whether user has an entry in the file.
func (c *Credentials) Known(user string) bool {
	_, ok := c.users.Load().Lookup(user)
	return ok
}

// Check reports whether user and password match the file. The empty
// password never matches, and is refused without hashing. It
// returns an error only when ctx ends while waiting for a verification
// slot (the client went away).
func (c *Credentials) Check(ctx context.Context, user, password string) (bool, error) {
	if password == "" {
		return false, nil
	}
	f := c.users.Load()
	e, known := f.Lookup(user)
	if !known {
		e = f.Dummy()
	}
	k := c.cacheKey(user, password, e.Hash)
	now := c.now().UnixNano()
	if known {
		if exp, ok := c.cache.Get(k); ok {
			if exp > now {
				return true, nil
			}
			c.cache.Remove(k)
		}
	}
	if e.Expensive() {
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		defer func() { <-c.sem }()
	}
	ok := e.Verify(password)
	if !known {
		return false, nil
	}
	if ok {
		c.cache.Add(k, now+int64(c.ttl))
	}
	return ok, nil
}

// cacheKey is SHA-256(key ‖ len(user) ‖ user ‖ len(password) ‖ password ‖
// hash). The length prefixes keep ("a", "bc") and ("ab", "c") apart.
func (c *Credentials) cacheKey(user, password, hash string) [32]byte {
	var stack [512]byte
	n := len(c.key) + 8 + len(user) + len(password) + len(hash)
	buf := stack[:0]
	if n > len(stack) {
		buf = make([]byte, 0, n)
	}
	buf = append(buf, c.key[:]...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(user)))
	buf = append(buf, user...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(password)))
	buf = append(buf, password...)
	buf = append(buf, hash...)
	return sha256.Sum256(buf)
}

// BasicAuthConfig configures BasicAuth for one host.
type BasicAuthConfig struct {
	// Realm is the realm of the challenge. Default "Restricted".
	Realm string
	// Paths lists the protected path prefixes. Default ["/"].
	Paths []string
	// UserHeader tells the upstream the logged-in user; a client-sent one
	// is always removed. Default "X-Forwarded-User".
	UserHeader string
	// PassAuthorization keeps the Authorization header for the upstream.
	// Default false: removed once checked.
	PassAuthorization bool
	// Jail receives failed logins. Default rules.JailAuth.
	Jail string
	// Others are the host's other htpasswd stores (a route with a block
	// of its own sits inside a host with one): a Basic login of their
	// users is removed like one of creds' own, and a login that is good
	// for one of them is answered 401 without an offence — a browser
	// sends the host's login to every path of it unasked.
	Others []*Credentials
}

// StripLogins removes the Basic logins of the users of stores from every
// request: a route with basic_auth off inside an authenticated host,
// whose upstream must not get the host's users' passwords.
func StripLogins(stores []*Credentials) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, c := range stores {
				stripOwnLogin(r.Header, c)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// BasicAuth asks for htpasswd credentials on the protected paths. A
// missing or wrong login gets 401 with a Basic challenge; a wrong one —
// including an empty password and a Basic credential that is not
// canonical base64 of "user:password" — is an offence for cfg.Jail; a
// missing header or another scheme is not. A good one is recorded in the Scope, told to
// the upstream in cfg.UserHeader, and its Authorization header removed.
// Several Authorization headers are refused with 400: which one would the
// upstream believe? It needs the Scope's client IP and canonical path.
func BasicAuth(cfg BasicAuthConfig, creds *Credentials, jails *rules.Jails, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	if creds == nil || jails == nil {
		return nil, errors.New("basic auth: no credentials or jails")
	}
	if cfg.Realm == "" {
		cfg.Realm = "Restricted"
	}
	if strings.ContainsAny(cfg.Realm, "\"\\\r\n") {
		return nil, fmt.Errorf("basic auth realm %q contains a quote, backslash or line break", cfg.Realm)
	}
	if len(cfg.Paths) == 0 {
		cfg.Paths = []string{"/"}
	}
	if cfg.UserHeader == "" {
		cfg.UserHeader = "X-Forwarded-User"
	}
	if cfg.Jail == "" {
		cfg.Jail = rules.JailAuth
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	paths, err := match.CompilePrefixes(cfg.Paths)
	if err != nil {
		return nil, fmt.Errorf("basic auth paths: %w", err)
	}
	userHeader := http.CanonicalHeaderKey(cfg.UserHeader)
	challenge := []string{`Basic realm="` + cfg.Realm + `", charset="UTF-8"`}

	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Whatever the path, the upstream must never believe a
			// client-sent user header.
			delete(r.Header, userHeader)
			s := ScopeFrom(r)
			if !paths.CoversRequest(match.RequestPath(r.RequestURI), s.Path) {
				if !cfg.PassAuthorization {
					stripOwnLogin(r.Header, creds)
					for _, c := range cfg.Others {
						stripOwnLogin(r.Header, c)
					}
				}
				next.ServeHTTP(w, r)
				return
			}
			auth := r.Header["Authorization"]
			if len(auth) > 1 {
				PlainStatus(w, http.StatusBadRequest)
				return
			}
			user, password, st := "", "", basicNone
			if len(auth) == 1 {
				user, password, st = parseBasic(auth[0])
			}
			switch st {
			case basicMalformed:
				// A Basic credential that is not the canonical base64 of
				// "user:password" is a client bug or a probe of the
				// decoder; fail2ban's apache-auth counts malformed
				// headers too, so it is an offence.
				s.Offence = "malformed credentials"
				jails.Report(cfg.Jail, s.ClientIP, "malformed credentials")
				w.Header()["Www-Authenticate"] = challenge
				PlainStatus(w, http.StatusUnauthorized)
				return
			case basicNone:
				// No header (a browser's first request) or another
				// scheme: a challenge, no offence.
				w.Header()["Www-Authenticate"] = challenge
				PlainStatus(w, http.StatusUnauthorized)
				return
			}
			good, err := creds.Check(r.Context(), user, password)
			if err != nil {
				w.WriteHeader(499) // the client left while its check queued
				return
			}
			if !good && goodElsewhere(r.Context(), cfg.Others, user, password) {
				// The host's login, sent unasked to a path with a
				// login of its own: ask, without an offence.
				w.Header()["Www-Authenticate"] = challenge
				PlainStatus(w, http.StatusUnauthorized)
				return
			}
			if !good {
				s.Offence = "bad credentials"
				jails.Report(cfg.Jail, s.ClientIP, "bad credentials")
				if log.Enabled(r.Context(), slog.LevelDebug) {
					log.Debug("login failed", "client_ip", s.ClientIP, "host", s.Host, "user", user)
				}
				w.Header()["Www-Authenticate"] = challenge
				PlainStatus(w, http.StatusUnauthorized)
				return
			}
			s.User = user
			r.Header[userHeader] = []string{user}
			if !cfg.PassAuthorization {
				delete(r.Header, "Authorization")
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

// goodElsewhere reports whether user and password are a good login of
// one of others. Every store checks (an unknown user against a dummy
// hash), so the time a failed login takes tells nothing of which users
// the host's other files hold.
func goodElsewhere(ctx context.Context, others []*Credentials, user, password string) bool {
	good := false
	for _, c := range others {
		if ok, err := c.Check(ctx, user, password); err == nil && ok {
			good = true
		}
	}
	return good
}

// stripOwnLogin removes a Basic credential of one of creds' users from
// a request outside the protected paths. A browser that logged in at
// "/admin" caches the login for the directory of that path, "/" (RFC 7617
// §2.2), and sends it with every request to the host: without this the
// upstream would get the password in clear wherever basic_auth.paths
// does not reach, though pass_authorization is false. An application's
// own Basic logins (other user names) and other schemes pass.
func stripOwnLogin(h http.Header, creds *Credentials) {
	auth := h["Authorization"]
	if len(auth) != 1 || len(auth[0]) < 6 || !strings.EqualFold(auth[0][:6], "basic ") {
		return
	}
	if user, _, st := parseBasic(auth[0]); st == basicOK && creds.Known(user) {
		delete(h, "Authorization")
	}
}

// ParseBasicAuth parses an Authorization header value of the Basic scheme
// (RFC 7617): the scheme name in any case, one or more spaces, then the
// canonical base64 of "user:password" — standard alphabet, padded, no
// other byte (see parseBasic). An empty user, a missing colon, any other
// encoding or a value over 4 KiB is not a credential.
func ParseBasicAuth(v string) (user, password string, ok bool) {
	user, password, st := parseBasic(v)
	return user, password, st == basicOK
}

// basicStatus is what parseBasic found.
type basicStatus uint8

const (
	basicNone      basicStatus = iota // no value, or another scheme
	basicMalformed                    // the Basic scheme, but no usable credential
	basicOK
)

// strictBase64 is padded standard base64 that also refuses non-zero
// padding bits. Never mutated.
var strictBase64 = base64.StdEncoding.Strict()

// parseBasic parses v as ParseBasicAuth does and tells a value of
// another scheme (basicNone) from a Basic one that is malformed. The
// token68 must be canonical: one string of credentials has
// one encoding, so unpadded, URL-alphabet, whitespace-split or
// trailing-garbage variants cannot slip past a filter or a cache that
// compares encodings. Go's decoder skips CR and LF even in strict mode,
// so those are refused first. Whitespace around the value is the HTTP
// parser's to remove (RFC 9110 §5.5); here it is malformed.
func parseBasic(v string) (user, password string, st basicStatus) {
	const scheme = "basic"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", "", basicNone
	}
	rest := v[len(scheme):]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", "", basicNone // a longer scheme name, e.g. "Basically"
	}
	if len(v) > maxAuthHeader {
		return "", "", basicMalformed
	}
	enc := strings.TrimLeft(rest, " ") // RFC 7235: 1*SP before the token
	if enc == "" || len(rest) == len(enc) || strings.ContainsAny(enc, "\r\n") {
		return "", "", basicMalformed
	}
	dec, err := strictBase64.DecodeString(enc)
	if err != nil {
		return "", "", basicMalformed
	}
	user, password, ok := strings.Cut(string(dec), ":")
	if !ok || user == "" {
		return "", "", basicMalformed
	}
	return user, password, basicOK
}

// PlainStatus writes the gateway's own terse plain-text answer for code:
// the status text, never an internal error string.
func PlainStatus(w http.ResponseWriter, code int) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(code)
	// The client may be gone; nothing to do about it.
	_, _ = w.Write([]byte(http.StatusText(code) + "\n"))
}
