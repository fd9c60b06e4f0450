package ui

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"gatehouse/rules"
)

// Token scopes the dashboard knows. A token with either may sign in;
// the ban and unban forms need ScopeBansWrite.
const (
	ScopeUI        = "ui"
	ScopeBansWrite = "bans:write"
)

// Principal is an authenticated admin token.
type Principal struct {
	// Name is the token's name, for the audit log and the page header.
	Name string
	// Scopes are the token's scopes.
	Scopes []string
}

func (p Principal) canView() bool {
	return slices.Contains(p.Scopes, ScopeUI) || slices.Contains(p.Scopes, ScopeBansWrite)
}

func (p Principal) canWrite() bool { return slices.Contains(p.Scopes, ScopeBansWrite) }

// CertInfo is one certificate as the certificates page shows it.
type CertInfo struct {
	// Name is the managed name, or the first name of a static
	// certificate.
	Name string
	// Issuer names the certificate's issuer; "" before one is obtained.
	Issuer string
	// NotAfter is when the certificate expires; zero when there is none
	// yet.
	NotAfter time.Time
	// Managed reports an ACME-managed name; false for a static
	// certificate from tls.certificates.
	Managed bool
	// LastError is the last failure to obtain or renew it; "" for none.
	LastError string
}

// WatchSource is one watch source as the overview shows it.
type WatchSource struct {
	Name     string  `json:"name"`
	Jail     string  `json:"jail"`
	Reads    string  `json:"reads"` // the files or "journal"
	Lines    uint64  `json:"lines"`
	Offences uint64  `json:"offences"`
	Lag      float64 `json:"lag_seconds"`
}

// IntelList is one address list gatehouse loads: a blocklist feed or a
// trusted-proxy set, for the system page.
type IntelList struct {
	// Kind is "feed" or "trusted proxies".
	Kind string
	Name string
	// Source is the URL or file it is read from, or "built in (DATE)".
	Source string
	// Action is a feed's action (drop, 403); "" for other lists.
	Action string
	// Entries counts the prefixes loaded.
	Entries int
	// Updated is when the loaded copy was fetched or read; zero when
	// nothing is loaded yet.
	Updated time.Time
	// Blocks counts the requests a feed refused over HTTP.
	Blocks uint64
	// LastError is the last refresh's failure; "" when it succeeded.
	LastError string
}

// GeoBlock counts the requests country and ASN rules refused for one
// country or AS number, over every host.
type GeoBlock struct {
	// Kind is "country" or "asn".
	Kind string
	// Value is an ISO country code or "unknown", or an AS number or
	// "other".
	Value string
	Count uint64
}

// CertSource lists the gateway's certificates. It is an interface so the
// certificate source of package proxy/cert can feed the page (through
// package proxy) without either package importing the other.
type CertSource interface {
	Certificates() []CertInfo
}

// FleetStatus is the fleet sync state shown on the overview.
type FleetStatus struct {
	// Node is this node's name.
	Node string
	// Connected reports whether the shared Redis is reachable.
	Connected bool
	// Nodes counts the nodes seen in the fleet, this one included.
	Nodes int
	// LastError is the last sync failure; "" for none.
	LastError string
}

// FleetSource reports the fleet sync state. It is an
// interface so the fleet code can feed the overview without this package
// importing it; none means fleet sync is off.
type FleetSource interface {
	FleetStatus() FleetStatus
}

// Upstream is one upstream of a configured host and its passive health.
type Upstream struct {
	Host string // the host's first name
	URL  string
	// DownUntil is when an upstream that refused connections is tried
	// again; zero when it is healthy.
	DownUntil time.Time
}

// FirewallStatus compares the kernel firewall's entries with the ban
// list.
type FirewallStatus struct {
	Backend string
	// Entries counts the kernel's entries; Want the bans that belong in
	// the kernel; Missing those of Want the kernel lacks; Stale kernel
	// entries no ban asks for.
	Entries, Want, Missing, Stale int
	// LastPass is when the last full reconcile pass completed.
	LastPass time.Time
	// LastError is the last pass's error; "" for none.
	LastError string
}

