package ui

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/rules"
)

// page is what layout.html renders around a page's content.
type page struct {
	Title    string
	Page     string // the page's name: nav highlight and data-page for app.js
	User     string // the signed-in token's name; "" on the sign-in page
	CSRF     string // the form token
	CanWrite bool   // the token has bans:write: show the ban forms
	Flash    flash
	Data     any
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"utc":     formatTime,
	"ago":     func(t, now time.Time) string { return span(now.Sub(t)) + " ago" },
	"left":    func(t, now time.Time) string { return "in " + span(t.Sub(now)) },
	"addrstr": func(a netip.Addr) string { return a.String() },
}

// formatTime prints t in UTC to the second; "—" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// span prints a duration roughly: 42s, 5m, 3h12m, 6d4h.
func span(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// render executes a page into a buffer, then writes it, so a template
// failure is a clean 500.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	p.Page = name
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.cfg.Log.Error("render dashboard page", "page", name, "error", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	// The browser may be gone; nothing else to do.
	_, _ = buf.WriteTo(w)
}

// pageFor fills the layout fields of a signed-in page.
func (h *Handler) pageFor(v visit, title string, data any) page {
	return page{Title: title, User: v.p.Name, CSRF: v.sess.csrf, CanWrite: v.p.canWrite(),
		Flash: h.sess.takeFlash(v.sess), Data: data}
}

// errorData is the error page's data.
type errorData struct {
	Code    int
	Status  string
	Message string
}

// errorPage answers code with a short page; msg is fixed text, never
// client input.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	h.render(w, r, code, "error", page{Title: http.StatusText(code),
		Data: errorData{Code: code, Status: http.StatusText(code), Message: msg}})
}

// ---- overview ----

// overview is the overview page's data, and the stats event's payload.
type overview struct {
	// Stats are the page's numbers by data-stat name, formatted.
	Stats map[string]string `json:"stats"`
	// Kinds are the blocked kinds, in table order.
	Kinds  []kindRow `json:"-"`
	Charts []chart   `json:"charts"`
	Jails  []jailRow `json:"jails"`
	// Watch are the watch sources; empty hides the panel.
	Watch []WatchSource `json:"watch"`
	// Firewall is "" when the kernel firewall is off.
	Firewall string `json:"-"`
	Fleet    string `json:"-"`
}

// kindRow names a blocked kind: Key in data-stat names, Label on the page.
type kindRow struct {
	Key, Label string
}

// kindLabels are the overview's names of the blocked kinds.
var kindLabels = map[Kind]string{Probe: "probe", Auth: "auth (bad credentials)", Hotlink: "hotlink",
	Flood: "flood", Banned: "ban guard (banned clients)", Other: "other", Log: "log watch (lines, not requests)"}

type jailRow struct {
	Name   string `json:"name"`
	Active int    `json:"active"`
}

// rateWindow is the window of the per-second rates.
const rateWindow = 10

