package config

// Intel is what gatehouse knows about who connects (key intel): the
// refresh of provider address ranges, GeoIP databases and blocklist
// feeds. Every key is optional.
type Intel struct {
	// Refresh is how often the named trusted-proxy sets (cloudflare,
	// fastly, cloudfront) and url: lists of trusted_proxies are fetched
	// again from their publisher, and the default refresh of feeds[] with
	// a url (key intel.refresh). Default 0: off; gatehouse then makes no
	// outbound request and uses the ranges shipped in the binary (or the
	// last good copy kept in state_dir).
	Refresh Duration `yaml:"refresh"`
	// GeoIP names the MaxMind-format databases that hosts[].geo and
	// hosts[].routes[].geo rules read (key intel.geoip). nil: none.
	GeoIP *GeoIP `yaml:"geoip"`
	// Feeds are blocklists of address prefixes (key intel.feeds[]).
	// Default none.
	Feeds []Feed `yaml:"feeds"`
}

// GeoIP locates the country and ASN databases (key intel.geoip), in the
// MaxMind DB format (GeoLite2-Country, GeoLite2-ASN, DB-IP Lite).
type GeoIP struct {
	// Country is the path of the country database (key
	// intel.geoip.country). Default "": no country lookups.
	Country string `yaml:"country"`
	// ASN is the path of the ASN database (key intel.geoip.asn).
	// Default "": no ASN lookups.
	ASN string `yaml:"asn"`
	// Headers sends the client's country and ASN to upstreams in
	// X-Client-Country and X-Client-ASN (key intel.geoip.headers): an
	// unknown country is "XX" (as Cloudflare's CF-IPCountry writes it),
	// an unknown ASN sends no header. Whatever a client sends under
	// those names is always removed. Default false: not sent.
	Headers bool `yaml:"headers"`
}

// Feed is one blocklist (key intel.feeds[]).
type Feed struct {
	// Name names the feed in metrics, logs and its kernel set: 1–16
	// characters of a–z, 0–9, "-" and "_", unique. Required.
	Name string `yaml:"name"`
	// URL is where the list is fetched from (http or https). One of url
	// and file is required.
	URL string `yaml:"url"`
	// File is a local list, re-read when it changes.
	File string `yaml:"file"`
	// Format is the list's format: plain (one address or CIDR prefix per
	// line, "#" and ";" comments, as FireHOL's netsets and Spamhaus'
	// text lists), spamhaus-drop-json or crowdsec. Default plain.
	Format string `yaml:"format"`
	// Refresh is how often a url feed is fetched again. Default
	// intel.refresh, and 1h when that is off (a feed with a url asks for
	// outbound traffic by being written).
	Refresh Duration `yaml:"refresh"`
	// APIKey is sent as X-Api-Key with each fetch of url, as CrowdSec's
	// LAPI asks of its bouncers: env:NAME or file:PATH (key
	// intel.feeds[].api_key). Default none.
	APIKey Secret `yaml:"api_key"`
	// Action is what a listed client gets: drop (its packets are dropped
	// in the kernel when a firewall backend is on; over HTTP its
	// connection is closed without an answer) or "403". Default drop.
	Action string `yaml:"action"`
}