// Config is what the dashboard shows and acts on. Bans, Stats,
// Authenticate, Ban and Unban are required.
type Config struct {
	// Listen is admin.listen. Requests whose Host names neither its host,
	// nor one of Names, nor the address they arrived on (nor localhost, on
	// loopback) get 421, so a DNS rebinding page cannot reach the
	// dashboard (HostCheck).
	Listen string
	// Names are admin.names: other host names or addresses the admin
	// listener is known by. nil: none.
	Names []string
	// Bans is the ban list the bans page lists.
	Bans *rules.BanList
	// Stats holds the traffic counters and offences.
	Stats *Stats
	// Authenticate finds the admin token presented at sign-in; it is
	// called again on every request of the session.
	Authenticate func(token string) (Principal, bool)
	// Ban and Unban are the admin API's ban and unban (POST and DELETE
	// /v1/bans), so the forms validate, persist and log exactly as the
	// API does. target is an address or CIDR prefix; duration as the API
	// takes it ("" for the default). Their error messages are shown to
	// the operator.
	Ban   func(target, duration, reason string) (rules.Ban, error)
	Unban func(target string) error
	// Jails lists the configured jails, so the overview shows those
	// without bans too. nil: none.
	Jails func() []string
	// Certificates lists the certificates; nil without TLS.
	Certificates CertSource
	// Upstreams lists the upstreams and their health; nil: none.
	Upstreams func() []Upstream
	// Watch lists the watch sources (log files, the journal) and what
	// they found; nil or empty hides the panel.
	Watch func() []WatchSource
	// Intel lists the blocklist feeds and trusted-proxy sets; nil or
	// empty hides the panel.
	Intel func() []IntelList
	// GeoBlocks counts the geo rules' refusals; nil or empty hides the
	// panel.
	GeoBlocks func() []GeoBlock
	// Firewall reads the kernel firewall's state; nil when it is off.
	// It is called at most every 30 seconds: it lists the kernel's
	// entries and the whole ban list.
	Firewall func(ctx context.Context) (FirewallStatus, error)
	// Fleet reports fleet sync; nil when it is off.
	Fleet FleetSource
	// Banned reports whether a client (the TCP peer) is locked out of the
	// admin listener: it gets 403, as from the admin API. Package proxy
	// passes its one rule for the whole listener (only a ban by the admin
	// jail locks out). nil: no client is.
	Banned func(client netip.Addr) bool
	// BadToken is told of a sign-in with an unknown token, an offence as
	// a wrong bearer token is for the admin API. nil: not reported.
	BadToken func(client netip.Addr)
	// Audit receives one line per sign-in and form action. nil: discard.
	Audit *slog.Logger
	// Log receives the dashboard's own failures. nil: discard.
	Log *slog.Logger
}

//go:embed templates/*.html static/*
var assets embed.FS

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"login", "overview", "bans", "offences", "system", "error"}

// Handler serves the dashboard under /ui/. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	now     func() time.Time
	hosts   HostCheck
	sess    *sessions
	pages   map[string]*template.Template
	static  fs.FS
	mux     *http.ServeMux
	cop     *http.CrossOriginProtection
	streams chan struct{} // a slot per open event stream

	mu       sync.Mutex // guards the caches below
	byJail   map[string]int
	byJailAt time.Time
	fw       FirewallStatus
	fwErr    error
	fwAt     time.Time
}

// maxStreams bounds the open event streams; each holds a ban list
// subscription.
const maxStreams = 32

// New returns the dashboard handler.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Bans == nil:
		return nil, errors.New("ui: no ban list")
	case cfg.Stats == nil:
		return nil, errors.New("ui: no stats")
	case cfg.Authenticate == nil:
		return nil, errors.New("ui: no token authentication")
	case cfg.Ban == nil || cfg.Unban == nil:
		return nil, errors.New("ui: no ban and unban actions")
	}
	if cfg.Audit == nil {
		cfg.Audit = slog.New(slog.DiscardHandler)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		cfg:     cfg,
		now:     time.Now,
		hosts:   NewHostCheck(cfg.Listen, cfg.Names),
		sess:    newSessions(time.Now),
		pages:   map[string]*template.Template{},
		cop:     http.NewCrossOriginProtection(),
		streams: make(chan struct{}, maxStreams),
	}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		h.pages[name] = t
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	h.static = static

	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/{$}", h.viewer(h.overview))
	mux.HandleFunc("GET /ui/bans", h.viewer(h.bans))
	mux.HandleFunc("POST /ui/bans/add", h.writer(h.addBan))
	mux.HandleFunc("POST /ui/bans/delete", h.writer(h.deleteBan))
	mux.HandleFunc("GET /ui/offences", h.viewer(h.offences))
	mux.HandleFunc("GET /ui/system", h.viewer(h.system))
	mux.HandleFunc("GET /ui/events", h.events)
	mux.HandleFunc("GET /ui/login", h.loginPage)
	mux.HandleFunc("POST /ui/login", h.login)
	mux.HandleFunc("POST /ui/logout", h.form(h.logout))
	mux.HandleFunc("GET /ui/static/{name}", h.asset)
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusNotFound, "no such page")
	})
	h.mux = mux
	return h, nil
}