func (h *Handler) overviewData(ctx context.Context) overview {
	now := h.now()
	st := h.cfg.Stats
	o := overview{Stats: map[string]string{}}
	rate := func(k Kind) uint64 {
		var n uint64
		for _, c := range st.Series(k, now, rateWindow) {
			n += c
		}
		return n
	}
	hour := func(k Kind) uint64 {
		var n uint64
		for _, c := range st.Minutes(k, now) {
			n += c
		}
		return n
	}
	perSec := func(n uint64) string { return strconv.FormatFloat(float64(n)/rateWindow, 'f', 1, 64) }
	o.Stats["rps"] = perSec(rate(Requests))
	o.Stats["hour_requests"] = strconv.FormatUint(hour(Requests), 10)
	var blocked, blockedHour uint64
	for _, k := range blockedKinds {
		n, hn := rate(k), hour(k)
		blocked += n
		blockedHour += hn
		o.Kinds = append(o.Kinds, kindRow{Key: k.String(), Label: kindLabels[k]})
		o.Stats["rate_"+k.String()] = perSec(n)
		o.Stats["hour_"+k.String()] = strconv.FormatUint(hn, 10)
	}
	// Log lines are offences but no requests: listed, not in the sums.
	o.Kinds = append(o.Kinds, kindRow{Key: Log.String(), Label: kindLabels[Log]})
	o.Stats["rate_"+Log.String()] = perSec(rate(Log))
	o.Stats["hour_"+Log.String()] = strconv.FormatUint(hour(Log), 10)
	o.Stats["blocked_rps"] = perSec(blocked)
	o.Stats["hour_blocked"] = strconv.FormatUint(blockedHour, 10)
	o.Stats["dropped"] = strconv.FormatUint(st.Dropped(), 10)

	sum := func(f func(Kind) []uint64) []uint64 {
		var out []uint64
		for _, k := range blockedKinds {
			s := f(k)
			if out == nil {
				out = s
				continue
			}
			for i := range out {
				out[i] += s[i]
			}
		}
		return out
	}
	minutes := func(k Kind) []uint64 { return st.Minutes(k, now) }
	seconds := func(k Kind) []uint64 { return st.Series(k, now, 300) }
	o.Charts = []chart{
		newChart("req_min", "Requests per minute, last hour", st.Minutes(Requests, now)),
		newChart("blk_min", "Blocked per minute, last hour", sum(minutes)),
		newChart("req_sec", "Requests per second, last 5 minutes", seconds(Requests)),
		newChart("blk_sec", "Blocked per second, last 5 minutes", sum(seconds)),
	}

	byJail, total := h.activeByJail(now)
	names := map[string]bool{}
	if h.cfg.Jails != nil {
		for _, j := range h.cfg.Jails() {
			names[j] = true
		}
	}
	for j := range byJail {
		names[j] = true
	}
	for _, j := range slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	}) {
		label := j
		if j == "" {
			label = "manual"
		}
		o.Jails = append(o.Jails, jailRow{Name: label, Active: byJail[j]})
	}
	o.Stats["bans_total"] = strconv.Itoa(total)
	if h.cfg.Watch != nil {
		o.Watch = h.cfg.Watch()
	}

	o.Firewall = "off"
	if h.cfg.Firewall != nil {
		fw, err := h.firewall(ctx, now)
		switch {
		case err != nil:
			o.Firewall = "unreadable: " + err.Error()
		default:
			o.Firewall = fw.Backend
			o.Stats["fw_entries"] = strconv.Itoa(fw.Entries)
			o.Stats["fw_want"] = strconv.Itoa(fw.Want)
			o.Stats["fw_missing"] = strconv.Itoa(fw.Missing)
			o.Stats["fw_stale"] = strconv.Itoa(fw.Stale)
			o.Stats["fw_pass"] = formatTime(fw.LastPass)
			o.Stats["fw_error"] = cmp.Or(fw.LastError, "none")
		}
	}
	o.Fleet = "off"
	if h.cfg.Fleet != nil {
		o.Fleet = fleetText(h.cfg.Fleet.FleetStatus())
	}
	o.Stats["fleet"] = o.Fleet
	return o
}

func fleetText(f FleetStatus) string {
	state := "disconnected"
	if f.Connected {
		state = "connected"
	}
	s := fmt.Sprintf("node %s, %s, %d nodes", f.Node, state, f.Nodes)
	if f.LastError != "" {
		s += "; last error: " + f.LastError
	}
	return s
}

// activeByJail counts the active bans by jail, at most every 2 seconds:
// at a million bans a count is a pass over the list.
func (h *Handler) activeByJail(now time.Time) (map[string]int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byJail == nil || now.Sub(h.byJailAt) >= 2*time.Second || now.Before(h.byJailAt) {
		h.byJail, h.byJailAt = h.cfg.Bans.ActiveByJail(), now
	}
	total := 0
	for _, n := range h.byJail {
		total += n
	}
	return h.byJail, total
}

