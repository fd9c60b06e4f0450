package config

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/middleware"
	"gatehouse/rules/match"
)

// This file checks per-path policy: hosts[].routes[], the host-level
// policy fields routes inherit (access, jail, limit, probes, upstream
// settings) and limits.rates.

// rates checks limits.rates.
func (v *validator) rates(f *File) {
	for _, name := range slices.Sorted(maps.Keys(f.Limits.Rates)) {
		p := mapEntry("limits.rates", name)
		r := f.Limits.Rates[name]
		if name == "off" || name == "" {
			v.add(p, "%q cannot name a rate limit: \"limit: off\" means none", name)
		}
		if r.Rate.PerSecond == 0 {
			v.add(p+".rate", `a rate is required, such as "10r/s" or "30r/m"`)
		}
		if r.Burst < 0 || r.Burst > 1_000_000 {
			v.add(p+".burst", "%d is not between 0 and 1000000", r.Burst)
		}
		switch k := r.Key; {
		case k == RateKeyClient, k == RateKeyClientHost:
		case strings.HasPrefix(k, RateKeyHeader):
			if h := strings.TrimPrefix(k, RateKeyHeader); !validHeaderName(h) {
				v.add(p+".key", "%q is not a valid header name", h)
			}
		default:
			v.add(p+".key", "%q is not client, client+host or header:NAME", k)
		}
		if r.Status < 400 || r.Status > 599 {
			v.add(p+".status", "%d is not an error status (400-599)", r.Status)
		}
		v.jailRef(f, p+".jail", r.Jail)
		if r.Rate.PerSecond > 0 && !r.Delay.NoDelay && r.Burst > r.Delay.N {
			// Every request between delay and burst waits its turn, each
			// holding a connection and a goroutine.
			wait := time.Duration(float64(r.Burst-r.Delay.N) / r.Rate.PerSecond * float64(time.Second))
			if wait > time.Minute {
				v.warn(p, "a request may wait up to %s for its turn (burst %d over delay %d at %s): consider delay: nodelay or a smaller burst",
					Duration(wait.Round(time.Second)), r.Burst, r.Delay.N, r.Rate)
			}
		}
		if r.Shared && f.Fleet == nil {
			v.add(p+".shared", "a shared limit needs fleet (the Redis the nodes share)")
		}
	}
}

// jailRef checks that a jail a rule names exists.
func (v *validator) jailRef(f *File, field, jail string) {
	if _, ok := f.Jails[jail]; !ok && jail != "" {
		v.add(field, "jail %q is not defined under jails", jail)
	}
}

// hostPolicy checks the fields a host's routes inherit, and the routes.
func (v *validator) hostPolicy(f *File, p string, h *Host) {
	if h.BasicAuth != nil && h.BasicAuth.Off {
		v.add(p+".basic_auth", `"off" is for routes; a host without basic auth leaves basic_auth out`)
	}
	if h.Probes != nil && !h.Probes.Off {
		v.probesAt(p+".probes", h.Probes)
	}
	v.access(p+".access", h.Access)
	v.geoRule(f, p+".geo", h.Geo, false)
	v.jailRef(f, p+".jail", h.Jail)
	v.limitRefs(f, p+".limit", h.Limit)
	v.maxFails(p+".max_fails", h.MaxFails)
	v.routes(f, p, h)
}

// access checks an access list: it must end in "allow all" or "deny
// all", so what happens to a client no rule names is written down.
func (v *validator) access(field string, rules []AccessRule) {
	for i, r := range rules {
		if !r.All && !r.Prefix.IsValid() {
			v.add(field+"["+strconv.Itoa(i)+"]", "empty rule")
		}
		if r.All && i < len(rules)-1 {
			v.add(field+"["+strconv.Itoa(i+1)+"]", "comes after %q, which decides for every client: it can never apply", r)
			return
		}
	}
	if n := len(rules); n > 0 && !rules[n-1].All {
		v.add(field, `end the list with "allow all" or "deny all": it decides for the clients no rule names (nginx allows them)`)
	}
}

func (v *validator) limitRefs(f *File, field string, names Names) {
	if names.Off() {
		return
	}
	seen := map[string]bool{}
	for i, n := range names {
		fi := field
		if len(names) > 1 {
			fi += "[" + strconv.Itoa(i) + "]"
		}
		switch _, ok := f.Limits.Rates[n]; {
		case n == "off":
			v.add(fi, `"off" stands alone: "limit: off"`)
		case !ok:
			v.add(fi, "rate limit %q is not defined under limits.rates", n)
		case seen[n]:
			v.add(fi, "%q is listed twice", n)
		}
		seen[n] = true
	}
}

func (v *validator) maxFails(field string, n *int) {
	if n != nil && (*n < 0 || *n > 1000) {
		v.add(field, "%d is not between 0 (never mark an upstream down) and 1000", *n)
	}
}

