package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// minimal is the smallest valid config.
const minimal = `hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:3000]
`

// parseErrorCases are shared with FuzzParse as seeds. Each wantErr starts
// with the exact "file:line: field:" prefix.
var parseErrorCases = []struct {
	name    string
	in      string
	wantErr string
}{
	{
		name:    "unknown top-level key with suggestion",
		in:      minimal + "lmits: {}\n",
		wantErr: `t.yaml:4: lmits: unknown key (did you mean "limits"?)`,
	},
	{
		name:    "unknown top-level key without suggestion",
		in:      minimal + "zzz: {}\n",
		wantErr: "t.yaml:4: zzz: unknown key; allowed: listen, limits, state_dir, trusted_proxies, allow, tls, ipv6_prefix, jails, hosts, watch, probes, firewall, notify, fleet, admin, signer, log",
	},
	{
		name: "unknown nested key with suggestion",
		in: `hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:3000]
  - match: [api.example.com]
    upstream: http://127.0.0.1:4000
`,
		wantErr: `t.yaml:5: hosts[1].upstream: unknown key (did you mean "upstreams"?)`,
	},
	{
		name:    "case typo",
		in:      minimal + "Log: {}\n",
		wantErr: `t.yaml:4: Log: unknown key (did you mean "log"?)`,
	},
	{
		name:    "bad duration",
		in:      minimal + "limits:\n  idle_timeout: 2 minutes\n",
		wantErr: `t.yaml:5: limits.idle_timeout: invalid duration "2 minutes": unknown unit " minutes"`,
	},
	{
		name:    "bad CIDR",
		in:      minimal + "trusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.1/8\n",
		wantErr: `t.yaml:6: trusted_proxies[1]: invalid prefix "10.0.0.1/8": host bits are set; did you mean 10.0.0.0/8?`,
	},
	{
		name:    "missing upstreams",
		in:      "hosts:\n  - match: [app.example.com]\n",
		wantErr: "t.yaml:2: hosts[0].upstreams: at least one upstream URL is required",
	},
	{
		name:    "empty upstreams",
		in:      "hosts:\n  - match: [app.example.com]\n    upstreams: []\n",
		wantErr: "t.yaml:3: hosts[0].upstreams: at least one upstream URL is required",
	},
	{
		name:    "unknown probe preset",
		in:      minimal + "probes:\n  presets: [common, wordpres]\n",
		wantErr: `t.yaml:5: probes.presets[1]: "wordpres" is not one of`,
	},
	{
		name:    "bad probe regex",
		in:      minimal + "probes:\n  paths: [/ok/, \"re:(\"]\n",
		wantErr: "t.yaml:5: probes.paths[1]: error parsing regexp",
	},
	{
		name:    "bad probe status",
		in:      minimal + "probes: {status: 200}\n",
		wantErr: "t.yaml:4: probes.status: 200 is not 403 or 404",
	},
	{
		name:    "hotlink without allow",
		in:      minimal + "    hotlink: {paths: [/videos/]}\n",
		wantErr: "t.yaml:4: hosts[0].hotlink.allow: at least one allowed referer is required",
	},
	{
		name:    "hotlink bad referer pattern",
		in:      minimal + "    hotlink:\n      paths: [/videos/]\n      allow: [none, ex*mple.com]\n",
		wantErr: `t.yaml:6: hosts[0].hotlink.allow[1]: "*" is only allowed`,
	},
	{
		name:    "hotlink status and redirect",
		in:      minimal + "    hotlink: {paths: [/v/], allow: [none], action: {status: 404, redirect: \"https://example.com/\"}}\n",
		wantErr: "t.yaml:4: hosts[0].hotlink.action: give either status or redirect, not both",
	},
	{
		name:    "hotlink relative redirect",
		in:      minimal + "    hotlink: {paths: [/v/], allow: [none], action: {redirect: /x.png}}\n",
		wantErr: `t.yaml:4: hosts[0].hotlink.action.redirect: "/x.png" is not an absolute http(s) URL`,
	},
	{
		name:    "jail factor below 1",
		in:      minimal + "jails:\n  probes: {maxretry: 3, bantime: 1h, increment: {factor: 0.5}}\n",
		wantErr: `t.yaml:5: jails["probes"]:`,
	},
	{
		name:    "jail maxretry too large",
		in:      minimal + "jails:\n  probes: {maxretry: 5000}\n",
		wantErr: `t.yaml:5: jails["probes"]:`,
	},
	{
		name:    "undefined hotlink jail",
		in:      minimal + "    hotlink: {paths: [/v/], allow: [none], jail: hotlnk}\njails:\n  hotlink: {maxretry: 20}\n",
		wantErr: `t.yaml:4: hosts[0].hotlink.jail: jail "hotlnk" is not defined under jails`,
	},
	{
		name:    "bad ipv6 prefix",
		in:      minimal + "ipv6_prefix: 16\n",
		wantErr: "t.yaml:4: ipv6_prefix: 16 is not between 32 and 128",
	},
	{
		name:    "escalate ipv4 too short",
		in:      minimal + "jails:\n  probes:\n    maxretry: 3\n    escalate:\n      ipv4: 7\n",
		wantErr: `t.yaml:8: jails["probes"].escalate.ipv4: 7 is not between 8 and 31`,
	},
	{
		name:    "escalate ipv6 not shorter than ipv6_prefix",
		in:      minimal + "ipv6_prefix: 48\njails:\n  probes: {escalate: {ipv4: 24, ipv6: 48, after: 5}}\n",
		wantErr: `t.yaml:6: jails["probes"].escalate.ipv6: 48 is not between 16 and 63 and shorter than ipv6_prefix (48)`,
	},
	{
		name:    "escalate ipv6 a client",
		in:      minimal + "jails:\n  probes: {escalate: {ipv6: 64}}\n",
		wantErr: `t.yaml:5: jails["probes"].escalate.ipv6: 64 is not between 16 and 63`,
	},
	{
		name:    "escalate after one",
		in:      minimal + "jails:\n  probes: {escalate: {after: 1}}\n",
		wantErr: `t.yaml:5: jails["probes"].escalate.after: 1 is not between 2 and 1000`,
	},
	{
		name:    "escalate unknown key",
		in:      minimal + "jails:\n  probes: {escalate: {ipv4: 24, afer: 5}}\n",
		wantErr: `t.yaml:5: jails["probes"].escalate.afer:`,
	},
	{
		name:    "factor not a number",
		in:      minimal + "jails:\n  p: {increment: {factor: fast}}\n",
		wantErr: `t.yaml:5: jails["p"].increment.factor: expected a number, found "fast"`,
	},
	{
		name:    "relative state_dir",
		in:      minimal + "state_dir: var/lib/gatehouse\n",
		wantErr: `t.yaml:4: state_dir: "var/lib/gatehouse" is not an absolute path`,
	},
	{
		name:    "state_dir without parent",
		in:      minimal + "state_dir: /nonexistent-gatehouse/state\n",
		wantErr: "t.yaml:4: state_dir: neither /nonexistent-gatehouse/state nor its parent exists",
	},
	{
		name:    "hsts without max-age",
		in:      minimal + "    hsts: includeSubDomains\n",
		wantErr: `t.yaml:4: hosts[0].hsts: "includeSubDomains" is not off nor max-age=SECONDS`,
	},
	{
		name:    "hsts unknown directive",
		in:      minimal + "    hsts: \"max-age=60; preload; preload\"\n",
		wantErr: `t.yaml:4: hosts[0].hsts: "max-age=60; preload; preload" is not off nor max-age=SECONDS`,
	},
	{
		name:    "conns_per_ip zero",
		in:      minimal + "limits: {conns_per_ip: 0}\n",
		wantErr: "t.yaml:4: limits.conns_per_ip: must be greater than 0; remove the key for the default (256)",
	},
	{
		name:    "h2_max_streams too large",
		in:      minimal + "limits: {h2_max_streams: 100000}\n",
		wantErr: "t.yaml:4: limits.h2_max_streams: 100000 is not between 1 and 10000",
	},
	{
		name:    "unknown firewall backend",
		in:      minimal + "firewall: {backend: iptable}\n",
		wantErr: `t.yaml:4: firewall.backend: "iptable" is not one of ipset, nftables, iptables, auto, none`,
	},
	{
		name:    "bad firewall port",
		in:      minimal + "firewall: {backend: ipset, ports: [80, 70000]}\n",
		wantErr: "t.yaml:4: firewall.ports[1]: 70000 is not a port",
	},
	{
		name:    "notify without channel",
		in:      minimal + "notify: {min_interval: 5m}\n",
		wantErr: "t.yaml:4: notify: give a webhook, an email, or both",
	},
	{
		name:    "notify email without recipients",
		in:      minimal + "notify:\n  email: {smtp: \"smtp.example.com:587\", from: gh@example.com}\n",
		wantErr: "t.yaml:5: notify.email.to: at least one recipient is required",
	},
	{
		name: "too many upstreams",
		in: "hosts:\n  - match: [app.example.com]\n    upstreams:\n" +
			manyUpstreams(MaxUpstreams+1),
		wantErr: "t.yaml:3: hosts[0].upstreams: 65 upstreams; at most 64 are allowed",
	},
	{
		name:    "missing match",
		in:      "hosts:\n  - upstreams: [http://127.0.0.1:3000]\n",
		wantErr: "t.yaml:2: hosts[0].match: at least one host name is required",
	},
	{
		name:    "no hosts",
		in:      "log: {level: info}\n",
		wantErr: "t.yaml:1: hosts: at least one host is required",
	},
	{
		name:    "unresolvable env ref",
		in:      minimal + "admin:\n  tokens:\n    - name: ops\n      token: env:GATEHOUSE_TEST_SURELY_UNSET\n      scopes: [bans:read]\n",
		wantErr: "t.yaml:7: admin.tokens[0].token: env:GATEHOUSE_TEST_SURELY_UNSET: environment variable is not set",
	},
	{
		name:    "inline secret",
		in:      minimal + "admin:\n  tokens:\n    - {name: ops, token: hunter2, scopes: [bans:read]}\n",
		wantErr: "t.yaml:6: admin.tokens[0].token: inline secrets are refused; use env:NAME, file:PATH or sha256:HEX",
	},
	{
		name:    "list where a mapping is expected",
		in:      minimal + "limits: [10s]\n",
		wantErr: "t.yaml:4: limits: expected a mapping, found a list",
	},
	{
		name:    "string where an integer is expected",
		in:      minimal + "limits:\n  upstream_idle_conns: abc\n",
		wantErr: `t.yaml:5: limits.upstream_idle_conns: expected a whole number, found "abc"`,
	},
	{
		name:    "scalar where a list is expected",
		in:      "hosts:\n  - match: app.example.com\n    upstreams: [http://127.0.0.1:3000]\n",
		wantErr: `t.yaml:2: hosts[0].match: expected a list, found "app.example.com" (write [app.example.com] for a list of one)`,
	},
	{
		name:    "mapping where a string is expected",
		in:      minimal + "log:\n  level: {a: b}\n",
		wantErr: "t.yaml:5: log.level: expected a string, found a mapping",
	},
	{
		name:    "yes is not a bool",
		in:      minimal + "    websocket: yes\n",
		wantErr: `t.yaml:4: hosts[0].websocket: expected true or false, found "yes"`,
	},
	{
		name:    "bad host pattern in list",
		in:      "hosts:\n  - match:\n      - app.example.com\n      - bad_name.example.com\n    upstreams: [http://127.0.0.1:3000]\n",
		wantErr: `t.yaml:4: hosts[0].match[1]: invalid host "bad_name.example.com"`,
	},
	{
		name:    "duplicate key",
		in:      minimal + "log:\n  level: info\n  level: debug\n",
		wantErr: "t.yaml:6: log.level: duplicate key (first at line 5)",
	},
	{
		name:    "duplicate top-level key",
		in:      minimal + "hosts: []\n",
		wantErr: "t.yaml:4: hosts: duplicate key (first at line 1)",
	},
	{
		name:    "duplicate header key",
		in:      minimal + "    headers:\n      set:\n        X-A: a\n        X-A: b\n",
		wantErr: `t.yaml:7: hosts[0].headers.set["X-A"]: duplicate key (first at line 6)`,
	},
	{
		name: "duplicate host name",
		in: `hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:3000]
  - match: [api.example.com, App.Example.com.]
    upstreams: [http://127.0.0.1:4000]
`,
		wantErr: "t.yaml:4: hosts[1].match[1]: app.example.com is already matched by hosts[0].match[0] (line 2)",
	},
	{
		name:    "duplicate upstream",
		in:      "hosts:\n  - match: [app.example.com]\n    upstreams:\n      - http://127.0.0.1:3000\n      - HTTP://127.0.0.1:3000\n",
		wantErr: "t.yaml:5: hosts[0].upstreams[1]: http://127.0.0.1:3000 is listed twice (first at line 4)",
	},
	{
		name:    "empty file",
		in:      "",
		wantErr: "t.yaml:1: the file is empty",
	},
	{
		name:    "only comments",
		in:      "# gatehouse\n\n# nothing yet\n",
		wantErr: "t.yaml:1: the file is empty (or only comments)",
	},
	{
		name:    "only null",
		in:      "~\n",
		wantErr: "t.yaml:1: the file holds no settings",
	},
	{
		name:    "two documents",
		in:      minimal + "---\n" + minimal,
		wantErr: `t.yaml:4: a second YAML document ("---") starts here`,
	},
	{
		name:    "empty second document",
		in:      minimal + "---\n",
		wantErr: `t.yaml:4: a second YAML document ("---") starts here`,
	},
	{
		name:    "syntax error keeps yaml's line",
		in:      minimal + "log:\n  level: a: b\n",
		wantErr: "t.yaml:5: invalid YAML: mapping values are not allowed in this context",
	},
	{
		name:    "tab indentation",
		in:      minimal + "log:\n\tlevel: info\n",
		wantErr: "t.yaml:5: invalid YAML: found character that cannot start any token",
	},
	{
		name:    "invalid UTF-8",
		in:      minimal + "log: {level: \xff}\n",
		wantErr: "t.yaml:4: invalid UTF-8",
	},
	{
		name:    "top level is a list",
		in:      "- hosts\n",
		wantErr: "t.yaml:1: expected a mapping, found a list",
	},
	{
		name:    "alias",
		in:      "hosts:\n  - match: &names [app.example.com]\n    upstreams: [http://127.0.0.1:3000]\n  - match: *names\n    upstreams: [http://127.0.0.1:4000]\n",
		wantErr: "t.yaml:4: hosts[1].match: YAML aliases (*names) are not supported",
	},
	{
		name:    "merge key",
		in:      minimal + "log:\n  <<: {level: info}\n",
		wantErr: "t.yaml:5: log: YAML merge keys (<<) are not supported",
	},
	{
		name:    "custom tag",
		in:      minimal + "log: {level: !env LEVEL}\n",
		wantErr: "t.yaml:4: log.level: custom YAML tags (!env) are not supported",
	},
	{
		name:    "explicit zero limit",
		in:      minimal + "limits:\n  idle_timeout: 0\n",
		wantErr: "t.yaml:5: limits.idle_timeout: must be greater than 0; remove the key for the default (2m)",
	},
	{
		name:    "header bytes out of range",
		in:      minimal + "limits:\n  max_header_bytes: 512\n",
		wantErr: "t.yaml:5: limits.max_header_bytes: 512B is not between 1KB and 16MB",
	},
	{
		name:    "idle conns out of range",
		in:      minimal + "limits:\n  upstream_idle_conns: -1\n",
		wantErr: "t.yaml:5: limits.upstream_idle_conns: -1 is not between 1 and 10000",
	},
	{
		name:    "listen without port",
		in:      minimal + "listen:\n  http: 80\n",
		wantErr: `t.yaml:5: listen.http: "80" is not host:port, such as ":80" or "127.0.0.1:9901"`,
	},
	{
		name:    "listen with named port",
		in:      minimal + "listen:\n  http: \":http\"\n",
		wantErr: `t.yaml:5: listen.http: port "http" is not a number between 0 and 65535`,
	},
	{
		name:    "admin on the http port",
		in:      minimal + "listen: {http: \":8080\"}\nadmin: {listen: \"127.0.0.1:8080\"}\n",
		wantErr: `t.yaml:5: admin.listen: "127.0.0.1:8080" overlaps listen.http ":8080"; give the admin API its own port`,
	},
	{
		name:    "bad header name",
		in:      minimal + "    headers:\n      set: {\"X Frame\": DENY}\n",
		wantErr: `t.yaml:5: hosts[0].headers.set["X Frame"]: "X Frame" is not a valid header name`,
	},
	{
		name:    "header value with newline",
		in:      minimal + "    headers:\n      set: {X-A: \"a\\r\\nSet-Cookie: x\"}\n",
		wantErr: `t.yaml:5: hosts[0].headers.set["X-A"]: the value contains CR, LF or NUL`,
	},
	{
		name:    "header set twice in different case",
		in:      minimal + "    headers:\n      set:\n        x-a: a\n        X-A: b\n",
		wantErr: `t.yaml:6: hosts[0].headers.set["x-a"]: same header as hosts[0].headers.set["X-A"] (line 7)`,
	},
	{
		name:    "header set and removed",
		in:      minimal + "    headers:\n      set: {Server: gatehouse}\n      remove: [server]\n",
		wantErr: `t.yaml:6: hosts[0].headers.remove[0]: server is also in headers.set (line 5)`,
	},
	{
		name:    "bad header to remove",
		in:      minimal + "    headers:\n      remove: [\"X:Y\"]\n",
		wantErr: `t.yaml:5: hosts[0].headers.remove[0]: "X:Y" is not a valid header name`,
	},
	{
		name:    "token without name",
		in:      minimal + "admin:\n  tokens:\n    - {token: \"sha256:" + strings.Repeat("ab", 32) + "\", scopes: [bans:read]}\n",
		wantErr: "t.yaml:6: admin.tokens[0].name: a name is required",
	},
	{
		name:    "token without secret",
		in:      minimal + "admin:\n  tokens:\n    - {name: ops, scopes: [bans:read]}\n",
		wantErr: "t.yaml:6: admin.tokens[0].token: a token is required; use env:NAME, file:PATH or sha256:HEX",
	},
	{
		name:    "unknown scope",
		in:      minimal + "admin:\n  tokens:\n    - name: ops\n      token: \"sha256:" + strings.Repeat("ab", 32) + "\"\n      scopes: [bans:read, sign:gcs]\n",
		wantErr: `t.yaml:8: admin.tokens[0].scopes[1]: "sign:gcs" is not one of bans:read, bans:write, sign:s3, sign:cloudfront, sign:link, ui`,
	},
	{
		name:    "no scopes",
		in:      minimal + "admin:\n  tokens:\n    - name: ops\n      token: \"sha256:" + strings.Repeat("ab", 32) + "\"\n",
		wantErr: "t.yaml:6: admin.tokens[0].scopes: at least one scope is required",
	},
	{
		name: "tokens share a secret",
		in: minimal + "admin:\n  tokens:\n" +
			"    - {name: a, token: \"sha256:" + strings.Repeat("ab", 32) + "\", scopes: [bans:read]}\n" +
			"    - {name: b, token: \"sha256:" + strings.Repeat("AB", 32) + "\", scopes: [bans:write]}\n",
		wantErr: "t.yaml:7: admin.tokens[1].token: same secret as admin.tokens[0] (line 6)",
	},
	{
		name: "tokens share a name",
		in: minimal + "admin:\n  tokens:\n" +
			"    - {name: a, token: \"sha256:" + strings.Repeat("ab", 32) + "\", scopes: [bans:read]}\n" +
			"    - {name: a, token: \"sha256:" + strings.Repeat("cd", 32) + "\", scopes: [bans:write]}\n",
		wantErr: `t.yaml:7: admin.tokens[1].name: "a" is already the name of admin.tokens[0] (line 6)`,
	},
	// prefixes that silently meant everything, or never matched.
	{
		name:    "token prefix slash",
		in:      minimal + "admin:\n  tokens:\n" + "    - name: m\n      token: \"sha256:" + strings.Repeat("ab", 32) + "\"\n      scopes: [sign:s3]\n      prefixes: [\"/\"]\n",
		wantErr: `t.yaml:9: admin.tokens[0].prefixes[0]: "/" would allow every resource; omit prefixes to allow everything`,
	},
	{
		name:    "token prefix empty",
		in:      minimal + "admin:\n  tokens:\n" + "    - name: m\n      token: \"sha256:" + strings.Repeat("ab", 32) + "\"\n      scopes: [sign:s3]\n      prefixes: [\"\"]\n",
		wantErr: `t.yaml:9: admin.tokens[0].prefixes[0]: "" would allow every resource; omit prefixes to allow everything`,
	},
	{
		name:    "token prefix leading slash",
		in:      minimal + "admin:\n  tokens:\n" + "    - name: m\n      token: \"sha256:" + strings.Repeat("ab", 32) + "\"\n      scopes: [sign:s3]\n      prefixes: [media/, /paid/]\n",
		wantErr: `t.yaml:9: admin.tokens[0].prefixes[1]: "/paid/" starts with "/", but resources have no leading slash (S3: BUCKET/KEY; links and CloudFront: the path without its leading /); write "paid/"`,
	},
	{
		name:    "token prefix star inside",
		in:      minimal + "admin:\n  tokens:\n" + "    - name: m\n      token: \"sha256:" + strings.Repeat("ab", 32) + "\"\n      scopes: [sign:s3]\n      prefixes: [\"media/*/x\"]\n",
		wantErr: `t.yaml:9: admin.tokens[0].prefixes[0]: "media/*/x" has a "*" before its end`,
	},
	{
		name:    "admin name with port",
		in:      minimal + "admin:\n  names: [admin.example.com, \"admin.example.com:9901\"]\n",
		wantErr: `t.yaml:5: admin.names[1]: "admin.example.com:9901" is not a host name or an IP address`,
	},
	{
		name:    "admin name wildcard",
		in:      minimal + "admin:\n  names: [\"*.example.com\"]\n",
		wantErr: `(write a bare name: no port, no scheme, no wildcard)`,
	},
	{
		name:    "admin name unspecified address",
		in:      minimal + "admin:\n  names: [\"::\"]\n",
		wantErr: `t.yaml:5: admin.names[0]: "::" is the unspecified address`,
	},
	{
		name:    "admin name twice",
		in:      minimal + "admin:\n  names: [Admin.Example.com, admin.example.com.]\n",
		wantErr: `t.yaml:5: admin.names[1]: admin.example.com. is listed twice`,
	},
	{
		// "/paid%2Fa" is outside "/paid/"
		// for the rules and /paid/a for an upstream that decodes %2F.
		name:    "allow_encoded_slash with signed link paths",
		in:      minimal + "    allow_encoded_slash: true\n    signed_links: {paths: [/paid/], key: \"sha256:x\"}\n",
		wantErr: `t.yaml:4: hosts[0].allow_encoded_slash: cannot be combined with signed_links.paths on the same host`,
	},
	{
		name:    "allow_encoded_slash with hotlink prefixes",
		in:      minimal + "    allow_encoded_slash: true\n    hotlink: {paths: [\"*.mp4\", /videos/], allow: [none]}\n",
		wantErr: `t.yaml:4: hosts[0].allow_encoded_slash: cannot be combined with hotlink.paths on the same host`,
	},
	{
		name:    "bad log access",
		in:      minimal + "log:\n  access: jsn\n",
		wantErr: `t.yaml:5: log.access: "jsn" is not one of json, combined, combined_host, off`,
	},
	{
		name:    "bad log level",
		in:      minimal + "log:\n  level: verbose\n",
		wantErr: `t.yaml:5: log.level: "verbose" is not one of debug, info, warn, error`,
	},
	{
		name:    "access log directory missing",
		in:      minimal + "log:\n  access_file: /nonexistent-gatehouse-dir/access.log\n",
		wantErr: "t.yaml:5: log.access_file: directory /nonexistent-gatehouse-dir: no such file or directory",
	},
	{
		name:    "bad host log access",
		in:      minimal + "    log:\n      access: vcombined\n",
		wantErr: `t.yaml:5: hosts[0].log.access: "vcombined" is not one of json, combined, combined_host, off`,
	},
	{
		name:    "host access log directory missing",
		in:      minimal + "    log:\n      access: combined_host\n      access_file: /nonexistent-gatehouse-dir/app.log\n",
		wantErr: "t.yaml:6: hosts[0].log.access_file: directory /nonexistent-gatehouse-dir: no such file or directory",
	},
	{
		name:    "host log unknown key",
		in:      minimal + "    log:\n      level: debug\n",
		wantErr: "t.yaml:5: hosts[0].log.level:",
	},
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range parseErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse("t.yaml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse(%q) = %v, want error containing %q", tc.in, err, tc.wantErr)
			}
			if f != nil {
				t.Errorf("Parse(%q) returned a *File with an error", tc.in)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse(%q) error is %T, want a non-empty Errors", tc.in, err)
			}
		})
	}
}

