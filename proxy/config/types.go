package config

// File is a whole gatehouse config file after decoding, defaults and
// validation. Every field documents its YAML key, unit and default; the
// default is applied by applyDefaults and zero never reaches the runtime
// unless the doc says zero means "off".
type File struct {
	// Path is the file the config was read from ("" for an in-memory one).
	// It is set by Load, not by YAML.
	Path string `yaml:"-"`
	// Warnings are what "gatehouse check" reports without refusing the
	// file, such as a route no path reaches. Set by Parse.
	Warnings Errors `yaml:"-"`

	Listen Listen `yaml:"listen"`
	Limits Limits `yaml:"limits"`
	// StateDir holds bans.db (and, with TLS, certificates); created at
	// start if missing (its parent must exist). Default "": no state is
	// kept and bans live in memory only.
	StateDir string `yaml:"state_dir"`
	// TrustedProxies lists the peers whose X-Forwarded-For is believed
	// (key trusted_proxies): addresses, prefixes and named sets (CDN
	// ranges, file: and url: lists), whose members are also never
	// banned nor connection-limited. Default: none.
	TrustedProxies []TrustedProxy `yaml:"trusted_proxies"`
	// Allow lists clients that are never counted by a jail nor banned
	// (key allow). Default none.
	Allow []Prefix `yaml:"allow"`
	// TLS turns on HTTPS: ACME-managed and static certificates (key tls).
	// nil: plain HTTP only.
	TLS *TLS `yaml:"tls"`
	// IPv6Prefix is the prefix length by which IPv6 clients are counted
	// and banned (key ipv6_prefix), 32–128. Default 64.
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// Jails maps jail names to fail2ban-style limits (key jails). The
	// middleware reports to probes (probes.jail), auth (basic auth
	// failures) and hosts[].hotlink.jail. Default none: offences are
	// counted, nobody is banned.
	Jails map[string]Jail `yaml:"jails"`
	Hosts []Host          `yaml:"hosts"`
	// Watch lists the log files and journal units whose lines are
	// offences for jails (key watch): sshd, mail and FTP servers guarded
	// as fail2ban guards them. A config with watch and no hosts runs no
	// proxy: log watching, bans, kernel sync and the admin listener.
	Watch []Watch `yaml:"watch"`
	// Probes blocks scanner probes (/wp-login.php, /.env …) on every host.
	// nil: off.
	Probes *Probes `yaml:"probes"`
	// Firewall pushes bans into the kernel (key firewall).
	Firewall Firewall `yaml:"firewall"`
	// Notify sends a message on every ban (key notify). nil: off.
	Notify *Notify `yaml:"notify"`
	// Fleet makes several nodes share bans, jail counters and ACME
	// certificates through one Redis (key fleet). nil: off.
	Fleet *Fleet `yaml:"fleet"`
	Admin Admin  `yaml:"admin"`
	// Signer issues S3 and CloudFront signed URLs through the admin API
	// and `gatehouse sign` (key signer). Default: both off.
	Signer Signer `yaml:"signer"`
	Log    Log    `yaml:"log"`
	// Intel is what gatehouse knows about who connects: provider ranges,
	// GeoIP databases, blocklist feeds (key intel).
	Intel Intel `yaml:"intel"`
}

// Listen holds the public listeners (key listen).
type Listen struct {
	// HTTP is the plain HTTP listen address (key listen.http). Default ":80".
	HTTP string `yaml:"http"`
	// HTTPS is the TLS listen address (key listen.https). Default ":443"
	// when tls is set; it is an error without tls. With TLS on, plain
	// HTTP requests for a name with a certificate are redirected (308) to
	// https, ACME HTTP-01 challenges excepted.
	HTTPS string `yaml:"https"`
	// StrictSNI answers 421 Misdirected Request to a TLS request whose
	// host differs from the server name (SNI) of its TLS handshake (key
	// listen.strict_sni); without SNI only an IP-literal host is accepted.
	// Default false.
	StrictSNI bool `yaml:"strict_sni"`
	// ProxyProtocol lists the peers (load balancers) that open every
	// connection to listen.http and listen.https with a PROXY protocol
	// header, v1 or v2 (key listen.proxy_protocol): from them the header
	// is required and names the client; from anyone else a header is
	// refused. The admin listener never reads one. Default: none, no
	// header is read.
	ProxyProtocol []Prefix `yaml:"proxy_protocol"`
}

