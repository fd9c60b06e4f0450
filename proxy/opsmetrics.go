package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse/proxy/upstream"
)

// hostPool is one configured host's upstream pool, under the host's name.
type hostPool struct {
	host string
	pool *upstream.Pool
}

// opsCollector reports, at scrape time, what operators alert on and the
// request path keeps anyway: certificate expiry, upstream health, blocked
// requests by reason (the dashboard's counts) and the clients each jail
// tracks. Nothing here adds work to a request.
type opsCollector struct {
	s         *Server
	certDesc  *prometheus.Desc
	upDesc    *prometheus.Desc
	blocked   *prometheus.Desc
	trackDesc *prometheus.Desc
}

func newOpsCollector(s *Server) *opsCollector {
	return &opsCollector{
		s: s,
		certDesc: prometheus.NewDesc("gatehouse_cert_expiry_timestamp_seconds",
			"NotAfter, in Unix seconds, of the certificate served for each name: static certificates by their DNS names, ACME-managed names once a certificate is held.",
			[]string{"name"}, nil),
		upDesc: prometheus.NewDesc("gatehouse_upstream_up",
			"1 when the upstream is in rotation, 0 while it is skipped after refusing a connection (passive health, limits.upstream_fail_timeout).",
			[]string{"host", "upstream"}, nil),
		blocked: prometheus.NewDesc("gatehouse_blocked_requests_total",
			"Requests the gateway answered itself instead of proxying, by the dashboard's reasons: probe, auth, hotlink, flood, banned, other.",
			[]string{"reason"}, nil),
		trackDesc: prometheus.NewDesc("gatehouse_jail_tracked_clients",
			"Clients each jail holds state for (offences in its window, ban history), at most limits.tracked_clients.",
			[]string{"jail"}, nil),
	}
}

func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.certDesc
	ch <- c.upDesc
	ch <- c.blocked
	ch <- c.trackDesc
}

func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, kt := range c.s.metrics.dash.BlockedTotals() {
		ch <- prometheus.MustNewConstMetric(c.blocked, prometheus.CounterValue, float64(kt.Count), kt.Kind.String())
	}
	if c.s.certs != nil {
		for name, notAfter := range c.s.certs.Expiries() {
			ch <- prometheus.MustNewConstMetric(c.certDesc, prometheus.GaugeValue, float64(notAfter.Unix()), name)
		}
	}
	rt := c.s.current.Load()
	if rt == nil {
		return
	}
	now := time.Now()
	// A URL in several pools of one host (a route with settings of its
	// own) is reported once, as its first pool sees it.
	seen := map[[2]string]bool{}
	for _, hp := range rt.pools {
		for _, u := range hp.pool.Upstreams() {
			k := [2]string{hp.host, u.URL.Redacted()}
			if seen[k] {
				continue
			}
			seen[k] = true
			up := 1.0
			if u.DownUntil.After(now) {
				up = 0
			}
			ch <- prometheus.MustNewConstMetric(c.upDesc, prometheus.GaugeValue, up, hp.host, u.URL.Redacted())
		}
	}
	for name := range rt.cfg.Jails {
		ch <- prometheus.MustNewConstMetric(c.trackDesc, prometheus.GaugeValue, float64(rt.jails.Tracked(name)), name)
	}
}
