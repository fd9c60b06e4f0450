package proxy

import (
	"context"
	"slices"
	"strings"

	"gatehouse/proxy/admin"
	"gatehouse/proxy/cert"
	"gatehouse/proxy/config"
	"gatehouse/proxy/ui"
)

// certPanel shows the certificate source on the dashboard's
// certificates page.
type certPanel struct{ src *cert.Source }

var _ ui.CertSource = certPanel{}

func (p certPanel) Certificates() []ui.CertInfo {
	infos := p.src.Certificates()
	out := make([]ui.CertInfo, len(infos))
	for i, ci := range infos {
		out[i] = ui.CertInfo(ci)
	}
	return out
}

// newAdmin builds the admin listener's handler (package admin) over the
// server's state. The listener is bound once: admin.listen and
// admin.names changes need a restart (warnRestartOnly).
func (s *Server) newAdmin(cfg *config.File) (*admin.Admin, error) {
	ac := admin.Config{
		Listen:    cfg.Admin.Listen,
		Names:     cfg.Admin.Names,
		Current:   func() admin.Current { return s.current.Load().admin },
		Bans:      s.bans,
		SaveBan:   s.persistBan,
		DeleteBan: s.unpersistBan,
		Ready:     s.ready.Load,
		Metrics:   s.metrics.reg,
		Stats:     s.metrics.dash,
		Fleet:     s.fleetSource(cfg),
		Upstreams: s.upstreamHealth,
		Watch:     s.watcher.panel,
		Intel: func() []ui.IntelList {
			return append(append(s.intel.panel(), s.feeds.lists()...), s.geoPanel()...)
		},
		GeoBlocks: s.geoBlocks,
		Log:       s.log,
	}
	if s.certs != nil {
		ac.Certificates = certPanel{s.certs}
	}
	if s.firewall != nil {
		ac.Firewall = func(ctx context.Context) (ui.FirewallStatus, error) {
			st, err := s.firewall.Status(ctx)
			if err != nil {
				return ui.FirewallStatus{}, err
			}
			fs := ui.FirewallStatus{Backend: st.Backend, Entries: len(st.Entries), Want: st.Want,
				Missing: st.Missing, Stale: st.Stale, LastPass: st.LastPass}
			if st.LastError != nil {
				fs.LastError = st.LastError.Error()
			}
			return fs, nil
		}
	}
	return admin.New(ac)
}

// upstreamHealth lists the current generation's upstreams with their
// passive health, by host name.
func (s *Server) upstreamHealth() []ui.Upstream {
	pools := slices.Clone(s.current.Load().pools)
	slices.SortStableFunc(pools, func(a, b hostPool) int { return strings.Compare(a.host, b.host) })
	var out []ui.Upstream
	seen := map[ui.Upstream]bool{}
	for _, hp := range pools {
		for _, u := range hp.pool.Upstreams() {
			k := ui.Upstream{Host: hp.host, URL: u.URL.Redacted()}
			if seen[k] {
				continue // in another pool of the host too (a route's)
			}
			seen[k] = true
			out = append(out, ui.Upstream{Host: hp.host, URL: u.URL.Redacted(), DownUntil: u.DownUntil})
		}
	}
	return out
}
