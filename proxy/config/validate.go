package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"gatehouse/rules/match"
)

// MaxUpstreams is the most upstreams one host may list; the proxy's
// per-request bookkeeping of tried upstreams is one 64-bit word.
const MaxUpstreams = 64

// validator checks a decoded, defaulted File and collects every problem
// with the line its field was written on. It has no side effects; it only
// stats the directories of the access log files.
type validator struct {
	file  string
	lines map[string]int // from the decoder
	errs  Errors
	warns Errors // what check reports without refusing the file
}

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// line returns the line of field, or of its nearest parent that was
// written in the file (a missing key is reported where its parent is).
func (v *validator) line(field string) int {
	for {
		if l, ok := v.lines[field]; ok {
			return l
		}
		if field == "" {
			return 0
		}
		field = parent(field)
	}
}

// parent strips the last element of a field path: "a.b[2]" → "a.b",
// `a.set["X-Y"]` → "a.set", "a.b" → "a", "a" → "".
func parent(field string) string {
	if strings.HasSuffix(field, `"]`) {
		if i := strings.LastIndex(field, `["`); i >= 0 {
			return field[:i]
		}
	}
	if i := strings.LastIndexAny(field, ".["); i >= 0 {
		return field[:i]
	}
	return ""
}

// check runs every section's checks. They live by concern: listeners and
// limits here, hosts[] in validate_hosts.go, jails, probes, state_dir,
// firewall and notify in validate_bans.go, admin tokens and names in
// validate_admin.go, the signer and signed links in validate_signing.go,
// log in validate_log.go, fleet in fleet.go and tls in tls.go.
func (v *validator) check(f *File) {
	v.listeners(f)
	v.proxyProtocol(f)
	v.limits(&f.Limits)
	v.trustedProxies(f)
	v.hosts(f)
	v.geoip(f)
	v.rates(f)
	if f.Probes != nil && f.Probes.Off {
		v.add("probes", `"off" is for hosts[].probes; without probes, leave the block out`)
	} else if f.Probes != nil {
		v.probes(f.Probes)
	}
	v.jails(f)
	v.watches(f)
	v.feeds(&f.Intel, f.Firewall)
	v.state(f)
	v.fleet(f)
	v.tls(f)
	v.clientCerts(f)
	v.tokens(f.Admin.Tokens)
	v.adminNames(f.Admin.Names)
	v.signer(f.Signer)
	v.log(f)
}

func (v *validator) listeners(f *File) {
	if len(f.Hosts) == 0 && len(f.Watch) > 0 {
		if _, written := v.lines["listen.http"]; written {
			v.warn("listen.http", "a config without hosts serves no requests: nothing listens on %s", f.Listen.HTTP)
		}
		if f.Admin.Listen != "off" {
			v.hostPort("admin.listen", f.Admin.Listen)
		}
		return
	}
	httpOK := v.hostPort("listen.http", f.Listen.HTTP)
	if f.Admin.Listen == "off" {
		return
	}
	if v.hostPort("admin.listen", f.Admin.Listen) && httpOK && overlap(f.Listen.HTTP, f.Admin.Listen) {
		v.add("admin.listen", "%q overlaps listen.http %q; give the admin API its own port", f.Admin.Listen, f.Listen.HTTP)
	}
}

// hostPort checks a listen address and reports whether it is valid.
func (v *validator) hostPort(field, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(field, "%q is not host:port, such as \":80\" or \"127.0.0.1:9901\"", addr)
		return false
	}
	if !match.ValidPort(port) {
		v.add(field, "port %q is not a number between 0 and 65535", port)
		return false
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && checkDNSName(strings.ToLower(host)) != nil {
			v.add(field, "host %q is not an IP address or a host name", host)
			return false
		}
	}
	return true
}

// overlap reports whether two valid listen addresses would bind the same
// port: the same non-zero port on the same host, or on a wildcard host.
// Port 0 (any free port, as tests use) never overlaps.
func overlap(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || strings.TrimLeft(pa, "0") == "" {
		return false
	}
	return ha == hb || isWildcardHost(ha) || isWildcardHost(hb)
}