// routes checks hosts[i].routes: each route's fields, then the route
// choice as a whole (duplicate patterns, routes no path reaches).
func (v *validator) routes(f *File, p string, h *Host) {
	if len(h.Routes) == 0 {
		return
	}
	paths := make([][]string, len(h.Routes))
	for i := range h.Routes {
		r := &h.Routes[i]
		rp := p + ".routes[" + strconv.Itoa(i) + "]"
		paths[i] = r.Paths
		if len(r.Paths) == 0 {
			v.add(rp+".paths", "at least one path is required")
		}
		v.upstreamList(rp+".upstreams", r.Upstreams, false)
		v.maxFails(rp+".max_fails", r.MaxFails)
		if ba := r.BasicAuth; ba != nil && !ba.Off {
			v.basicAuth(rp+".basic_auth", ba)
		}
		if r.Access != nil && len(r.Access) == 0 {
			v.add(rp+".access", `an empty list would drop the host's access rules: write ["allow all"] to open the route`)
		}
		if r.Limit != nil && len(r.Limit) == 0 {
			v.add(rp+".limit", `an empty list would drop the host's limits: write "limit: off"`)
		}
		v.access(rp+".access", r.Access)
		v.geoRule(f, rp+".geo", r.Geo, true)
		v.jailRef(f, rp+".jail", r.Jail)
		v.limitRefs(f, rp+".limit", r.Limit)
		if r.Headers != nil {
			v.headers(rp+".headers", Headers{Set: r.Headers.Set, Remove: r.Headers.Remove})
		}
		if h.BufferRequests && r.MaxBody != nil && *r.MaxBody == 0 {
			v.add(rp+".max_body", "the host buffers request bodies (buffer_requests), which needs a bound: give a size")
		}
		if rs := r.Respond; rs != nil {
			v.respond(rp+".respond", rs)
			// respond answers first, as nginx's return does: nothing
			// that would run after it may be written beside it.
			for _, f := range []struct {
				key string
				set bool
			}{{"upstreams", len(r.Upstreams) > 0}, {"access", r.Access != nil}, {"limit", r.Limit != nil}, {"basic_auth", r.BasicAuth != nil}, {"geo", r.Geo != nil}} {
				if f.set {
					v.add(rp+"."+f.key, "the route answers every request itself (respond), before %s would run: move %s to a route of its own", f.key, f.key)
				}
			}
		}
	}
	// Each pattern on its own first, so that every bad one is named.
	bad := false
	for i, r := range h.Routes {
		for j, pat := range r.Paths {
			if _, err := match.CompileRoutes([][]string{{pat}}); err != nil {
				var re *match.RouteError
				if errors.As(err, &re) {
					err = re.Err
				}
				v.add(p+".routes["+strconv.Itoa(i)+"].paths["+strconv.Itoa(j)+"]", "%v", err)
				bad = true
			}
		}
	}
	if bad {
		return
	}
	tab, err := match.CompileRoutes(paths)
	if err != nil {
		var re *match.RouteError
		if errors.As(err, &re) {
			field := p + ".routes[" + strconv.Itoa(re.Route) + "].paths"
			if re.Path >= 0 {
				field += "[" + strconv.Itoa(re.Path) + "]"
			}
			v.add(field, "%v", re.Err)
		} else {
			v.add(p+".routes", "%v", err)
		}
		return
	}
	for i, r := range h.Routes {
		ws := match.Witnesses(r.Paths)
		if len(ws) == 0 {
			continue // regexes only: nothing to try
		}
		other := -1
		reached := false
		for _, w := range ws {
			got := tab.SelectPath(w)
			if got == i {
				reached = true
				break
			}
			if other < 0 {
				other = got
			}
		}
		if !reached && other >= 0 {
			v.warn(p+".routes["+strconv.Itoa(i)+"]", "no path reaches this route: %q (and every path it names) is served by routes[%d], which comes first in the route choice (exact, longest prefix, then patterns in order)",
				ws[0], other)
		}
	}
}

// respond checks a fixed answer.
func (v *validator) respond(p string, rs *Respond) {
	redirect := rs.Status == 301 || rs.Status == 302 || rs.Status == 303 || rs.Status == 307 || rs.Status == 308
	switch {
	case rs.Status == 444:
	case rs.Status < 200 || rs.Status > 599:
		v.add(p+".status", "%d is not a status from 200 to 599, nor 444 (close without an answer)", rs.Status)
	}
	switch {
	case redirect && rs.Location == "":
		v.add(p+".location", "a %d redirect needs a location", rs.Status)
	case !redirect && rs.Location != "":
		v.add(p+".location", "only a 301, 302, 303, 307 or 308 answer sends a location")
	case rs.Location != "":
		if err := middleware.CheckLocation(rs.Location); err != nil {
			v.add(p+".location", "%v", err)
		}
	}
	if rs.Status == 444 && rs.Body != "" {
		v.add(p+".body", "444 closes the connection without an answer: there is no body to send")
	}
	if rs.Status == http.StatusNoContent && rs.Body != "" || rs.Status == http.StatusNotModified && rs.Body != "" {
		v.add(p+".body", "a %d answer has no body", rs.Status)
	}
}

// upstreamList checks a host's or a route's upstreams: required for a
// host, optional for a route.
func (v *validator) upstreamList(field string, ups []Upstream, required bool) {
	switch {
	case len(ups) == 0 && required:
		v.add(field, "at least one upstream URL is required")
	case len(ups) > MaxUpstreams:
		v.add(field, "%d upstreams; at most %d are allowed", len(ups), MaxUpstreams)
	}
	seen := map[string]string{}
	for j, u := range ups {
		f := field + "[" + strconv.Itoa(j) + "]"
		if u.u == nil {
			v.add(f, "empty upstream URL")
			continue
		}
		if first, dup := seen[u.String()]; dup {
			v.add(f, "%s is listed twice (first at line %d)", u, v.line(first))
			continue
		}
		seen[u.String()] = f
	}
}

// warn records a warning: check prints it, the config still loads.
func (v *validator) warn(field, format string, args ...any) {
	v.warns = append(v.warns, &Error{File: v.file, Line: v.line(field), Field: field, Msg: "warning: " + fmt.Sprintf(format, args...)})
}