// contentSecurityPolicy allows the dashboard's own script, style sheet
// and event stream and nothing else: no inline script or style, no
// frames, no plugins, forms only to itself.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP checks the Host header (421 for names the admin listener is
// not known by) and serves the dashboard with its security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	if !h.hosts.Allowed(r) {
		// A rebinding page's Host is its own name: refuse before any
		// cookie is read.
		h.errorPage(w, r, http.StatusMisdirectedRequest, "this dashboard is not served under that host name")
		return
	}
	if h.cfg.Banned != nil && h.cfg.Banned(peer(r)) {
		h.errorPage(w, r, http.StatusForbidden, "banned")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// peer is the request's TCP peer address; invalid if unparsable.
func peer(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// HostCheck is the admin listener's Host rule, which defeats DNS
// rebinding: a rebinding page's requests carry the page's own name in
// Host, so a listener that answers only the names and addresses it is
// known by never answers them. The dashboard applies it to /ui/, and
// package proxy to the whole admin listener (/v1, /metrics, /ui/): one
// rule for every path. The zero value admits the address a request
// arrived on (and localhost on loopback) only. It is immutable and safe
// for concurrent use.
type HostCheck struct {
	names []string     // admin.listen's host when it is a name, and admin.names; lower case, no trailing dot
	addrs []netip.Addr // admin.listen's host when it is a specific address, and the addresses in admin.names
}

// NewHostCheck builds the Host rule of a listener bound to listen
// (host:port, as admin.listen) and also known by names (admin.names: host
// names or IP addresses, without port). A listen host that is a name or
// a specific address is admitted; an unspecified one (":9901",
// "0.0.0.0:9901") admits only what requests arrived on.
func NewHostCheck(listen string, names []string) HostCheck {
	var hc HostCheck
	add := func(host string) {
		host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
		if a, err := netip.ParseAddr(host); err == nil {
			if !a.IsUnspecified() {
				hc.addrs = append(hc.addrs, a.Unmap().WithZone(""))
			}
			return
		}
		if host != "" {
			hc.names = append(hc.names, host)
		}
	}
	if host, _, err := net.SplitHostPort(listen); err == nil {
		add(host)
	}
	for _, n := range names {
		add(n)
	}
	return hc
}

// Allowed reports whether r's Host names the listener: a configured name
// or address, the address the connection arrived on, or localhost when
// that address (or the configured one) is loopback. The port is not
// checked: a tunnel (ssh -L) may change it, and it is no defence against
// rebinding, where the name is the attacker's.
func (hc HostCheck) Allowed(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return false
	}
	var local netip.Addr
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			local = ap.Addr().Unmap()
		}
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		a = a.Unmap().WithZone("")
		return slices.Contains(hc.addrs, a) || (local.IsValid() && a == local.WithZone(""))
	}
	if slices.Contains(hc.names, host) {
		return true
	}
	if host != "localhost" {
		return false
	}
	if local.IsValid() && local.IsLoopback() {
		return true
	}
	return slices.ContainsFunc(hc.addrs, netip.Addr.IsLoopback)
}

// asset serves an embedded static file.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	data, err := fs.ReadFile(h.static, name)
	if err != nil {
		h.errorPage(w, r, http.StatusNotFound, "no such file")
		return
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".svg"):
		w.Header().Set("Content-Type", "image/svg+xml")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("Cache-Control", "no-cache")
	// The client may be gone; nothing else to do.
	_, _ = w.Write(data)
}