func isWildcardHost(h string) bool {
	a, err := netip.ParseAddr(h)
	return h == "" || (err == nil && a.IsUnspecified())
}

// zeroLimits reports limits written as 0 (or null). Zero means "default"
// for these keys, so an explicit 0 — often meant as "no limit", as in
// net/http — would silently become the default instead; refuse it. It
// runs before applyDefaults.
func (v *validator) zeroLimits(l Limits) {
	var def File
	applyDefaults(&def)
	d := def.Limits
	for _, c := range []struct {
		key  string
		zero bool
		def  any
	}{
		{"read_header_timeout", l.ReadHeaderTimeout == 0, d.ReadHeaderTimeout},
		{"idle_timeout", l.IdleTimeout == 0, d.IdleTimeout},
		{"max_header_bytes", l.MaxHeaderBytes == 0, d.MaxHeaderBytes},
		{"shutdown_timeout", l.ShutdownTimeout == 0, d.ShutdownTimeout},
		{"upstream_dial_timeout", l.UpstreamDialTimeout == 0, d.UpstreamDialTimeout},
		{"upstream_response_header_timeout", l.UpstreamResponseHeaderTimeout == 0, d.UpstreamResponseHeaderTimeout},
		{"upstream_idle_conns", l.UpstreamIdleConns == 0, d.UpstreamIdleConns},
		{"upstream_fail_timeout", l.UpstreamFailTimeout == 0, d.UpstreamFailTimeout},
		{"conns_per_ip", l.ConnsPerIP == 0, d.ConnsPerIP},
		{"h2_max_streams", l.H2MaxStreams == 0, d.H2MaxStreams},
		{"tracked_clients", l.TrackedClients == 0, d.TrackedClients},
		{"body_read_timeout", l.BodyReadTimeout == 0, d.BodyReadTimeout},
	} {
		field := "limits." + c.key
		if _, written := v.lines[field]; written && c.zero {
			v.add(field, "must be greater than 0; remove the key for the default (%v)", c.def)
		}
	}
}

// zeroHostTimeouts reports a hosts[].body_read_timeout written as 0 (or
// null): unset inherits limits.body_read_timeout, and an explicit 0 —
// often meant as "no timeout" — would silently inherit too. It runs
// before applyDefaults.
func (v *validator) zeroHostTimeouts(hosts []Host) {
	for i, h := range hosts {
		field := "hosts[" + strconv.Itoa(i) + "].body_read_timeout"
		if _, written := v.lines[field]; written && h.BodyReadTimeout == 0 {
			v.add(field, "must be greater than 0; remove the key to use limits.body_read_timeout")
		}
	}
}

// limits checks ranges after defaults. Durations need no check here:
// ParseDuration refuses negatives and zeroLimits refuses an explicit 0.
func (v *validator) limits(l *Limits) {
	if l.MaxHeaderBytes < 1<<10 || l.MaxHeaderBytes > 16<<20 {
		v.add("limits.max_header_bytes", "%v is not between 1KB and 16MB", l.MaxHeaderBytes)
	}
	if l.UpstreamIdleConns < 1 || l.UpstreamIdleConns > 10000 {
		v.add("limits.upstream_idle_conns", "%d is not between 1 and 10000", l.UpstreamIdleConns)
	}
	if l.ConnsPerIP < 1 || l.ConnsPerIP > 100000 {
		v.add("limits.conns_per_ip", "%d is not between 1 and 100000", l.ConnsPerIP)
	}
	if l.H2MaxStreams < 1 || l.H2MaxStreams > 10000 {
		v.add("limits.h2_max_streams", "%d is not between 1 and 10000", l.H2MaxStreams)
	}
	if l.TrackedClients < 1000 || l.TrackedClients > 10_000_000 {
		v.add("limits.tracked_clients", "%d is not between 1000 and 10000000", l.TrackedClients)
	}
}