// firewall reads the kernel firewall's state at most every 30 seconds:
// it costs a netlink dump or a command, and a copy of the ban list.
func (h *Handler) firewall(ctx context.Context, now time.Time) (FirewallStatus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fwAt.IsZero() || now.Sub(h.fwAt) >= 30*time.Second || now.Before(h.fwAt) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		h.fw, h.fwErr = h.cfg.Firewall(ctx)
		h.fwAt = now
	}
	return h.fw, h.fwErr
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, v visit) {
	h.render(w, r, http.StatusOK, "overview", h.pageFor(v, "Overview", h.overviewData(r.Context())))
}

// ---- bans ----

// bansData is the bans page's data.
type bansData struct {
	Query string
	Bans  []banRow
	Total int
	// First, Prev, Next, Last are the pagination links; "" when there is
	// no such page.
	First, Prev, Next, Last string
	// Live: the first page of all bans, where app.js adds new bans.
	Live bool
	// Back is this page's address, where its forms return.
	Back string
}

// banRow is one ban as the table shows it; the ban event sends the same.
type banRow struct {
	IP     string `json:"ip"`
	Jail   string `json:"jail"`
	Reason string `json:"reason"`
	Since  string `json:"since"`
	Until  string `json:"until"`
	Left   string `json:"left"`
	Count  int    `json:"count"`
}

func newBanRow(b rules.Ban, now time.Time) banRow {
	jail := b.Jail
	if jail == "" {
		jail = "manual"
	}
	return banRow{IP: b.IP(), Jail: jail, Reason: b.Reason, Since: formatTime(b.Created),
		Until: formatTime(b.Until), Left: "in " + span(b.Until.Sub(now)), Count: b.Count}
}

// Page sizes and bounds of the bans page.
const (
	bansPerPage   = 50
	maxQueryBytes = 200
)

// formatCursor writes a ban's position for a pagination link:
// "<created, Unix nanoseconds>_<prefix>".
func formatCursor(c rules.BanCursor) string {
	return strconv.FormatInt(c.Created.UnixNano(), 10) + "_" + c.Prefix.String()
}

// parseCursor reads formatCursor's text.
func parseCursor(s string) (rules.BanCursor, error) {
	ns, p, ok := strings.Cut(s, "_")
	if !ok {
		return rules.BanCursor{}, errors.New("cursor without _")
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return rules.BanCursor{}, fmt.Errorf("cursor time: %w", err)
	}
	prefix, err := netip.ParsePrefix(p)
	if err != nil {
		return rules.BanCursor{}, fmt.Errorf("cursor prefix: %w", err)
	}
	return rules.BanCursor{Created: time.Unix(0, n).UTC(), Prefix: prefix}, nil
}

func (h *Handler) bans(w http.ResponseWriter, r *http.Request, v visit) {
	qv := r.URL.Query()
	q := rules.BanQuery{Match: clip(strings.TrimSpace(qv.Get("q")), maxQueryBytes), Limit: bansPerPage}
	var err error
	switch {
	case qv.Get("after") != "":
		q.After, err = parseCursor(qv.Get("after"))
	case qv.Get("before") != "":
		q.Before, err = parseCursor(qv.Get("before"))
	case qv.Get("last") != "":
		q.Last = true
	}
	if err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "bad page link")
		return
	}
	now := h.now()
	res := h.cfg.Bans.Page(q)
	d := bansData{Query: q.Match, Total: res.Total, Back: (&url.URL{Path: "/ui/bans", RawQuery: r.URL.RawQuery}).String(),
		Live: q.Match == "" && q.After.IsZero() && q.Before.IsZero() && !q.Last}
	for _, b := range res.Bans {
		d.Bans = append(d.Bans, newBanRow(b, now))
	}
	link := func(key, val string) string {
		u := url.Values{}
		if q.Match != "" {
			u.Set("q", q.Match)
		}
		if key != "" {
			u.Set(key, val)
		}
		if len(u) == 0 {
			return "/ui/bans"
		}
		return "/ui/bans?" + u.Encode()
	}
	if res.Prev {
		d.First = link("", "")
		d.Prev = link("before", formatCursor(rules.CursorOf(res.Bans[0])))
	}
	if res.Next {
		d.Next = link("after", formatCursor(rules.CursorOf(res.Bans[len(res.Bans)-1])))
		d.Last = link("last", "1")
	}
	h.render(w, r, http.StatusOK, "bans", h.pageFor(v, "Bans", d))
}

