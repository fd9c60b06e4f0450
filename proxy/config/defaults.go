package config

import (
	"cmp"
	"time"
)

// applyDefaults fills every field the file left at its zero value with the
// default written in that field's doc comment. It is the only place
// defaults live; Parse calls it after decoding and before validation.
func applyDefaults(f *File) {
	if f.Listen.HTTP == "" && (len(f.Hosts) > 0 || len(f.Watch) == 0) {
		// A watch-only config serves no proxy: no public listener.
		f.Listen.HTTP = ":80"
	}
	applyTLSDefaults(f)
	applyIntelDefaults(&f.Intel)
	applyClientCertDefaults(f)

	l := &f.Limits
	setDuration(&l.ReadHeaderTimeout, 10*time.Second)
	setDuration(&l.IdleTimeout, 2*time.Minute)
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = 64 << 10
	}
	setDuration(&l.ShutdownTimeout, 30*time.Second)
	setDuration(&l.UpstreamDialTimeout, 5*time.Second)
	setDuration(&l.UpstreamResponseHeaderTimeout, 60*time.Second)
	if l.UpstreamIdleConns == 0 {
		l.UpstreamIdleConns = 128
	}
	setDuration(&l.UpstreamFailTimeout, 10*time.Second)
	if l.ConnsPerIP == 0 {
		l.ConnsPerIP = 256
	}
	if l.TrackedClients == 0 {
		l.TrackedClients = 100_000
	}
	if l.H2MaxStreams == 0 {
		l.H2MaxStreams = 250
	}
	setDuration(&l.BodyReadTimeout, 60*time.Second)

	for i := range f.Hosts {
		// A host without its own body_read_timeout inherits the limit.
		setDuration(&f.Hosts[i].BodyReadTimeout, l.BodyReadTimeout.D())
		if f.Hosts[i].HSTS == "" {
			f.Hosts[i].HSTS = "max-age=31536000"
		}
		if f.Hosts[i].WebSocket == nil {
			on := true
			f.Hosts[i].WebSocket = &on
		}
		if hl := f.Hosts[i].Hotlink; hl != nil && hl.Action.Status == 0 && hl.Action.Redirect == "" {
			hl.Action.Status = 403
		}
		if sl := f.Hosts[i].SignedLinks; sl != nil {
			setDuration(&sl.MaxExpires, 24*time.Hour)
			if sl.Query == "" {
				sl.Query = SignedLinksQuerySign
			}
		}
		basicAuthDefaults(f.Hosts[i].BasicAuth)
		for j := range f.Hosts[i].Routes {
			basicAuthDefaults(f.Hosts[i].Routes[j].BasicAuth)
		}
	}

	if f.Firewall.Backend == "" {
		f.Firewall.Backend = "none"
	}
	setDuration(&f.Firewall.Reconcile, 30*time.Second)
	if n := f.Notify; n != nil {
		setDuration(&n.MinInterval, time.Minute)
	}
	applyFleetDefaults(f.Fleet)

	if f.IPv6Prefix == 0 {
		f.IPv6Prefix = 64
	}
	for name, j := range f.Jails {
		if j.MaxRetry == 0 {
			j.MaxRetry = 5
		}
		setDuration(&j.FindTime, 10*time.Minute)
		setDuration(&j.BanTime, 10*time.Minute)
		setDuration(&j.Forget, 7*24*time.Hour)
		if j.Increment != nil && j.Increment.Factor == 0 {
			j.Increment.Factor = 2
		}
		if e := j.Escalate; e != nil {
			e.IPv4 = cmp.Or(e.IPv4, 24)
			e.IPv6 = cmp.Or(e.IPv6, 48)
			e.After = cmp.Or(e.After, 5)
		}
		f.Jails[name] = j
	}

	if p := f.Probes; p != nil {
		if p.Jail == "" {
			p.Jail = "probes"
		}
		if p.Status == 0 {
			p.Status = 403
		}
	}
	for name, r := range f.Limits.Rates {
		if r.Key == "" {
			r.Key = RateKeyClient
		}
		if r.Status == 0 {
			r.Status = 429
		}
		f.Limits.Rates[name] = r
	}
	for i := range f.Hosts {
		h := &f.Hosts[i]
		setDuration(&h.ResponseHeaderTimeout, l.UpstreamResponseHeaderTimeout.D())
		setDuration(&h.FailTimeout, l.UpstreamFailTimeout.D())
		if h.MaxFails == nil {
			one := 1
			h.MaxFails = &one
		}
		// A host's probes block takes what it leaves out from the
		// global one.
		if hp := h.Probes; hp != nil && !hp.Off {
			g := f.Probes
			if g == nil {
				g = &Probes{Jail: "probes", Status: 403}
			}
			if hp.Presets == nil {
				hp.Presets = g.Presets
			}
			if hp.Paths == nil {
				hp.Paths = g.Paths
			}
			if hp.Exclude == nil {
				hp.Exclude = g.Exclude
			}
			if hp.Jail == "" {
				hp.Jail = g.Jail
			}
			if hp.Status == 0 {
				hp.Status = g.Status
			}
		}
	}

	if s3 := f.Signer.S3; s3 != nil {
		setDuration(&s3.MaxExpires, 24*time.Hour)
	}
	if cf := f.Signer.CloudFront; cf != nil {
		setDuration(&cf.MaxExpires, 24*time.Hour)
	}

	if f.Admin.Listen == "" {
		f.Admin.Listen = DefaultAdminListen
	}

	if f.Log.Access == "" {
		f.Log.Access = "json"
	}
	if f.Log.Level == "" {
		f.Log.Level = "info"
	}
	for i := range f.Hosts {
		// A host's own log inherits what it leaves out from the global one.
		if hl := f.Hosts[i].Log; hl != nil {
			if hl.Access == "" {
				hl.Access = f.Log.Access
			}
			if hl.AccessFile == "" {
				hl.AccessFile = f.Log.AccessFile
			}
		}
	}
}

// basicAuthDefaults fills a basic_auth block (a host's or a route's).
func basicAuthDefaults(ba *BasicAuth) {
	if ba == nil || ba.Off {
		return
	}
	if ba.Realm == "" {
		ba.Realm = "Restricted"
	}
	if len(ba.Paths) == 0 {
		ba.Paths = []string{"/"}
	}
	if ba.UserHeader == "" {
		ba.UserHeader = "X-Forwarded-User"
	}
}

func setDuration(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}
