package proxy

import (
	"net/http"
	"strconv"
	"time"

	"gatehouse/middleware"
	"gatehouse/proxy/ui"
	"gatehouse/rules"
	"gatehouse/rules/notify"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the gateway's Prometheus series. One set lives for the whole
// process, across reloads; label values are bounded by the config (host
// names, status classes), never taken from a client.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // host, code
	latency  *prometheus.HistogramVec // host
	reloads  *prometheus.CounterVec   // result
	// proxyRefused counts connections the PROXY protocol listener closed.
	proxyRefused *prometheus.CounterVec // reason
	// geoCountryBlocks and geoASNBlocks count the requests geo rules
	// refused, by host and country (ISO codes and "unknown": bounded)
	// or AS number (only those the config lists, else "other").
	geoCountryBlocks *prometheus.CounterVec // host, country
	geoASNBlocks     *prometheus.CounterVec // host, asn
	// dash keeps the dashboard's counters and offences (/ui/).
	dash *ui.Stats
}

// unmatchedHost labels requests for a host gatehouse does not serve.
const unmatchedHost = "_unmatched"

func newMetrics() *metrics {
	m := &metrics{
		dash: ui.NewStats(ui.StatsConfig{}),
		reg:  prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total",
			Help: "Requests answered, by configured host and status class.",
		}, []string{"host", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_upstream_response_seconds",
			Help:    "Time from sending a request to an upstream to its response headers.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"host"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_config_reloads_total",
			Help: "Config reloads by result (ok, failed).",
		}, []string{"result"}),
		proxyRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_listener_proxy_refused_total",
			Help: "Connections closed by the PROXY protocol listener, by reason (not_allowed: a header from a peer not in listen.proxy_protocol; missing, incomplete, invalid: from a listed balancer).",
		}, []string{"reason"}),
	}
	m.geoCountryBlocks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_geo_blocked_country_total",
		Help: "Requests refused by a geo country rule, by host and the client's country.",
	}, []string{"host", "country"})
	m.geoASNBlocks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_geo_blocked_asn_total",
		Help: "Requests refused by a geo ASN rule, by host and AS number (\"other\" for one asn_allow does not list).",
	}, []string{"host", "asn"})
	m.reg.MustRegister(m.requests, m.latency, m.reloads, m.proxyRefused, m.geoCountryBlocks, m.geoASNBlocks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	for _, reason := range []string{"not_allowed", "missing", "incomplete", "invalid"} {
		m.proxyRefused.WithLabelValues(reason)
	}
	return m
}

// statusClasses are the code label values, indexed by status/100.
var statusClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// hostCounters holds one host's request counters, resolved once per
// generation so the request path does no label hashing.
type hostCounters [len(statusClasses)]prometheus.Counter

func (m *metrics) hostCounters(host string) *hostCounters {
	var hc hostCounters
	for i, class := range statusClasses {
		hc[i] = m.requests.WithLabelValues(host, class)
	}
	return &hc
}

func (hc *hostCounters) observe(status int) {
	i := status / 100
	if i < 1 || i >= len(hc) {
		i = 0
	}
	hc[i].Inc()
}

// onDone returns the access log hook that counts every answered request
// under its host, counters looked up in the generation's table, and hands
// requests that were offences to the notifier (nil: off), which quotes a
// client's last ones when it is banned. It feeds the dashboard too (nil:
// off): an atomic add, and a non-blocking send for offences.
func onDone(byHost map[string]*hostCounters, unmatched *hostCounters, n *notify.Notifier, dash *ui.Stats, bans *rules.BanList) func(*http.Request, *middleware.Scope, int, int64, time.Duration) {
	return func(r *http.Request, s *middleware.Scope, status int, _ int64, d time.Duration) {
		hc := byHost[s.Host]
		if hc == nil {
			hc = unmatched
		}
		hc.observe(status)
		if s.Offence != "" && n != nil {
			// The path only: a query string can carry signatures.
			n.Note(s.ClientIP, r.Method+" "+r.Host+r.URL.EscapedPath()+" → "+strconv.Itoa(status)+" ("+s.Offence+")")
		}
		if dash != nil {
			dash.Observe(r, s, status, s.Start.Add(d), bans)
		}
	}
}

// banCollector reports the jails' offences and the active bans at scrape
// time, so the request path keeps no extra counters.
type banCollector struct {
	s        *Server
	offences *prometheus.Desc
	bansDesc *prometheus.Desc
	escDesc  *prometheus.Desc
	escNot   *prometheus.Desc
}

func newBanCollector(s *Server) *banCollector {
	return &banCollector{
		s: s,
		offences: prometheus.NewDesc("gatehouse_jail_offences_total",
			"Offences reported to each jail.", []string{"jail"}, nil),
		bansDesc: prometheus.NewDesc("gatehouse_bans_active",
			"Active bans by jail (manual for bans made through the admin API).", []string{"jail"}, nil),
		escDesc: prometheus.NewDesc("gatehouse_jail_escalations_total",
			"Networks each jail banned as one entry after enough of their clients were banned (jails.NAME.escalate).", []string{"jail"}, nil),
		escNot: prometheus.NewDesc("gatehouse_jail_escalations_refused_total",
			"Escalations not made because the network holds an allow or trusted_proxies address, or loopback.", []string{"jail"}, nil),
	}
}

func (c *banCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.offences
	ch <- c.bansDesc
	ch <- c.escDesc
	ch <- c.escNot
}

func (c *banCollector) Collect(ch chan<- prometheus.Metric) {
	rt := c.s.current.Load()
	if rt == nil {
		return
	}
	active := map[string]int{"manual": 0}
	for name := range rt.cfg.Jails {
		active[name] = 0
		ch <- prometheus.MustNewConstMetric(c.offences, prometheus.CounterValue, float64(rt.jails.Offences(name)), name)
		if rt.cfg.Jails[name].Escalate != nil {
			made, refused := rt.jails.Escalations(name)
			ch <- prometheus.MustNewConstMetric(c.escDesc, prometheus.CounterValue, float64(made), name)
			ch <- prometheus.MustNewConstMetric(c.escNot, prometheus.CounterValue, float64(refused), name)
		}
	}
	now := time.Now()
	for _, b := range c.s.bans.List() {
		if !b.Until.After(now) {
			continue
		}
		jail := b.Jail
		if jail == "" {
			jail = "manual"
		}
		// A jail no longer configured (removed by a reload, or a fleet
		// peer's) still has its bans enforced: they are counted under its
		// name, which came from a config too.
		active[jail]++
	}
	for jail, n := range active {
		ch <- prometheus.MustNewConstMetric(c.bansDesc, prometheus.GaugeValue, float64(n), jail)
	}
}
