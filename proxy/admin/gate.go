package admin

import (
	"net/http"
	"net/netip"
	"sync"
	"time"

	"gatehouse/proxy/ui"
)

// maxAuditText bounds request text (a path, a Host header) quoted in an
// audit line.
const maxAuditText = 512

// auditText is request text as an audit line quotes it: cut at
// maxAuditText bytes.
func auditText(s string) string {
	if len(s) > maxAuditText {
		return s[:maxAuditText] + "…"
	}
	return s
}

// adminGate applies the admin listener's own rules to every request on
// it, before any endpoint sees it, so /v1, /metrics and /ui/ share one
// rule each:
//
//  1. Host: only the names and addresses the listener is known by
//     (ui.HostCheck: admin.listen's host, admin.names, the address the
//     request arrived on, localhost on loopback); anything else gets
//     421 Misdirected Request (RFC 9110 §15.5.20), which defeats DNS
//     rebinding — a rebinding page's requests carry its own name.
//  2. Lockout: a client the admin jail banned (wrong admin tokens) is
//     refused with 403, until that ban ends or is lifted, whatever ban
//     replaced it since. Bans by other jails and manual bans lock nobody
//     out: an operator who tripped a probe must still be able to unban
//     themselves (lockedOut).
//  3. Cross-origin writes: a POST, PUT, PATCH or DELETE that a browser
//     marks as cross-origin (Sec-Fetch-Site other than same-origin or
//     none, or an Origin whose host is not the request's Host) gets 403;
//     requests without either header (curl, the CLI) pass. This is
//     net/http's CrossOriginProtection, the check the dashboard's forms
//     already use.
//
// /healthz and /readyz are exempt from all three: they disclose nothing
// but "ok" or "ready", and the probes that call them send Host headers
// the listener cannot know (a load balancer's target name, an HTTP/1.0
// check without Host). Kubernetes probes would pass anyway: they send the
// pod IP, the address the request arrives on.
//
// Every refusal writes an audit line.
func (a *Admin) gate(hosts ui.HostCheck, next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	audit := a.log.With("component", "audit")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		client := peerAddr(r)
		refuse := func(code int, msg, why string) {
			writeError(w, code, msg, "")
			audit.Info("admin request refused", "method", r.Method, "path", auditText(r.URL.Path), "host", auditText(r.Host),
				"client_ip", client, "status", code, "why", why)
		}
		switch {
		case !hosts.Allowed(r):
			refuse(http.StatusMisdirectedRequest, "this admin listener is not served under that host name", "host not known by the admin listener")
		case a.lockedOut(client):
			refuse(http.StatusForbidden, "banned", "banned by the "+Jail+" jail")
		case cop.Check(r) != nil:
			refuse(http.StatusForbidden, "cross-origin request refused", "cross-origin "+r.Method)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// lockedOut reports whether client may not use the admin listener: it
// is banned by the admin jail, which counts wrong admin tokens, so it
// cannot go on guessing. It is the one rule for the whole listener — API,
// metrics and dashboard alike; a ban by any other jail, or a manual one,
// does not lock anyone out.
//
// The ban list holds one ban per address, and a later one replaces it: a
// framing refusal on the public listener (counted before the ban guard)
// has the probes jail ban the client again, and an operator may ban it
// by hand. Neither may lift the lockout, or the admin jail — which does
// not count a client serving a ban — would let it guess tokens without
// end. So the admin jail's bans are also remembered here (a.locks) until
// they expire, and hold while any ban still covers the client; lifting
// every ban on the client (DELETE /v1/bans) lifts the lockout.
func (a *Admin) lockedOut(client netip.Addr) bool {
	b, banned := a.cfg.Bans.Lookup(client)
	if !banned {
		return false
	}
	if b.Jail == Jail {
		a.locks.note(b.Prefix, b.Until)
		return true
	}
	return a.locks.holds(client)
}

// noteAdminBan records the admin jail's ban of client, if the offence
// just reported made one, before another ban can replace it.
func (a *Admin) noteAdminBan(client netip.Addr) {
	a.lockedOut(client)
}

// adminLocks are the admin jail's bans, remembered past their
// replacement in the ban list (Admin.lockedOut). The zero value is
// empty and ready; it is safe for concurrent use.
type adminLocks struct {
	mu sync.Mutex
	m  map[netip.Prefix]time.Time // until
}

// note remembers a ban of p until until, and forgets expired ones.
func (l *adminLocks) note(p netip.Prefix, until time.Time) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[netip.Prefix]time.Time)
	}
	for q, u := range l.m {
		if !u.After(now) {
			delete(l.m, q)
		}
	}
	if u, ok := l.m[p]; !ok || until.After(u) {
		l.m[p] = until
	}
}

// holds reports whether an unexpired admin-jail ban covers client.
func (l *adminLocks) holds(client netip.Addr) bool {
	now := time.Now()
	client = client.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, u := range l.m {
		if u.After(now) && p.Contains(client) {
			return true
		}
	}
	return false
}

// drop forgets the admin-jail bans overlapping p: the operator lifted
// the ban of p.
func (l *adminLocks) drop(p netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for q := range l.m {
		if q.Overlaps(p) {
			delete(l.m, q)
		}
	}
}

// peerAddr is the request's TCP peer address (the admin listener never
// believes X-Forwarded-For); invalid if unparsable.
func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
