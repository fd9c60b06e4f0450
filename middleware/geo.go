package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"gatehouse/rules"
	"gatehouse/rules/intel/geo"
)

// Upstream headers Geo sets, and Hygiene removes from every client
// request.
const (
	HeaderClientCountry = "X-Client-Country"
	HeaderClientASN     = "X-Client-Asn" // canonical form of X-Client-ASN
)

// unknownCountry is X-Client-Country for an address without a country,
// as Cloudflare's CF-IPCountry writes it.
const unknownCountry = "XX"

// GeoConfig configures Geo: a host's or route's country and ASN rule.
type GeoConfig struct {
	// Allow admits only the clients of these countries (ISO 3166-1
	// alpha-2, either case), and geo.Unknown names addresses without a
	// country. Not with Deny. Default none.
	Allow []string
	// Deny refuses the clients of these countries (geo.Unknown as in
	// Allow). Default none.
	Deny []string
	// ASNAllow admits only the clients of these autonomous systems; an
	// address without an ASN is refused. Not with ASNDeny.
	ASNAllow []uint32
	// ASNDeny refuses the clients of these autonomous systems.
	ASNDeny []uint32
	// Pass are the prefixes that always pass (the global allow list).
	Pass []netip.Prefix
	// Jail, when set, receives an offence per refused request. Default
	// none.
	Jail string
	// Headers sets X-Client-Country ("XX" when unknown) and, when known,
	// X-Client-ASN on the request the upstream receives. Default off.
	Headers bool
	// Blocked, when set, is called per refused request with the client's
	// country ("" unknown) and ASN, and whether the ASN rule refused it
	// (metrics hang here).
	Blocked func(country string, asn uint32, byASN bool)
}

// listMode is how a compiled list decides.
type listMode uint8

const (
	listNone  listMode = iota // no rule
	listAllow                 // only the listed pass
	listDeny                  // the listed are refused
)

// geoRule is the compiled GeoConfig.
type geoRule struct {
	countryMode listMode
	countries   [geo.Countries]bool
	unknown     bool // geo.Unknown is listed
	asnMode     listMode
	asns        map[uint32]struct{}
	pass        []netip.Prefix
	// values are the X-Client-Country header values by country index,
	// the last the unknown one: built once, shared read-only.
	values [][]string
}

// Geo refuses with 403 the clients its rule names by country or ASN, on
// the client address ClientIP resolved, and sets the upstream headers
// when asked. The lookups (LookupGeo) take no lock and do not allocate;
// X-Client-ASN costs two allocations. db must have the databases the
// rule reads.
func Geo(cfg GeoConfig, db *geo.DB, jails *rules.Jails, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if db == nil {
		return nil, errors.New("geo: no GeoIP database")
	}
	g := &geoRule{pass: cfg.Pass}
	switch {
	case len(cfg.Allow) > 0 && len(cfg.Deny) > 0:
		return nil, errors.New("geo: allow and deny exclude each other")
	case len(cfg.Allow) > 0:
		g.countryMode = listAllow
	case len(cfg.Deny) > 0:
		g.countryMode = listDeny
	}
	for _, c := range append(cfg.Allow, cfg.Deny...) {
		if strings.EqualFold(c, geo.Unknown) {
			g.unknown = true
			continue
		}
		cc, ok := geo.ParseCountry(c)
		if !ok {
			return nil, fmt.Errorf("geo: %q is not an ISO 3166-1 alpha-2 country code", c)
		}
		i, _ := geo.CountryIndex(cc)
		g.countries[i] = true
	}
	if g.countryMode != listNone && !db.HasCountry() {
		return nil, errors.New("geo: a country rule needs a country database")
	}
	switch {
	case len(cfg.ASNAllow) > 0 && len(cfg.ASNDeny) > 0:
		return nil, errors.New("geo: asn_allow and asn_deny exclude each other")
	case len(cfg.ASNAllow) > 0:
		g.asnMode = listAllow
	case len(cfg.ASNDeny) > 0:
		g.asnMode = listDeny
	}
	if g.asnMode != listNone {
		if !db.HasASN() {
			return nil, errors.New("geo: an ASN rule needs an ASN database")
		}
		g.asns = map[uint32]struct{}{}
		for _, n := range append(cfg.ASNAllow, cfg.ASNDeny...) {
			g.asns[n] = struct{}{}
		}
	}
	if cfg.Headers {
		g.values = make([][]string, geo.Countries+1)
		for i := range geo.Countries {
			g.values[i] = []string{string([]byte{'A' + byte(i/26), 'A' + byte(i%26)})}
		}
		g.values[geo.Countries] = []string{unknownCountry}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := ScopeFrom(r)
			LookupGeo(s, db)
			if g.values != nil {
				g.setHeaders(r.Header, s)
			}
			byASN, ok := g.allowed(s)
			if ok {
				next.ServeHTTP(w, r)
				return
			}
			s.Offence = "geo"
			if cfg.Blocked != nil {
				cfg.Blocked(s.Country, s.ASN, byASN)
			}
			if cfg.Jail != "" && jails != nil {
				jails.Report(cfg.Jail, s.ClientIP, "geo denied")
			}
			if log.Enabled(r.Context(), slog.LevelDebug) {
				log.Debug("geo denied", "client_ip", s.ClientIP, "country", s.Country, "asn", s.ASN, "path", s.Path.Path)
			}
			PlainStatus(w, http.StatusForbidden)
		})
	}, nil
}

// LookupGeo fills s.Country and s.ASN from db once per request: the stage
// and the access log share one lookup.
func LookupGeo(s *Scope, db *geo.DB) {
	if s.GeoDone || db == nil {
		return
	}
	s.Country, s.ASN, s.GeoDone = db.Country(s.ClientIP), db.ASN(s.ClientIP), true
}

// allowed applies the rule to the scope's client; byASN reports that
// the ASN list refused it.
func (g *geoRule) allowed(s *Scope) (byASN, ok bool) {
	for _, p := range g.pass {
		if s.ClientIP.IsValid() && p.Contains(s.ClientIP) {
			return false, true
		}
	}
	if g.countryMode != listNone {
		listed := g.unknown
		if i, ok := geo.CountryIndex(s.Country); ok {
			listed = g.countries[i]
		}
		if listed != (g.countryMode == listAllow) {
			return false, false
		}
	}
	if g.asnMode != listNone {
		_, listed := g.asns[s.ASN]
		if s.ASN == 0 {
			listed = false
		}
		if listed != (g.asnMode == listAllow) {
			return true, false
		}
	}
	return false, true
}

// setHeaders writes the upstream headers for the scope's client.
func (g *geoRule) setHeaders(h http.Header, s *Scope) {
	i, ok := geo.CountryIndex(s.Country)
	if !ok {
		i = geo.Countries
	}
	h[HeaderClientCountry] = g.values[i]
	if s.ASN != 0 {
		h[HeaderClientASN] = []string{strconv.FormatUint(uint64(s.ASN), 10)}
	} else {
		delete(h, HeaderClientASN)
	}
}