// TestParseErrorsTogether pins that problems are collected, not stopped
// at, and come back sorted by line whatever order they were found in.
func TestParseErrorsTogether(t *testing.T) {
	t.Parallel()
	in := `log:
  level: loud
hosts:
  - match: [app.example.com]
    upstreams: [ftp://127.0.0.1]
    max_body: 1.5MB
  - match: [app.example.com]
limits: {idle_timeout: forever}
`
	_, err := Parse("t.yaml", []byte(in))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse() = %v, want Errors", err)
	}
	want := []string{
		`t.yaml:2: log.level: "loud" is not one of debug, info, warn, error`,
		`t.yaml:5: hosts[0].upstreams[0]: invalid upstream "ftp://127.0.0.1": scheme "ftp" is not http or https`,
		`t.yaml:6: hosts[0].max_body: invalid size "1.5MB": fractions are not allowed; write 1536KB`,
		`t.yaml:7: hosts[1].match[0]: app.example.com is already matched by hosts[0].match[0] (line 4)`,
		`t.yaml:7: hosts[1].upstreams: at least one upstream URL is required`,
		`t.yaml:8: limits.idle_timeout: invalid duration "forever": expected a number at "forever"; write a number with a unit (ns, us, ms, s, m, h, d or w) such as 90s, 1h30m or 7d, or a bare whole number of seconds`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse() errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var first *Error
	if !errors.As(err, &first) || first.Line != 2 || first.Field != "log.level" {
		t.Errorf("errors.As(err, *Error) = %+v, want the line 2 log.level error", first)
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{&Error{File: "g.yaml", Line: 3, Field: "log.level", Msg: "bad"}, "g.yaml:3: log.level: bad"},
		{&Error{File: "g.yaml", Line: 3, Msg: "bad"}, "g.yaml:3: bad"},
		{&Error{File: "g.yaml", Msg: "bad"}, "g.yaml: bad"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("(%+v).Error() = %q, want %q", *tc.err, got, tc.want)
		}
	}
}