// addBan is the manual ban form: the admin API's POST /v1/bans.
func (h *Handler) addBan(w http.ResponseWriter, r *http.Request, v visit) {
	target := strings.TrimSpace(r.PostForm.Get("ip"))
	duration := strings.TrimSpace(r.PostForm.Get("duration"))
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	b, err := h.cfg.Ban(target, duration, reason)
	result := "ok"
	f := flash{}
	if err != nil {
		result = err.Error()
		f = flash{Msg: "Not banned: " + err.Error(), Err: true}
	} else {
		f = flash{Msg: "Banned " + b.IP() + " until " + formatTime(b.Until) + "."}
	}
	h.cfg.Audit.Info("ui action", "token", v.p.Name, "action", "ban", "target", target, "duration", duration,
		"reason", reason, "remote", r.RemoteAddr, "result", result)
	h.sess.setFlash(v.sess, f)
	http.Redirect(w, r, backTo(r), http.StatusSeeOther)
}

// deleteBan is the unban form: the admin API's DELETE /v1/bans/{ip}.
func (h *Handler) deleteBan(w http.ResponseWriter, r *http.Request, v visit) {
	target := strings.TrimSpace(r.PostForm.Get("ip"))
	err := h.cfg.Unban(target)
	result := "ok"
	f := flash{Msg: "Unbanned " + target + "."}
	if err != nil {
		result = err.Error()
		f = flash{Msg: "Not unbanned: " + err.Error(), Err: true}
	}
	h.cfg.Audit.Info("ui action", "token", v.p.Name, "action", "unban", "target", target,
		"remote", r.RemoteAddr, "result", result)
	h.sess.setFlash(v.sess, f)
	http.Redirect(w, r, backTo(r), http.StatusSeeOther)
}

// backTo is where a form returns: the bans page it was posted from (its
// query kept), never another site.
func backTo(r *http.Request) string {
	back := r.PostForm.Get("back")
	if u, err := url.Parse(back); err == nil && u.Path == "/ui/bans" && u.Scheme == "" && u.Host == "" && u.User == nil {
		return (&url.URL{Path: u.Path, RawQuery: u.RawQuery}).String()
	}
	return "/ui/bans"
}

// ---- offences ----

// offencesData is the offences page's data.
type offencesData struct {
	Latest []offenceRow
	Paths  []TopEntry
	Nets   []TopEntry
	Seq    uint64 // the newest offence shown, where the live feed starts
}

