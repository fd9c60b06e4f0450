package config

// Route is per-path policy inside a host (key hosts[].routes[]), what an
// nginx location block gives. A request is served by the route its path
// selects (match.RouteTable: exact "=/path" first, then the longest
// matching prefix unless a "^~/prefix" stops the search, then "*.ext"
// and "re:" patterns in config order win over a prefix, as nginx chooses
// a location); a path no route selects is served by the host itself.
// Every field but Paths is optional: a field left out takes the host's
// setting.
type Route struct {
	// Paths selects the requests: "/prefix", "/prefix/", "/bytes*",
	// "=/exact", "^~/prefix", "*.ext" and "re:REGEX", matched on the
	// canonical path ignoring ASCII case (regexes run on the lower-case
	// path). Required.
	Paths []string `yaml:"paths"`
	// Upstreams sends the route elsewhere than the host's upstreams
	// (key hosts[].routes[].upstreams). Default: the host's.
	Upstreams []Upstream `yaml:"upstreams"`
	// ResponseHeaderTimeout, ReadTimeout, MaxFails and FailTimeout
	// override the host's upstream settings for this route.
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
	ReadTimeout           Duration `yaml:"read_timeout"`
	MaxFails              *int     `yaml:"max_fails"`
	FailTimeout           Duration `yaml:"fail_timeout"`
	// BasicAuth replaces the host's basic auth on this route: a block
	// of its own, or "off" to exempt the route (a health check inside an
	// authenticated host). Default: the host's.
	BasicAuth *BasicAuth `yaml:"basic_auth"`
	// Access replaces the host's access rules on this route.
	Access []AccessRule `yaml:"access"`
	// Jail receives an offence per request the route's access denies
	// (default: the host's jail) and per respond answer (only when the
	// route names it itself). None: no offence.
	Jail string `yaml:"jail"`
	// Geo replaces the host's country and ASN rule on this route, or
	// "off" exempts the route from it. Default: the host's.
	Geo *Geo `yaml:"geo"`
	// Limit names the limits.rates entries this route's requests take a
	// token from, or "off". Default: the host's.
	Limit Names `yaml:"limit"`
	// Respond answers every request of the route itself, without an
	// upstream (nginx's return). nil: proxied.
	Respond *Respond `yaml:"respond"`
	// Headers edits the route's response headers on top of the host's:
	// a name set here replaces the host's value, Remove adds to the
	// host's list.
	Headers *RouteHeaders `yaml:"headers"`
	// MaxBody caps the request body on this route; 0 means no limit.
	// Default: the host's max_body.
	MaxBody *Size `yaml:"max_body"`
	// WebSocket allows WebSocket upgrades on this route. Default: the
	// host's websocket.
	WebSocket *bool `yaml:"websocket"`
}

// RouteHeaders edits a route's response headers (key
// hosts[].routes[].headers).
type RouteHeaders struct {
	// Set maps header names to values; "" removes the header. Default
	// none.
	Set map[string]string `yaml:"set"`
	// Remove lists header names to drop. Default none.
	Remove []string `yaml:"remove"`
}

// Respond is a fixed answer (key hosts[].routes[].respond), as nginx's
// return writes it.
type Respond struct {
	// Status is the answer's status, 200–599, or 444: close the
	// connection without an answer (nginx's 444). Required.
	Status int `yaml:"status"`
	// Body is the answer's text/plain body. Default: the status text.
	Body string `yaml:"body"`
	// Location is the absolute URL or path a 301, 302, 303, 307 or 308
	// sends the client to. Required for those, refused for others.
	Location string `yaml:"location"`
}

// Rate is one named rate limit (key limits.rates.NAME), nginx's
// limit_req_zone and limit_req in one: a leaky bucket per key that
// drains at Rate, holding up to Burst requests over it.
type Rate struct {
	// Rate is the sustained rate, "10r/s" or "30r/m" as nginx writes it.
	// Required.
	Rate RatePer `yaml:"rate"`
	// Burst is how many requests over Rate are held (queued or answered
	// at once, see Delay) before requests are refused. Default 0.
	Burst int `yaml:"burst"`
	// Key is what a bucket counts: "client" (the client address, an IPv6
	// client by its ipv6_prefix), "client+host" (per client and host
	// name), or "header:NAME" (per value of a request header, such as
	// an API key; requests without it are counted by client). Default
	// "client".
	Key string `yaml:"key"`
	// Delay is how many requests over Rate are answered at once: the
	// rest of the burst waits until the rate lets it through. "nodelay"
	// answers the whole burst at once. Default 0: every request over Rate
	// waits (nginx's limit_req without nodelay).
	Delay RateDelay `yaml:"delay"`
	// Status answers a refused request, 400–599. Default 429.
	Status int `yaml:"status"`
	// Jail receives an offence per refused request. Default none.
	Jail string `yaml:"jail"`
	// Shared makes the limit hold across every node of the fleet (needs
	// fleet). Default false: per node.
	Shared bool `yaml:"shared"`
}

// Rate key kinds (Rate.Key).
const (
	RateKeyClient     = "client"
	RateKeyClientHost = "client+host"
	RateKeyHeader     = "header:"
)