// TestParseFull decodes a config that sets every key and compares the
// whole result, so a key that is decoded into the wrong field, or
// overwritten by a default, fails.
func TestParseFull(t *testing.T) {
	one := 1
	t.Parallel()
	tokenFile := writeFile(t, "ops.token", "ops-token\n")
	logDir := t.TempDir()
	digest := sha256Hex("media-token")
	in := fmt.Sprintf(`# every key, none at its default
listen:
  http: "127.0.0.1:8080"
  strict_sni: true
limits:
  read_header_timeout: 5s
  idle_timeout: 1m30s
  max_header_bytes: 32k
  shutdown_timeout: 1m
  upstream_dial_timeout: 2
  upstream_response_header_timeout: 1d
  upstream_idle_conns: 64
  upstream_fail_timeout: 1w
  conns_per_ip: 32
  h2_max_streams: 100
trusted_proxies: [10.0.0.0/8, "::ffff:192.0.2.1"]
hosts:
  - match: [App.Example.com, "*.example.com"]
    upstreams: [http://127.0.0.1:3000, "https://[::1]:3001/base"]
    websocket: false
    max_body: 10MB
    headers:
      set: {Strict-Transport-Security: "max-age=31536000", X-Empty: ""}
      remove: [Server, X-Powered-By]
    hsts: "max-age=600; includeSubDomains"
    allow_encoded_slash: true
admin:
  listen: "[::1]:9901"
  names: [admin.example.com, "2001:db8::9"]
  tokens:
    - name: media-backend
      token: sha256:%s
      scopes: [sign:s3, sign:cloudfront, sign:link]
      prefixes: ["media/"]
    - name: ops
      token: file:%s
      scopes: [bans:read, bans:write]
log:
  access: combined
  access_file: %s/access.log
  level: debug
`, digest, tokenFile, logDir)

	got, err := Parse("full.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	off := false
	want := &File{
		IPv6Prefix: 64,
		Firewall:   Firewall{Backend: "none", Reconcile: Duration(30 * time.Second)},
		Listen:     Listen{HTTP: "127.0.0.1:8080", StrictSNI: true},
		Limits: Limits{
			ReadHeaderTimeout:             Duration(5 * time.Second),
			IdleTimeout:                   Duration(90 * time.Second),
			MaxHeaderBytes:                32 << 10,
			ShutdownTimeout:               Duration(time.Minute),
			UpstreamDialTimeout:           Duration(2 * time.Second),
			UpstreamResponseHeaderTimeout: Duration(24 * time.Hour),
			UpstreamIdleConns:             64,
			UpstreamFailTimeout:           Duration(7 * 24 * time.Hour),
			ConnsPerIP:                    32,
			H2MaxStreams:                  100,
			TrackedClients:                100_000,
			BodyReadTimeout:               Duration(time.Minute),
		},
		TrustedProxies: []TrustedProxy{{Prefix: mustPrefix(t, "10.0.0.0/8").Prefix}, {Prefix: mustPrefix(t, "192.0.2.1/32").Prefix}},
		Hosts: []Host{{
			Match:     []HostPattern{mustHost(t, "app.example.com"), mustHost(t, "*.example.com")},
			Upstreams: []Upstream{mustUpstream(t, "http://127.0.0.1:3000"), mustUpstream(t, "https://[::1]:3001/base")},
			WebSocket: &off,
			MaxBody:   10 << 20,
			Headers: Headers{
				Set:    map[string]string{"Strict-Transport-Security": "max-age=31536000", "X-Empty": ""},
				Remove: []string{"Server", "X-Powered-By"},
			},
			HSTS:                  "max-age=600; includeSubDomains",
			AllowEncodedSlash:     true,
			BodyReadTimeout:       Duration(time.Minute),
			ResponseHeaderTimeout: Duration(24 * time.Hour),
			FailTimeout:           Duration(7 * 24 * time.Hour),
			MaxFails:              &one,
		}},
		Admin: Admin{
			Listen: "[::1]:9901",
			Names:  []string{"admin.example.com", "2001:db8::9"},
			Tokens: []Token{
				{Name: "media-backend", Token: mustSecret(t, "sha256:"+digest), Scopes: []string{"sign:s3", "sign:cloudfront", "sign:link"}, Prefixes: []string{"media/"}},
				{Name: "ops", Token: mustSecret(t, "file:"+tokenFile), Scopes: []string{"bans:read", "bans:write"}},
			},
		},
		Log: Log{Access: "combined", AccessFile: logDir + "/access.log", Level: "debug"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse() =\n%+v\nwant\n%+v", got, want)
	}
	if !got.Admin.Tokens[0].Token.Matches("media-token") || !got.Admin.Tokens[1].Token.Matches("ops-token") {
		t.Errorf("Parse() tokens do not match their secrets")
	}
	const wantSummary = "1 host, 2 upstreams, admin on [::1]:9901 (2 tokens), access log combined to " + "%s/access.log"
	if s := got.Summary(); s != fmt.Sprintf(wantSummary, logDir) {
		t.Errorf("Summary() = %q, want %q", s, fmt.Sprintf(wantSummary, logDir))
	}
}

// TestParseDefaults checks every default documented in types.go.
func TestParseDefaults(t *testing.T) {
	one := 1
	t.Parallel()
	got, err := Parse("min.yaml", []byte(minimal))
	if err != nil {
		t.Fatalf("Parse(minimal) = %v", err)
	}
	on := true
	want := &File{
		IPv6Prefix: 64,
		Firewall:   Firewall{Backend: "none", Reconcile: Duration(30 * time.Second)},
		Listen:     Listen{HTTP: ":80"},
		Limits: Limits{
			ReadHeaderTimeout:             Duration(10 * time.Second),
			IdleTimeout:                   Duration(2 * time.Minute),
			MaxHeaderBytes:                64 << 10,
			ShutdownTimeout:               Duration(30 * time.Second),
			UpstreamDialTimeout:           Duration(5 * time.Second),
			UpstreamResponseHeaderTimeout: Duration(60 * time.Second),
			UpstreamIdleConns:             128,
			UpstreamFailTimeout:           Duration(10 * time.Second),
			ConnsPerIP:                    256,
			H2MaxStreams:                  250,
			TrackedClients:                100_000,
			BodyReadTimeout:               Duration(60 * time.Second),
		},
		Hosts: []Host{{
			Match:                 []HostPattern{mustHost(t, "app.example.com")},
			Upstreams:             []Upstream{mustUpstream(t, "http://127.0.0.1:3000")},
			WebSocket:             &on,
			HSTS:                  "max-age=31536000",
			BodyReadTimeout:       Duration(60 * time.Second),
			ResponseHeaderTimeout: Duration(60 * time.Second),
			FailTimeout:           Duration(10 * time.Second),
			MaxFails:              &one,
		}},
		Admin: Admin{Listen: "127.0.0.1:9901"},
		Log:   Log{Access: "json", Level: "info"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(minimal) =\n%+v\nwant\n%+v", got, want)
	}
	if s, want := got.Summary(), "1 host, 1 upstream, admin on 127.0.0.1:9901, access log json"; s != want {
		t.Errorf("Summary() = %q, want %q", s, want)
	}
}

// TestParseNullMeansDefault pins that an empty value (YAML null) is the
// same as leaving the key out.
func TestParseNullMeansDefault(t *testing.T) {
	t.Parallel()
	got, err := Parse("t.yaml", []byte(minimal+"    websocket:\nlog:\nadmin:\n  listen:\n"))
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	if !*got.Hosts[0].WebSocket || got.Log.Access != "json" || got.Admin.Listen != "127.0.0.1:9901" {
		t.Errorf("Parse() with null values = websocket %v, log.access %q, admin.listen %q; want the defaults",
			*got.Hosts[0].WebSocket, got.Log.Access, got.Admin.Listen)
	}
}

func TestParseListeners(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		listen  string
		admin   string
		wantErr string
	}{
		{name: "both on port 0", listen: "127.0.0.1:0", admin: "127.0.0.1:0"},
		{name: "admin off", listen: ":80", admin: "off"},
		{name: "different hosts same port", listen: "192.0.2.1:8080", admin: "127.0.0.1:8080"},
		{name: "host name", listen: "localhost:8080", admin: "localhost:9901"},
		{name: "same port on wildcard", listen: "0.0.0.0:8080", admin: "127.0.0.1:8080", wantErr: "overlaps listen.http"},
		{name: "identical", listen: "127.0.0.1:9901", admin: "127.0.0.1:9901", wantErr: "overlaps listen.http"},
		{name: "port out of range", listen: ":65536", admin: "off", wantErr: `listen.http: port "65536" is not a number between 0 and 65535`},
		{name: "bad host", listen: "not a host:80", admin: "off", wantErr: `listen.http: host "not a host" is not an IP address or a host name`},
		{name: "admin without port", listen: ":80", admin: "127.0.0.1", wantErr: `admin.listen: "127.0.0.1" is not host:port`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := minimal + fmt.Sprintf("listen: {http: %q}\nadmin: {listen: %q}\n", tc.listen, tc.admin)
			_, err := Parse("t.yaml", []byte(in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse(listen %q, admin %q) = %v, want nil", tc.listen, tc.admin, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse(listen %q, admin %q) = %v, want error containing %q", tc.listen, tc.admin, err, tc.wantErr)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "gatehouse.yaml", minimal)
	f, err := Load(p)
	if err != nil || f.Path != p {
		t.Fatalf("Load(%q) = %+v, %v, want Path %q", p, f, err, p)
	}

	missing := filepath.Join(t.TempDir(), "missing.yaml")
	_, err = Load(missing)
	var errs Errors
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &errs) {
		t.Errorf("Load(%q) = %v, want a not-exist error that is not Errors", missing, err)
	}

	bad := writeFile(t, "bad.yaml", minimal+"lsten: {}\n")
	_, err = Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":4: lsten: unknown key") {
		t.Errorf("Load(%q) = %v, want an error starting %q", bad, err, bad+":4: lsten: unknown key")
	}
}

// TestGolden pins the complete listing for a file with many mistakes.
// Refresh with: go test ./proxy/config/ -run TestGolden -update
func TestGolden(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/errors.yaml")
	if err == nil {
		t.Fatal(`Load("testdata/errors.yaml") = nil, want errors`)
	}
	got := err.Error() + "\n"
	const golden = "testdata/errors.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("Load(testdata/errors.yaml) errors =\n%s\nwant (%s)\n%s", got, golden, want)
	}
}

func mustPrefix(t *testing.T, s string) Prefix {
	t.Helper()
	p, err := ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return Prefix{p}
}

func mustHost(t *testing.T, s string) HostPattern {
	t.Helper()
	h, err := ParseHostPattern(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustUpstream(t *testing.T, s string) Upstream {
	t.Helper()
	u, err := ParseUpstream(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustSecret(t *testing.T, ref string) Secret {
	t.Helper()
	s, err := ParseSecret(ref)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestParseOffValues pins that the unquoted word off (a bool in YAML 1.1)
// reaches the string keys that accept it.
func TestParseOffValues(t *testing.T) {
	t.Parallel()
	f, err := Parse("t.yaml", []byte(minimal+"admin: {listen: off}\nlog: {access: off}\n"))
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	if got, want := f.Summary(), "1 host, 1 upstream, admin off, access log off"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}

func manyUpstreams(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "      - http://127.0.0.1:%d\n", 3000+i)
	}
	return b.String()
}

// TestShippedConfigs keeps the embedded demo config valid (the example,
// which names files of a real installation, has its own test in configs).
func TestShippedConfigs(t *testing.T) {
	t.Parallel()
	demo, err := os.ReadFile("../../configs/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users")
	// bcrypt of "demo" at cost 4.
	if err := os.WriteFile(users, []byte("demo:$2y$04$TJk2eele4DOxHREdNSxnXOHmY1xt.zwBD6.xfrAOCbLzjYj4ybbkS\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	demo = bytes.ReplaceAll(demo, []byte("${DEMO_UPSTREAM}"), []byte("http://127.0.0.1:1"))
	demo = bytes.ReplaceAll(demo, []byte("${DEMO_HTPASSWD}"), []byte(users))
	demo = bytes.ReplaceAll(demo, []byte("${DEMO_TOKEN}"), []byte("sha256:"+strings.Repeat("ab", 32)))
	f, err := Parse("default.yaml", demo)
	if err != nil {
		t.Fatalf("Parse(default.yaml) = %v", err)
	}
	if !strings.HasPrefix(f.Listen.HTTP, "127.0.0.1:") || !strings.HasPrefix(f.Admin.Listen, "127.0.0.1:") {
		t.Errorf("demo listens on %s and %s, want loopback only", f.Listen.HTTP, f.Admin.Listen)
	}
}

// TestEncodedSlashWholeHostRules: allow_encoded_slash goes with rules that
// cover the whole host, or match segment suffixes, which "%2F" cannot get
// around.
func TestEncodedSlashWholeHostRules(t *testing.T) {
	t.Parallel()
	in := minimal + "    allow_encoded_slash: true\n    hotlink: {paths: [\"*.mp4\", \"*.jpg\"], allow: [none]}\n"
	if _, err := Parse("t.yaml", []byte(in)); err != nil {
		t.Errorf("Parse(allow_encoded_slash with suffix-only hotlink paths) = %v, want no error", err)
	}
}
