package proxy

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"gatehouse/middleware"
	"gatehouse/proxy/config"
	"gatehouse/proxy/ui"
	"gatehouse/rules/intel/geo"
)

// geoPoll is how often the GeoIP database files are checked for a
// change: one stat per file, so geoipupdate's new files serve within
// a second or two.
const geoPoll = time.Second

// openGeo returns the GeoIP databases of cfg (nil without intel.geoip):
// prev's, when they read the same files, checked for changes on disk
// (a config reload re-reads a file that changed); else opened anew. A
// database that cannot be opened fails the build: no rule may pass for
// want of its data.
func (s *Server) openGeo(cfg *config.File, prev *generation) (*geo.DB, error) {
	gc := cfg.Intel.GeoIP
	if gc == nil {
		return nil, nil
	}
	if prev != nil && prev.geo != nil {
		if c, a := prev.geo.Config(); c == gc.Country && a == gc.ASN {
			// A failure is logged and counted by Refresh; the last good
			// copy serves on.
			_, _ = prev.geo.Refresh()
			return prev.geo, nil
		}
	}
	return geo.Open(geo.Config{Country: gc.Country, ASN: gc.ASN, Log: s.log.With("component", "geoip")})
}

// watchGeo reloads the current generation's GeoIP databases when their
// files change. Refresh logs and counts a failure once per file state.
func (s *Server) watchGeo(ctx context.Context) {
	t := time.NewTicker(geoPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if db := s.current.Load().geo; db != nil {
			_, _ = db.Refresh() // logged and counted by the DB
		}
	}
}

// buildGeo builds a site's country and ASN rule, and the upstream
// headers when intel.geoip.headers asks for them on every host.
func buildGeo(b *chainBuilder, st *site) (wrapper, error) {
	db := b.g.geo
	rule := st.geo
	headers := b.cfg.Intel.GeoIP != nil && b.cfg.Intel.GeoIP.Headers
	if rule != nil && rule.Off {
		rule = nil
	}
	if rule == nil && !headers {
		return nil, nil
	}
	gc := middleware.GeoConfig{Pass: prefixes(b.cfg.Allow), Jail: st.jail, Headers: headers}
	if rule != nil {
		gc.Allow, gc.Deny = rule.Allow, rule.Deny
		gc.ASNAllow, gc.ASNDeny = asns(rule.ASNAllow), asns(rule.ASNDeny)
		host := st.route.name
		m := b.s.metrics
		gc.Blocked = func(country string, asn uint32, byASN bool) {
			if byASN {
				m.geoASNBlocks.WithLabelValues(host, asnLabel(rule, asn)).Inc()
				return
			}
			if country == "" {
				country = geo.Unknown
			}
			m.geoCountryBlocks.WithLabelValues(host, country).Inc()
		}
	}
	return middleware.Geo(gc, db, b.g.jails, b.s.log)
}

// asnLabel is the asn label of a block: the number when the config
// lists it (asn_deny), else "other" (asn_allow refuses every other AS,
// an unbounded set).
func asnLabel(rule *config.Geo, asn uint32) string {
	for _, a := range rule.ASNDeny {
		if uint32(a) == asn {
			return strconv.FormatUint(uint64(asn), 10)
		}
	}
	return "other"
}

func asns(in []config.ASN) []uint32 {
	out := make([]uint32, len(in))
	for i, a := range in {
		out[i] = uint32(a)
	}
	return out
}

// geoCollector reports the GeoIP databases of the current generation.
type geoCollector struct {
	s                       *Server
	build, loaded, failures *prometheus.Desc
}

func newGeoCollector(s *Server) *geoCollector {
	return &geoCollector{s: s,
		build: prometheus.NewDesc("gatehouse_geoip_build_timestamp_seconds",
			"Build time of the GeoIP database serving, from its metadata.", []string{"database"}, nil),
		loaded: prometheus.NewDesc("gatehouse_geoip_loaded_timestamp_seconds",
			"When the GeoIP database serving was read from disk.", []string{"database"}, nil),
		failures: prometheus.NewDesc("gatehouse_geoip_reload_failures_total",
			"GeoIP database reloads that failed (the last good copy kept serving).", []string{"database"}, nil),
	}
}

func (c *geoCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.build
	ch <- c.loaded
	ch <- c.failures
}

func (c *geoCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.s.current.Load()
	if g == nil || g.geo == nil {
		return
	}
	st := g.geo.Stats()
	for _, f := range []struct {
		name string
		fs   geo.FileStats
	}{{"country", st.Country}, {"asn", st.ASN}} {
		if f.fs.Path == "" {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.build, prometheus.GaugeValue, float64(f.fs.Build.Unix()), f.name)
		ch <- prometheus.MustNewConstMetric(c.loaded, prometheus.GaugeValue, float64(f.fs.Loaded.Unix()), f.name)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(f.fs.ReloadFailures), f.name)
	}
}

// geoPanel is the dashboard's view of the GeoIP databases, as lists.
func (s *Server) geoPanel() []ui.IntelList {
	db := s.current.Load().geo
	if db == nil {
		return nil
	}
	st := db.Stats()
	var out []ui.IntelList
	for _, f := range []struct {
		name string
		fs   geo.FileStats
	}{{"country", st.Country}, {"asn", st.ASN}} {
		if f.fs.Path == "" {
			continue
		}
		out = append(out, ui.IntelList{Kind: "GeoIP database", Name: f.name, Source: f.fs.Path,
			Entries: f.fs.Records, Updated: f.fs.Build, LastError: f.fs.LastError})
	}
	return out
}

// geoBlocks sums the geo rules' refusals over hosts, by country and by
// AS number, for the dashboard.
func (s *Server) geoBlocks() []ui.GeoBlock {
	var out []ui.GeoBlock
	for _, c := range []struct {
		kind string
		vec  *prometheus.CounterVec
	}{{"country", s.metrics.geoCountryBlocks}, {"asn", s.metrics.geoASNBlocks}} {
		sums := map[string]uint64{}
		for _, m := range collectCounters(c.vec) {
			sums[m.labels[c.kind]] += m.value
		}
		for v, n := range sums {
			out = append(out, ui.GeoBlock{Kind: c.kind, Value: v, Count: n})
		}
	}
	return out
}

// seriesValue is one series of a CounterVec.
type seriesValue struct {
	labels map[string]string
	value  uint64
}

// collectCounters reads every series of vec.
func collectCounters(vec *prometheus.CounterVec) []seriesValue {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		vec.Collect(ch)
		close(ch)
	}()
	var out []seriesValue
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil || d.Counter == nil {
			continue
		}
		cv := seriesValue{labels: map[string]string{}, value: uint64(d.Counter.GetValue())}
		for _, l := range d.Label {
			cv.labels[l.GetName()] = l.GetValue()
		}
		out = append(out, cv)
	}
	return out
}