// Limits bounds what one client or one upstream can cost (key limits).
// Every key is optional; a missing key gets the default below, and an
// explicit 0 is refused (in net/http 0 means "no limit", which we never
// want to grant by accident).
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	// Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Default 2m.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes caps the request line plus headers, between 1KB and
	// 16MB. Default 64KB.
	MaxHeaderBytes Size `yaml:"max_header_bytes"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	// Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// UpstreamDialTimeout bounds connecting to an upstream. Default 5s.
	UpstreamDialTimeout Duration `yaml:"upstream_dial_timeout"`
	// UpstreamResponseHeaderTimeout bounds the wait for an upstream's
	// response headers once the request is written. Default 60s.
	UpstreamResponseHeaderTimeout Duration `yaml:"upstream_response_header_timeout"`
	// UpstreamIdleConns is the number of idle keep-alive connections kept
	// per upstream, between 1 and 10000. Default 128.
	UpstreamIdleConns int `yaml:"upstream_idle_conns"`
	// UpstreamFailTimeout is how long an upstream that refused a connection
	// is skipped (nginx fail_timeout). Default 10s.
	UpstreamFailTimeout Duration `yaml:"upstream_fail_timeout"`
	// ConnsPerIP caps the connections one client address (an IPv6 client
	// by its ipv6_prefix) may hold open at once, between 1 and 100000;
	// a connection over it is closed at once and is an offence for the
	// flood jail. Allowed clients and trusted proxies are not counted.
	// Default 256.
	ConnsPerIP int `yaml:"conns_per_ip"`
	// H2MaxStreams caps the concurrent streams of one HTTP/2 connection,
	// between 1 and 10000. Default 250.
	H2MaxStreams int `yaml:"h2_max_streams"`
	// TrackedClients bounds the clients each jail and each flood limiter
	// remembers (least recently seen forgotten first), between 1000 and
	// 10000000. Default 100000: about 6 MB per counting jail and 30 MB
	// per flood jail when full.
	TrackedClients int `yaml:"tracked_clients"`
	// Rates names the rate limits hosts and routes use (key
	// limits.rates, used by hosts[].limit and hosts[].routes[].limit).
	// Default none.
	Rates map[string]Rate `yaml:"rates"`
	// BodyReadTimeout is the time allowed between two successful reads of
	// a request body (nginx's client_body_timeout): a client that sends
	// nothing for this long gets 408, its connection is closed, the
	// upstream request is aborted, and it is an offence for the flood
	// jail. Not a bound on the whole upload. hosts[].body_read_timeout
	// overrides it per host. Default 60s.
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
}

// Host routes one or more host names to a set of upstreams (key hosts[]).
type Host struct {
	// Match lists exact names and "*.example.com" wildcards. Required; a
	// name may appear in one host only.
	Match []HostPattern `yaml:"match"`
	// Upstreams lists http:// or https:// base URLs, used round robin.
	// Required; each URL once.
	Upstreams []Upstream `yaml:"upstreams"`
	// WebSocket allows WebSocket upgrades to this host, the only upgrade
	// ever passed. Default true.
	WebSocket *bool `yaml:"websocket"`
	// MaxBody caps the request body; larger requests get 413. Zero: no
	// limit. Default 0.
	MaxBody Size `yaml:"max_body"`
	// BasicAuth puts htpasswd basic auth in front of the host (or some
	// of its paths). nil: no authentication.
	BasicAuth *BasicAuth `yaml:"basic_auth"`
	// Hotlink refuses protected media requested from other sites' pages.
	// nil: off.
	Hotlink *Hotlink `yaml:"hotlink"`
	// SignedLinks requires a gateway-signed link for some of the host's
	// paths (key hosts[].signed_links). nil: off.
	SignedLinks *SignedLinks `yaml:"signed_links"`
	// Headers edits response headers.
	Headers Headers `yaml:"headers"`
	// HSTS is the Strict-Transport-Security value sent on every answer
	// to a request that came over TLS (key hosts[].hsts), replacing the
	// upstream's; "off" sends none and lets the upstream's through.
	// Default "max-age=31536000".
	HSTS string `yaml:"hsts"`
	// AllowEncodedSlash passes paths with an encoded "/" (%2F) to this
	// host instead of refusing them with 400 (key
	// hosts[].allow_encoded_slash), for upstreams that read %2F as data,
	// never as a separator. Path rules then see "a%2Fb" as one segment.
	// Default false.
	AllowEncodedSlash bool `yaml:"allow_encoded_slash"`
	// AllowStreamSyntax passes paths with a segment in which a ":" is
	// followed by a "$" to this host instead of refusing them with 400
	// (key hosts[].allow_stream_syntax). On Windows servers that is NTFS
	// alternate data stream syntax ("/web.config::$DATA" serves
	// web.config), which gets around every path rule; only for upstreams
	// on other systems whose paths use ":$". Default false.
	AllowStreamSyntax bool `yaml:"allow_stream_syntax"`
	// BodyReadTimeout overrides limits.body_read_timeout for this host
	// (key hosts[].body_read_timeout): the time allowed between two
	// successful reads of a request body. Unset: the limit's value (an
	// explicit 0 is refused, as for limits).
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
	// BufferRequests reads the whole request body before the upstream is
	// contacted (key hosts[].buffer_requests), as nginx's
	// proxy_request_buffering does, for upstreams with few workers: a slow
	// client then holds no upstream connection. The upstream gets the body
	// with a Content-Length. Bodies up to 64KB are kept in memory, larger
	// ones in an unlinked temporary file. Needs max_body, which bounds
	// what is buffered. Default false: bodies stream.
	BufferRequests bool `yaml:"buffer_requests"`
	// Routes give parts of the host policies of their own (key
	// hosts[].routes[]): what nginx's location blocks give. Default none.
	Routes []Route `yaml:"routes"`
	// Probes replaces the global probes block for this host (key
	// hosts[].probes), or "off" to block none on it; a key left out
	// takes the global block's value. Default: the global block.
	Probes *Probes `yaml:"probes"`
	// Access lists allow and deny rules, first match wins, ending in
	// "allow all" or "deny all" (key hosts[].access); a denied client
	// gets 403. Default none: every client.
	Access []AccessRule `yaml:"access"`
	// Jail receives an offence per request the host refuses by access.
	// Default none: no offence.
	Jail string `yaml:"jail"`
	// Geo refuses clients by country and ASN (key hosts[].geo). Default
	// none.
	Geo *Geo `yaml:"geo"`
	// Limit names the limits.rates entries every request of the host
	// takes a token from (key hosts[].limit). Default none.
	Limit Names `yaml:"limit"`
	// ResponseHeaderTimeout overrides limits.upstream_response_header_timeout
	// for this host. Default: the limit's value.
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
	// ReadTimeout bounds the wait between two reads of an upstream's
	// answer body (nginx's proxy_read_timeout once headers are in); an
	// upstream that sends nothing for this long has its answer cut off.
	// Default 0: no bound.
	ReadTimeout Duration `yaml:"read_timeout"`
	// MaxFails is how many failed attempts within fail_timeout mark an
	// upstream down for fail_timeout (nginx's max_fails), 0 never.
	// Default 1.
	MaxFails *int `yaml:"max_fails"`
	// FailTimeout overrides limits.upstream_fail_timeout for this host.
	// Default: the limit's value.
	FailTimeout Duration `yaml:"fail_timeout"`
	// Log gives this host its own access log (key hosts[].log), as an
	// nginx server block's access_log does: its requests, and requests
	// for its names refused before routing (probes, bans), go there
	// instead of to the global access log. nil: the global access log.
	Log *HostLog `yaml:"log"`
	// ClientCerts asks this host's clients for a TLS client certificate
	// (key hosts[].client_certs; types_mtls.go). nil: none is asked for.
	ClientCerts *ClientCerts `yaml:"client_certs"`
}

// HostLog is one host's access log (key hosts[].log). A key left out
// takes the global log's value.
type HostLog struct {
	// Access is the format: json, combined, combined_host or off (key
	// hosts[].log.access). Default log.access.
	Access string `yaml:"access"`
	// AccessFile is the file the lines go to, "-" for standard output
	// (key hosts[].log.access_file); reopened on SIGHUP and reload like
	// log.access_file, and shared with it or another host when the path
	// is the same. Its directory must exist. Default log.access_file.
	AccessFile string `yaml:"access_file"`
}

// Headers edits the response headers sent to clients (key hosts[].headers).
// Defaults add X-Content-Type-Options: nosniff and Referrer-Policy:
// strict-origin-when-cross-origin and remove Server and X-Powered-By;
// "set" overrides a default, and setting a header to "" removes it.
type Headers struct {
	// Set maps header names to values (no CR, LF or NUL). Default none.
	Set map[string]string `yaml:"set"`
	// Remove lists header names to drop, none of them also in Set.
	// Default none.
	Remove []string `yaml:"remove"`
	// PassClient lists client identity request headers this host's
	// upstream may receive from clients (key hosts[].headers.pass_client),
	// each one of middleware.ClientIdentityHeaders (CF-Connecting-IP,
	// X-HTTP-Method-Override, Remote-User, …; any case), which gatehouse
	// otherwise removes from every request. Default none.
	PassClient []string `yaml:"pass_client"`
}

// Admin is the admin listener (key admin).
type Admin struct {
	// Listen is the admin API address (key admin.listen), on another port
	// than listen.http. Default "127.0.0.1:9901". "off" disables the admin
	// listener.
	Listen string `yaml:"listen"`
	// Tokens are the bearer tokens accepted by the admin API. Default none:
	// only the unauthenticated endpoints (/healthz, /readyz, /metrics).
	Tokens []Token `yaml:"tokens"`
	// Names are other host names or IP addresses (no port) the admin
	// listener is known by, such as "admin.example.com" for a wildcard
	// admin.listen. Requests to the admin listener (except /healthz and
	// /readyz) whose Host is not admin.listen's host, one of these, the
	// address they arrived on or localhost on loopback get 421, which
	// defeats DNS rebinding. Default none. Changes need a restart.
	Names []string `yaml:"names"`
}

// Token is one admin API bearer token (key admin.tokens[]).
type Token struct {
	// Name identifies the token in the audit log. Required, unique.
	Name string `yaml:"name"`
	// Token is the secret: env:NAME, file:PATH or sha256:<hex of the
	// token>. Required, and different for each token; inline tokens are
	// refused.
	Token Secret `yaml:"token"`
	// Scopes lists what the token may do: bans:read, bans:write, sign:s3,
	// sign:cloudfront, sign:link, ui (sign in to the dashboard). Required.
	Scopes []string `yaml:"scopes"`
	// Prefixes limits the keys and paths a signing token may sign: S3
	// resources are "BUCKET/KEY", link and CloudFront ones the path
	// without its leading "/". A prefix ending in "/" covers what is under
	// it; one ending in "*" any continuation; any other covers itself and
	// what is under it on a segment boundary ("media" covers "media/x",
	// not "media-private/x"). Empty, "/", "*" and a leading "/" are
	// refused (signer.CheckPrefix). Default: no limit.
	Prefixes []string `yaml:"prefixes"`
}

// Log selects the logs (key log).
type Log struct {
	// Access is the access log format: json, combined, combined_host
	// (combined with the request's host in front, like nginx's vcombined)
	// or off. The json format carries the basic-auth user under "user"
	// when one logged in (no such key otherwise). Default json.
	Access string `yaml:"access"`
	// AccessFile is where access log lines go; "" or "-" is standard
	// output. Its directory must exist. Default "".
	AccessFile string `yaml:"access_file"`
	// Level is the minimum level of the gateway's own log: debug, info,
	// warn or error. Default info.
	Level string `yaml:"level"`
}

// BasicAuth is a host's htpasswd basic auth (key hosts[].basic_auth).
type BasicAuth struct {
	// Off, written "basic_auth: off" on a route, exempts the route from
	// the host's basic auth.
	Off bool `yaml:"-"`
	// Realm is shown by the browser's login prompt. Default "Restricted".
	Realm string `yaml:"realm"`
	// Htpasswd is the Apache htpasswd file (bcrypt, apr1, {SHA}, $5$,
	// $6$), re-read when it changes on disk. Required.
	Htpasswd string `yaml:"htpasswd"`
	// Paths lists the path prefixes that need a login, on segment
	// boundaries. Default ["/"]: the whole host.
	Paths []string `yaml:"paths"`
	// UserHeader is the request header that tells the upstream who logged
	// in; a client-sent one is always removed. Default "X-Forwarded-User".
	UserHeader string `yaml:"user_header"`
	// PassAuthorization passes the client's Authorization header on to
	// the upstream. Default false: it is removed.
	PassAuthorization bool `yaml:"pass_authorization"`
	// AllowSlowHashes accepts htpasswd entries above bcrypt cost 17 or
	// SHA-crypt rounds=1000000, for this host. Default false: such an
	// entry is a config error naming its file and line, since two wrong
	// passwords for it would hold every verification slot for minutes.
	// Hosts sharing a file may differ: each loads it with
	// its own setting.
	AllowSlowHashes bool `yaml:"allow_slow_hashes"`
}

// Probes configures probe-URI blocking (key probes).
type Probes struct {
	// Off, written "probes: off" on a host, blocks no probes on it.
	Off bool `yaml:"-"`
	// Presets names built-in lists: common, dotfiles, php, wordpress, phpmyadmin,
	// secrets, vcs, cgi, shells. A preset is for sites that do not run
	// the probed software. Default none.
	Presets []string `yaml:"presets"`
	// Paths adds patterns: "/prefix", "/prefix/", "/bytes*", "**/segment",
	// "*.ext" and "re:REGEX". Default none.
	Paths []string `yaml:"paths"`
	// Exclude lists prefixes never blocked; /.well-known/ always is.
	Exclude []string `yaml:"exclude"`
	// Jail receives an offence per probe. Default "probes".
	Jail string `yaml:"jail"`
	// Status answers a probe: 403 or 404. Default 403.
	Status int `yaml:"status"`
}

// Hotlink configures a host's hotlink protection (key hosts[].hotlink),
// with nginx valid_referers semantics.
type Hotlink struct {
	// Paths lists what is protected, in the probes.paths pattern forms:
	// "/prefix/", "/prefix", "/bytes*", "**/segment", "*.ext" and
	// "re:REGEX"; a "*" elsewhere ("/media/*.mp4") is refused with the
	// patterns to write instead. Required.
	Paths []string `yaml:"paths"`
	// Allow lists accepted referers: none, blocked, host names,
	// "*.example.com", "example.*", "re:REGEX". Required.
	Allow []string `yaml:"allow"`
	// Action is the answer to a refused request. Default {status: 403}.
	Action HotlinkAction `yaml:"action"`
	// Jail, when set, receives an offence per refused request.
	Jail string `yaml:"jail"`
}

// HotlinkAction answers a refused hotlink: a status or a redirect.
type HotlinkAction struct {
	// Status is 403, 404 or 410. Default 403.
	Status int `yaml:"status"`
	// Redirect sends the client to this absolute URL with 302 instead.
	Redirect string `yaml:"redirect"`
}

// Jail is one jail (key jails.NAME), with fail2ban's semantics: MaxRetry
// offences within FindTime ban the client for BanTime.
type Jail struct {
	// MaxRetry is the offence count that bans, 1–1000. Default 5.
	MaxRetry int `yaml:"maxretry"`
	// FindTime is the window the offences must fall in. Default 10m.
	FindTime Duration `yaml:"findtime"`
	// BanTime is how long a first ban lasts. Default 10m.
	BanTime Duration `yaml:"bantime"`
	// Increment makes repeat offenders' bans grow. Default off.
	Increment *Increment `yaml:"increment"`
	// Forget is how long ban history is kept after a ban ends. Default 7d.
	Forget Duration `yaml:"forget"`
	// Rate makes this a flood jail: each client may send Rate requests
	// per second (a token bucket); requests over it get 429 and are
	// offences for this jail. Default 0: not a flood jail.
	Rate float64 `yaml:"rate"`
	// Burst is how many requests over Rate a client may send at once.
	// Default twice Rate.
	Burst int `yaml:"burst"`
	// Escalate bans a whole network once the jail has banned enough of
	// its clients within FindTime, or its clients together offended
	// enough, replacing their bans. Default off.
	Escalate *Escalate `yaml:"escalate"`
}

// Escalate bans a network as one entry once After of its clients (IPv4
// addresses, IPv6 prefixes of ipv6_prefix bits) were banned by the jail
// within its findtime, or its clients made After × maxretry offences
// within it, the offender changing After-1 times at least (key
// jails.NAME.escalate). A network that holds an allow or trusted_proxies
// address is never banned.
type Escalate struct {
	// IPv4 is the IPv4 network length, 8–31. Default 24.
	IPv4 int `yaml:"ipv4"`
	// IPv6 is the IPv6 network length, 16–63 and shorter than
	// ipv6_prefix. Default 48.
	IPv6 int `yaml:"ipv6"`
	// After is how many banned clients make the network's ban (and
	// After × maxretry offences of its clients), 2–1000. Default 5.
	After int `yaml:"after"`
}

// Increment makes the n-th ban last bantime × factor^(n-1), at most max
// (key jails.NAME.increment).
type Increment struct {
	// Factor is the growth per ban, ≥ 1. Default 2.
	Factor float64 `yaml:"factor"`
	// Max caps a ban. Default: no cap.
	Max Duration `yaml:"max"`
}

// Firewall configures kernel ban sync (key firewall).
type Firewall struct {
	// Backend is ipset, nftables, iptables, auto (nftables, else ipset,
	// else none) or none. Default none.
	Backend string `yaml:"backend"`
	// Ports limits the drop to these TCP destination ports. Default
	// empty: every packet from a banned source is dropped.
	Ports []int `yaml:"ports"`
	// Reconcile is how often the kernel is compared with the ban list
	// and repaired, besides every change. Default 30s.
	Reconcile Duration `yaml:"reconcile"`
}

// Notify configures ban notifications (key notify).
type Notify struct {
	// Webhook receives a JSON POST per ban (or digest of bans).
	Webhook string `yaml:"webhook"`
	// Email sends a mail per ban (or digest) over SMTP with STARTTLS.
	Email *Email `yaml:"email"`
	// MinInterval is the least time between two messages on a channel;
	// bans in between go out as one digest. Default 1m.
	MinInterval Duration `yaml:"min_interval"`
}

// Email is the SMTP notification channel (key notify.email).
type Email struct {
	// SMTP is the server's host:port; STARTTLS is required. Required.
	SMTP string `yaml:"smtp"`
	// From is the sender address. Required.
	From string `yaml:"from"`
	// To lists the recipients. Required.
	To []string `yaml:"to"`
	// Username and Password authenticate (AUTH PLAIN after STARTTLS).
	// Default: no authentication.
	Username Secret `yaml:"username"`
	Password Secret `yaml:"password"`
}

// SignedLinks protects paid media with gateway-signed links (key
// hosts[].signed_links): a request under Paths needs an unexpired
// HMAC-SHA256 signature over its method, host, raw path, query (unless
// Query is "ignore") and expiry, issued by POST /v1/sign/link or
// `gatehouse sign link`.
type SignedLinks struct {
	// Paths lists the protected path prefixes, on segment boundaries.
	// Required.
	Paths []string `yaml:"paths"`
	// Key is the HMAC key, env:NAME or file:PATH, at least 32 bytes
	// (openssl rand -base64 48). Give Key or Keys, not both.
	Key Secret `yaml:"key"`
	// Keys lists HMAC keys for rotation: the first signs, every one
	// verifies. Give Key or Keys, not both.
	Keys []Secret `yaml:"keys"`
	// BindIP requires every link to be bound to the client address it
	// was issued for. Default false: binding is optional per link.
	BindIP bool `yaml:"bind_ip"`
	// MaxExpires caps a link's validity, when it is signed and when it
	// is checked: a link whose expiry lies further ahead than this (plus
	// a minute of clock skew) is refused. Default 24h.
	MaxExpires Duration `yaml:"max_expires"`
	// Query says whether the signature covers the link's query: "sign"
	// (the exact query the link was signed with, apart from the gh_
	// parameters; any other query is refused) or "ignore" (for
	// applications whose pages add parameters of their own; the upstream
	// then receives whatever query the client sends). Default "sign".
	Query string `yaml:"query"`
}

// Values of hosts[].signed_links.query.
const (
	SignedLinksQuerySign   = "sign"
	SignedLinksQueryIgnore = "ignore"
)

// Signer configures the URL signers (key signer).
type Signer struct {
	// S3 pre-signs S3 URLs. nil: off.
	S3 *SignerS3 `yaml:"s3"`
	// CloudFront signs CloudFront URLs and cookies. nil: off.
	CloudFront *SignerCloudFront `yaml:"cloudfront"`
}

// SignerS3 configures S3 pre-signed URLs (key signer.s3).
type SignerS3 struct {
	// Region is the buckets' region, such as eu-west-1. Required.
	Region string `yaml:"region"`
	// Endpoint is the base URL of an S3-compatible server. Default "":
	// AWS.
	Endpoint string `yaml:"endpoint"`
	// PathStyle puts the bucket in the URL path instead of the host name.
	// Default false.
	PathStyle bool `yaml:"path_style"`
	// AccessKeyID and SecretAccessKey are env: or file: references.
	// Default: neither, and the AWS SDK's default credential chain.
	AccessKeyID     Secret `yaml:"access_key_id"`
	SecretAccessKey Secret `yaml:"secret_access_key"`
	// MaxExpires caps a URL's validity, at most 7d (SigV4's limit).
	// Default 24h.
	MaxExpires Duration `yaml:"max_expires"`
}

// SignerCloudFront configures CloudFront signed URLs and cookies (key
// signer.cloudfront).
type SignerCloudFront struct {
	// KeyPairID is the ID of the public key in CloudFront. Required.
	KeyPairID string `yaml:"key_pair_id"`
	// PrivateKey is the PEM RSA private key (PKCS#1 or PKCS#8, at least
	// 2048 bits) as env: or file: reference. Required.
	PrivateKey Secret `yaml:"private_key"`
	// MaxExpires caps a signature's validity. Default 24h.
	MaxExpires Duration `yaml:"max_expires"`
	// Domains lists the distribution host names URLs may be signed for;
	// others are refused (422). Required.
	Domains []HostPattern `yaml:"domains"`
}

// Fleet configures fleet mode (key fleet): the nodes that name the same
// Redis and prefix share their bans, the offences of share_jails and,
// with certificates, their ACME certificates. It needs state_dir: each
// node keeps its journal (bans, the outbox of changes not yet in Redis,
// its place in the change stream) in bans.db.
type Fleet struct {
	// Redis is the server's URL: redis://[user@]host:port[/db], or
	// rediss:// for TLS, always verified (against CARoot when set, the
	// system roots otherwise). The user is a Redis ACL user. A password
	// in the URL is refused: give it in Password. Required.
	Redis string `yaml:"redis"`
	// Password authenticates the ACL user (or the default user), as a
	// secret reference (env:NAME, file:PATH). Default: none.
	Password Secret `yaml:"password"`
	// CARoot is a PEM file of the CA that signed the Redis server's
	// certificate, trusted in addition to the system roots (rediss only).
	// Default "": the system roots.
	CARoot string `yaml:"ca_root"`
	// Prefix starts every key, as a Redis Cluster hash tag ({gh}:bans),
	// so several fleets can share one Redis. Default "gh".
	Prefix string `yaml:"prefix"`
	// Node names this node in the fleet. Default: the host name.
	Node string `yaml:"node"`
	// ShareJails lists the jails whose offences are counted fleet-wide
	// (key share_jails): a client spreading its offences over the nodes
	// is banned as if one node saw them all. Rate (flood) jails stay per
	// node. Default none.
	ShareJails []string `yaml:"share_jails"`
	// Certificates keeps certmagic's storage (ACME certificates, keys,
	// locks, challenge tokens) in Redis, mirrored to state_dir/certs, so
	// one certificate serves every node. Default false.
	Certificates bool `yaml:"certificates"`
}
