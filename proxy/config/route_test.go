package config

import (
	"os"
	"strings"
	"testing"
)

func TestParseRoutes(t *testing.T) {
	t.Parallel()
	f, err := Parse("r.yaml", []byte(`
limits:
  rates:
    login: {rate: 1r/s, burst: 5}
    api: {rate: 30r/m, burst: 10, delay: nodelay, key: "header:X-Api-Key", status: 503}
hosts:
  - match: [app.example.com]
    upstreams: [http://10.0.0.5:3000]
    access: ["deny 192.0.2.0/24", "allow all"]
    probes: {presets: [dotfiles]}
    routes:
      - {paths: [/login], limit: login}
      - {paths: [/admin/], access: ["allow 10.0.0.0/8", "deny all"]}
      - {paths: [/api/], upstreams: [http://10.0.0.6:4000], limit: [api, login], read_timeout: 5m, max_fails: 3}
      - {paths: [/old/], respond: {status: 410}}
      - {paths: [=/gone], respond: {status: 444}}
      - {paths: [/healthz], basic_auth: off, limit: off, max_body: 0}
  - match: [plain.example.com]
    upstreams: [http://10.0.0.7:3000]
    probes: off
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 0 {
		t.Errorf("warnings: %v", f.Warnings)
	}
	h := f.Hosts[0]
	if r := f.Limits.Rates["login"]; r.Rate.PerSecond != 1 || r.Burst != 5 || r.Key != "client" || r.Status != 429 || r.Delay.NoDelay {
		t.Errorf("login = %+v", r)
	}
	if r := f.Limits.Rates["api"]; r.Rate.PerSecond != 0.5 || !r.Delay.NoDelay || r.Key != "header:X-Api-Key" || r.Status != 503 {
		t.Errorf("api = %+v", r)
	}
	if got := h.Routes[1].Access; len(got) != 2 || !got[0].Allow || got[0].Prefix.String() != "10.0.0.0/8" || got[1].Allow || !got[1].All {
		t.Errorf("access = %v", got)
	}
	if got := h.Routes[2]; len(got.Limit) != 2 || got.ReadTimeout.String() != "5m" || *got.MaxFails != 3 {
		t.Errorf("api route = %+v", got)
	}
	if hz := h.Routes[5]; hz.BasicAuth == nil || !hz.BasicAuth.Off || !hz.Limit.Off() || hz.MaxBody == nil || *hz.MaxBody != 0 {
		t.Errorf("healthz route = %+v", hz)
	}
	if p := f.Hosts[1].Probes; p == nil || !p.Off {
		t.Errorf("probes: off = %+v", p)
	}
	if p := h.Probes; p.Jail != "probes" || p.Status != 403 {
		t.Errorf("host probes defaults = %+v", p)
	}
}

func TestParseRouteErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ yaml, want string }{
		"rate syntax": {`limits: {rates: {a: {rate: 10/s}}}
hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"]}]`, `t.yaml:1: limits.rates["a"].rate: "10/s" is not a rate`},
		"unknown limit": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], routes: [{paths: [/x], limit: lgin}]}]`,
			`hosts[0].routes[0].limit: rate limit "lgin" is not defined under limits.rates`},
		"access default": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], routes: [{paths: [/x], access: ["allow 10.0.0.0/8"]}]}]`,
			`hosts[0].routes[0].access: end the list with "allow all" or "deny all"`},
		"access after all": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], access: ["deny all", "allow 10.0.0.1"]}]`,
			`hosts[0].access[1]: comes after "deny all"`},
		"access syntax": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], access: ["permit 10.0.0.1"]}]`,
			`hosts[0].access[0]: "permit 10.0.0.1": a rule starts with allow or deny`},
		"duplicate prefix": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], routes: [{paths: [/x/]}, {paths: ["^~/X/"]}]}]`,
			`hosts[0].routes[1].paths[0]: already given at routes[0].paths[0]`},
		"respond redirect": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], routes: [{paths: [/x], respond: {status: 301}}]}]`,
			`hosts[0].routes[0].respond.location: a 301 redirect needs a location`},
		"respond 444 body": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], routes: [{paths: [/x], respond: {status: 444, body: no}}]}]`,
			`hosts[0].routes[0].respond.body: 444 closes the connection`},
		"basic auth off on host": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], basic_auth: off}]`,
			`hosts[0].basic_auth: "off" is for routes`},
		"shared without fleet": {`limits: {rates: {a: {rate: 1r/s, shared: true}}}
hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"]}]`, `limits.rates["a"].shared: a shared limit needs fleet`},
		"rate key": {`limits: {rates: {a: {rate: 1r/s, key: ip}}}
hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"]}]`, `limits.rates["a"].key: "ip" is not client, client+host or header:NAME`},
		"host probes preset": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], probes: {presets: [wp]}}]`,
			`hosts[0].probes.presets[0]: "wp" is not one of`},
		"nginx spellings": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], routes: [{paths: ["= /"]}, {paths: ["~* \\.png$", "/ok/"]}, {paths: ["re:/\\.(?!well-known)"]}]}]`,
			`hosts[0].routes[0].paths[0]: write "=/", without the space nginx puts there`},
		"nginx regex": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], routes: [{paths: ["= /"]}, {paths: ["~* \\.png$", "/ok/"]}]}]`,
			`hosts[0].routes[1].paths[0]: nginx's "~* RE" is "re:(?i)\\.png$" here`},
		"lookahead": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], routes: [{paths: ["re:/\\.(?!well-known)"]}]}]`,
			`RE2 has no lookahead`},
		"basic_auth false": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], routes: [{paths: [/x], basic_auth: false}]}]`,
			`hosts[0].routes[0].basic_auth: write "off" to switch it off, or a block`},
		"respond with access": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], routes: [{paths: [/x], access: ["deny all"], respond: {status: 200}}]}]`,
			`hosts[0].routes[0].access: the route answers every request itself (respond), before access would run`},
		"global probes off": {`probes: off
hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"]}]`, `probes: "off" is for hosts[].probes`},
		"route jail": {`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], routes: [{paths: [/x], access: ["deny all"], jail: nope}]}]`,
			`hosts[0].routes[0].jail: jail "nope" is not defined under jails`},
	} {
		_, err := Parse("t.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want an error containing %q", name, err, tc.want)
		}
	}
}

func TestParseRouteWarnings(t *testing.T) {
	t.Parallel()
	f, err := Parse("t.yaml", []byte(`hosts:
  - match: [a.example]
    upstreams: ["http://127.0.0.1:1"]
    routes:
      - {paths: ["re:^/"], respond: {status: 404}}
      - {paths: [/admin/], access: ["deny all"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0].Error(), `t.yaml:6: hosts[0].routes[1]: warning: no path reaches this route: "/admin/" (and every path it names) is served by routes[0]`) {
		t.Errorf("warnings = %v", f.Warnings)
	}
}

func TestParseRouteBlocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := dir + "/ops.htpasswd"
	if err := os.WriteFile(users, []byte("bob:{SHA}fEqNCco3Yq9h5ZUglD3CZJT4lBs=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Parse("t.yaml", []byte(`hosts:
  - match: [a.example]
    upstreams: ["http://127.0.0.1:1"]
    routes:
      - {paths: [/ops/], basic_auth: {htpasswd: `+users+`}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if ba := f.Hosts[0].Routes[0].BasicAuth; ba.Realm != "Restricted" || ba.UserHeader != "X-Forwarded-User" || len(ba.Paths) != 1 {
		t.Errorf("a route's basic_auth block gets the host block's defaults: %+v", ba)
	}
	for _, tc := range []struct{ route, want string }{
		{`{paths: [/public/], access: []}`, `access: an empty list would drop the host's access rules`},
		{`{paths: [/x/], limit: []}`, `limit: an empty list would drop the host's limits`},
	} {
		_, err := Parse("t.yaml", []byte(`hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"], routes: [`+tc.route+`]}]`))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.route, err, tc.want)
		}
	}
}

func TestParseRateWarnings(t *testing.T) {
	t.Parallel()
	f, err := Parse("t.yaml", []byte(`limits:
  rates:
    slow: {rate: 1r/m, burst: 100}
    fine: {rate: 1r/m, burst: 100, delay: nodelay}
hosts: [{match: [a.example], upstreams: ["http://127.0.0.1:1"]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0].Error(), `limits.rates["slow"]: warning: a request may wait up to 1h40m`) {
		t.Errorf("warnings = %v", f.Warnings)
	}
}