// offenceRow is one offence as the table shows it; the offence event
// sends the same.
type offenceRow struct {
	Time      string `json:"time"`
	IP        string `json:"ip"`
	Host      string `json:"host"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Kind      string `json:"kind"`
	Rule      string `json:"rule"`
	UserAgent string `json:"ua"`
}

func newOffenceRow(o Offence) offenceRow {
	ip := ""
	if o.ClientIP.IsValid() {
		ip = o.ClientIP.String()
	}
	return offenceRow{Time: formatTime(o.Time), IP: ip, Host: o.Host, Method: o.Method, Path: o.Path,
		Kind: o.Kind.String(), Rule: o.Rule, UserAgent: o.UserAgent}
}

// Sizes of the offences page.
const (
	latestShown = 100
	topShown    = 10
)

func (h *Handler) offences(w http.ResponseWriter, r *http.Request, v visit) {
	latest, seq := h.cfg.Stats.Latest(0, latestShown)
	d := offencesData{Seq: seq}
	for _, o := range latest {
		d.Latest = append(d.Latest, newOffenceRow(o))
	}
	d.Paths, d.Nets = h.cfg.Stats.Top(h.now(), topShown)
	h.render(w, r, http.StatusOK, "offences", h.pageFor(v, "Offences", d))
}

// ---- certificates, upstreams, fleet ----

// systemData is the system page's data.
type systemData struct {
	TLS       bool
	Certs     []certRow
	Upstreams []upstreamRow
	Intel     []intelRow
	GeoBlocks []GeoBlock
	Fleet     string
}

type intelRow struct {
	IntelList
	Age   string // "3h2m ago", "never"
	Class string // "bad" when nothing is loaded or the last refresh failed
}

type certRow struct {
	CertInfo
	Expires string // "in 61d3h", "expired 2h ago"
	Class   string // "", "warn" under 14 days, "bad" when expired or failing
}

type upstreamRow struct {
	Upstream
	State string
	Class string
}

// maxGeoRows bounds the geo blocks panel: the most refused first.
const maxGeoRows = 20

// certWarn is how close to expiry a certificate is flagged.
const certWarn = 14 * 24 * time.Hour

func (h *Handler) system(w http.ResponseWriter, r *http.Request, v visit) {
	now := h.now()
	d := systemData{Fleet: "off"}
	if h.cfg.Certificates != nil {
		d.TLS = true
		certs := h.cfg.Certificates.Certificates()
		slices.SortFunc(certs, func(a, b CertInfo) int {
			if c := a.NotAfter.Compare(b.NotAfter); c != 0 {
				return c
			}
			return strings.Compare(a.Name, b.Name)
		})
		for _, c := range certs {
			row := certRow{CertInfo: c}
			switch left := c.NotAfter.Sub(now); {
			case c.NotAfter.IsZero():
				row.Expires, row.Class = "no certificate yet", "warn"
			case left <= 0:
				row.Expires, row.Class = "expired "+span(left)+" ago", "bad"
			case left < certWarn:
				row.Expires, row.Class = "in "+span(left), "warn"
			default:
				row.Expires = "in " + span(left)
			}
			if c.LastError != "" {
				row.Class = "bad"
			}
			d.Certs = append(d.Certs, row)
		}
	}
	if h.cfg.Upstreams != nil {
		for _, u := range h.cfg.Upstreams() {
			row := upstreamRow{Upstream: u, State: "up"}
			if u.DownUntil.After(now) {
				row.State, row.Class = "down: refused a connection; retried "+"in "+span(u.DownUntil.Sub(now)), "bad"
			}
			d.Upstreams = append(d.Upstreams, row)
		}
	}
	if h.cfg.Intel != nil {
		for _, l := range h.cfg.Intel() {
			row := intelRow{IntelList: l, Age: "never"}
			if !l.Updated.IsZero() {
				row.Age = span(now.Sub(l.Updated)) + " ago"
			}
			if l.Updated.IsZero() || l.LastError != "" {
				row.Class = "bad"
			}
			d.Intel = append(d.Intel, row)
		}
	}
	if h.cfg.GeoBlocks != nil {
		d.GeoBlocks = h.cfg.GeoBlocks()
		slices.SortFunc(d.GeoBlocks, func(a, b GeoBlock) int {
			if a.Count != b.Count {
				return cmp.Compare(b.Count, a.Count)
			}
			return strings.Compare(a.Kind+a.Value, b.Kind+b.Value)
		})
		if len(d.GeoBlocks) > maxGeoRows {
			d.GeoBlocks = d.GeoBlocks[:maxGeoRows]
		}
	}
	if h.cfg.Fleet != nil {
		d.Fleet = fleetText(h.cfg.Fleet.FleetStatus())
	}
	h.render(w, r, http.StatusOK, "system", h.pageFor(v, "Certificates and upstreams", d))
}
