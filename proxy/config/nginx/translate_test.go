package nginx

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/proxy/config"
	"gatehouse/proxy/config/fail2ban"
	"gatehouse/proxy/config/nginx/conf"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// imported is one translation under test.
type imported struct {
	res  *Result
	doc  map[string]any
	dir  string
	yaml string
}

// importFiles writes files (names relative to a temporary directory; "DIR"
// in the content is replaced by it) and translates DIR/nginx.conf, with
// jail as the fail2ban file when not empty.
func importFiles(t *testing.T, files map[string]string, jail string) imported {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(data, "DIR", dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := LoadConfig(os.DirFS("/"), filepath.Join(dir, "nginx.conf"))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	var opts Options
	if jail != "" {
		if opts.Fail2ban, err = fail2ban.Parse(filepath.Join(dir, "jail.local"), []byte(jail)); err != nil {
			t.Fatalf("ParseFail2ban: %v", err)
		}
	}
	res, err := Translate(c, opts)
	if err != nil {
		t.Fatalf("Translate: %v", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(res.YAML, &doc); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, res.YAML)
	}
	return imported{res: res, doc: doc, dir: dir, yaml: string(res.YAML)}
}

// get follows a dotted path ("hosts.0.match") through decoded YAML and
// formats what it finds with %v ("<missing>" when absent).
func get(doc map[string]any, path string) string {
	var cur any = doc
	for _, k := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[k]
			if !ok {
				return "<missing>"
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i >= len(c) {
				return "<missing>"
			}
			cur = c[i]
		default:
			return "<missing>"
		}
	}
	return fmt.Sprint(cur)
}

// httpConf wraps server blocks in a minimal main file.
func httpConf(body string) string {
	return "events {}\nhttp {\n" + body + "\n}\n"
}

// writeCert writes a self-signed certificate and key for names to dir.
func writeCert(t *testing.T, dir string, names ...string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// An apr1 line for user "alice", password "secret".
const htpasswdLine = "alice:$apr1$dGoJ2mXa$3c1gGt9K2wHFJh1L1GNfM0\n"

func TestTranslate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string // nginx.conf and friends
		jail  string
		cert  bool              // write cert.pem/key.pem for a.example.com
		want  map[string]string // get path → value
		// wantFindings are substrings, each of a different finding, in
		// order; nil means no finding at all.
		wantFindings []string
		wantYAML     []string // substrings of the output text
		// valid: gatehouse's own loader must accept the output.
		valid bool
	}{
		{
			// The case: a login-only limit_req stays on the login
			// route, with nginx's answer; nothing becomes a flood limit.
			name: "per-location policy",
			files: map[string]string{
				"htpasswd": htpasswdLine,
				"nginx.conf": httpConf(`
				limit_req_zone $binary_remote_addr zone=login:10m rate=1r/s;
				limit_req_zone $remote_addr zone=api:10m rate=30r/m;
				limit_req_status 429;
				proxy_connect_timeout 10s;
				upstream app { server 127.0.0.1:3001 max_fails=3 fail_timeout=30s; server 127.0.0.1:3002 max_fails=3 fail_timeout=30s; }
				server { server_name app.example.com; auth_basic "Staging"; auth_basic_user_file htpasswd; client_max_body_size 10m;
					location / { proxy_pass http://app; proxy_set_header Upgrade $http_upgrade; }
					location = /login { limit_req zone=login burst=5; proxy_pass http://app; proxy_set_header Upgrade $http_upgrade; }
					location /api/ { limit_req zone=api burst=10 delay=4; limit_req_status 503; proxy_pass http://127.0.0.1:4000/api/;
						proxy_read_timeout 5m; client_max_body_size 0; proxy_set_header Upgrade $http_upgrade; }
					location /admin/ { allow 10.0.0.0/8; allow 192.0.2.1; deny all; proxy_pass http://app; proxy_set_header Upgrade $http_upgrade; }
					location /healthz { auth_basic off; proxy_pass http://app; proxy_set_header Upgrade $http_upgrade; }
					location ^~ /static { client_max_body_size 10m; proxy_pass http://app; }
				}`)},
			want: map[string]string{
				"limits.upstream_dial_timeout":             "10s",
				"limits.rates.login":                       "map[burst:5 rate:1r/s status:429]",
				"limits.rates.api":                         "map[burst:10 delay:4 rate:30r/m status:503]",
				"jails":                                    "<missing>",
				"hosts.0.limit":                            "<missing>",
				"hosts.0.max_fails":                        "3",
				"hosts.0.fail_timeout":                     "30s",
				"hosts.0.max_body":                         "10MB",
				"hosts.0.routes.0.paths":                   "[=/login]",
				"hosts.0.routes.0.limit":                   "login",
				"hosts.0.routes.0.websocket":               "<missing>",
				"hosts.0.routes.1.paths":                   "[/api/]",
				"hosts.0.routes.1.limit":                   "api",
				"hosts.0.routes.1.upstreams":               "[http://127.0.0.1:4000]",
				"hosts.0.routes.1.max_fails":               "1",
				"hosts.0.routes.1.fail_timeout":            "10s",
				"hosts.0.routes.1.read_timeout":            "300s",
				"hosts.0.routes.1.response_header_timeout": "300s",
				"hosts.0.routes.1.max_body":                "<missing>",
				"hosts.0.routes.2.paths":                   "[/admin/]",
				"hosts.0.routes.2.access":                  "[allow 10.0.0.0/8 allow 192.0.2.1/32 deny all]",
				"hosts.0.routes.3.paths":                   "[/healthz*]",
				"hosts.0.routes.3.basic_auth":              "off",
				"hosts.0.routes.4.paths":                   "[^~/static*]",
				"hosts.0.routes.4.websocket":               "false",
				"hosts.0.routes.4.max_body":                "<missing>",
			},
			wantFindings: []string{"client_max_body_size 0: no body limit here, but the host buffers request bodies"},
			valid:        true,
		},
		{
			// nginx: a location with add_header of its own sends none of
			// the server's.
			name: "per-location headers",
			files: map[string]string{"nginx.conf": httpConf(`
				server { server_name app.example.com; add_header X-Frame-Options DENY; add_header X-Team web always; proxy_hide_header X-Powered-By;
					location / { proxy_pass http://127.0.0.1:3000; }
					location /embed/ { add_header Content-Security-Policy "frame-ancestors *"; proxy_pass http://127.0.0.1:3000; }
					location /raw/ { proxy_hide_header X-Debug; proxy_pass http://127.0.0.1:3000; }
				}`)},
			want: map[string]string{
				"hosts.0.headers.set":             "map[X-Frame-Options:DENY X-Team:web]",
				"hosts.0.headers.remove":          "[X-Powered-By]",
				"hosts.0.routes.0.paths":          "[/embed/]",
				"hosts.0.routes.0.headers.set":    "map[Content-Security-Policy:frame-ancestors * X-Frame-Options: X-Team:]",
				"hosts.0.routes.0.headers.remove": "<missing>",
				"hosts.0.routes.1.headers.set":    "<missing>",
				"hosts.0.routes.1.headers.remove": "[X-Debug]",
			},
			wantFindings: []string{"location /raw/: nginx passed the upstream's X-Powered-By header here"},
			valid:        true,
		},
		{
			// location / refusing everything, /api/ proxying: every path
			// has its route, as in nginx.
			name: "only a sub-path proxied",
			files: map[string]string{"nginx.conf": httpConf(`
				server { server_name a.example.com; location / { return 444; } location /api/ { proxy_pass http://127.0.0.1:3000; } }
				server { server_name b.example.com; location /api/ { proxy_pass http://127.0.0.1:3000; } }`)},
			want: map[string]string{
				"hosts.0.upstreams":        "[http://127.0.0.1:3000]",
				"hosts.0.routes.0.paths":   "[/]",
				"hosts.0.routes.0.respond": "map[status:444]",
				"hosts.0.routes.1":         "map[paths:[/api/]]", // needed: without it /api/x would take route /
				"hosts.1.routes":           "<missing>",
			},
			wantFindings: []string{"proxy_pass http://127.0.0.1:3000: nginx proxied only the locations it lists here; gatehouse sends the paths no route answers to the upstreams of location /api/"},
			valid:        true,
		},
		{
			name: "return",
			files: map[string]string{"nginx.conf": httpConf(`
				limit_req_zone $binary_remote_addr zone=one:1m rate=5r/s;
				server { server_name app.example.com; limit_req zone=one; allow 10.0.0.0/8; deny all;
					location / { proxy_pass http://127.0.0.1:3000; }
					location /old/ { return 410; }
					location = /gone { return 444; }
					location = /moved { return 301 /new; }
					location = /away { return https://example.org/; }
					location = /ping { return 200 "pong"; }
					location = /vars { return 301 $scheme://$host/new$is_args$args; }
					location = /addr { return 302 /who?ip=$remote_addr; }
					location = /odd { return 600; }
				}`)},
			want: map[string]string{
				"hosts.0.routes.0.respond": "map[status:410]",
				"hosts.0.routes.0.limit":   "<missing>",
				"hosts.0.routes.0.access":  "<missing>",
				"hosts.0.routes.1.respond": "map[status:444]",
				"hosts.0.routes.2.respond": "map[location:/new status:301]",
				"hosts.0.routes.3.respond": "map[location:https://example.org/ status:302]",
				"hosts.0.routes.4.respond": "map[body:pong status:200]",
				"hosts.0.routes.5.respond": "map[location:$scheme://$host/new$is_args$args status:301]",
				"hosts.0.routes.6.paths":   "[=/addr]",
				"hosts.0.routes.6.respond": "<missing>",
				"hosts.0.routes.7.respond": "<missing>",
			},
			wantFindings: []string{"return 302 /who?ip=$remote_addr: variable $remote_addr is not expanded", "return 600: gatehouse answers a route with a status from 200 to 599 or 444"},
			valid:        true,
		},
		{
			name: "what routes cannot carry",
			files: map[string]string{"nginx.conf": httpConf(`
				limit_req_zone $binary_remote_addr zone=one:1m rate=5r/s;
				limit_req_zone $http_x_api_key zone=key:1m rate=5r/s;
				server { server_name app.example.com;
					location / { proxy_pass http://127.0.0.1:3000; proxy_connect_timeout 3s; }
					location /files/ { proxy_pass http://127.0.0.1:5000/data/;
						location /files/big/ { client_max_body_size 1g; } }
					location /a/ { limit_req zone=one burst=1; proxy_pass http://127.0.0.1:3000; }
					location /b/ { limit_req zone=one burst=2; limit_req zone=key; proxy_pass http://127.0.0.1:3000; }
					location /c/ { limit_req zone=one; limit_req_dry_run on; proxy_pass http://127.0.0.1:3000; }
				}`)},
			want: map[string]string{
				"limits.upstream_dial_timeout": "<missing>",
				"limits.rates.one":             "map[burst:1 rate:5r/s status:503]",
				"limits.rates.one-2":           "map[burst:2 rate:5r/s status:503]",
				"hosts.0.routes.0.paths":       "[/files/]",
				"hosts.0.routes.0.upstreams":   "[http://127.0.0.1:5000]",
				"hosts.0.routes.2.limit":       "one-2",
				"hosts.0.routes.3.limit":       "<missing>",
			},
			wantFindings: []string{
				"proxy_connect_timeout 3s: gatehouse has one upstream connect timeout",
				"the URI in proxy_pass rewrites /files/… to /data/…",
				"nested location",
				"limit_req zone=one burst=2: zone one is used with other burst",
				"limit_req zone=key: limit_req_zone key",
				"limit_req zone=one: limit_req_dry_run on",
			},
			valid: true,
		},
		{
			name: "server_name forms",
			files: map[string]string{"nginx.conf": httpConf(`server {
				server_name a.example.com *.b.example.com .c.example.com d.example.* ~^(?<x>.+)\.e\.example$;
				location / { proxy_pass http://127.0.0.1:3000; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; }
			}`)},
			want: map[string]string{
				"hosts.0.match":     "[a.example.com *.b.example.com c.example.com *.c.example.com]",
				"hosts.0.upstreams": "[http://127.0.0.1:3000]",
				"hosts.0.websocket": "<missing>",
				"hosts.0.max_body":  "1MB",
				"listen.http":       ":80",
			},
			wantFindings: []string{`"d.example.*": gatehouse has no trailing wildcards`, "regular-expression name"},
			valid:        true,
		},
		{
			// nginx buffers request bodies and times them out
			// (client_body_timeout); both carry over per host, and a
			// location that differs is listed, never widened.
			name: "request body timeout and buffering",
			files: map[string]string{"nginx.conf": httpConf(`client_body_timeout 30s;
				server { server_name a.example.com; location / { proxy_pass http://127.0.0.1:3000; } }
				server { server_name b.example.com; client_body_timeout 1m30s; proxy_request_buffering off;
					location / { proxy_pass http://127.0.0.1:3000; }
					location /upload/ { client_body_timeout 300; proxy_request_buffering on; proxy_pass http://127.0.0.1:3000; } }
				server { server_name c.example.com; client_max_body_size 0; location / { proxy_pass http://127.0.0.1:3000; } }`)},
			want: map[string]string{
				"hosts.0.body_read_timeout": "30s",
				"hosts.0.buffer_requests":   "true",
				"hosts.1.body_read_timeout": "90s",
				"hosts.1.buffer_requests":   "<missing>",
				"hosts.2.buffer_requests":   "<missing>",
			},
			wantFindings: []string{"gatehouse has one body_read_timeout per host (90s); location /upload/ differs",
				"gatehouse buffers request bodies per host (buffer_requests: false); location /upload/ differs",
				"client_max_body_size is 0 (no limit): bodies stream to the upstream"},
			wantYAML: []string{"buffer_requests: true # nginx's default proxy_request_buffering on", "body_read_timeout: 90s # client_body_timeout, "},
			valid:    true,
		},
		{
			name: "upstream block with two servers",
			files: map[string]string{"nginx.conf": httpConf(`
				upstream app { server 127.0.0.1:3001; server 127.0.0.1:3002 max_fails=3 fail_timeout=5s; server 127.0.0.1:3003 down; server 127.0.0.1:3004 backup; keepalive 8; }
				upstream unused { server 10.0.0.1; }
				server { listen 8080; server_name app.example.com; client_max_body_size 20m;
					location / { proxy_pass http://app; }
					location /api/ { proxy_pass http://app; }
					location /other/ { proxy_pass http://127.0.0.1:9000; }
				}`)},
			want: map[string]string{
				"hosts.0.upstreams": "[http://127.0.0.1:3001 http://127.0.0.1:3002]",
				"hosts.0.websocket": "false",
				"hosts.0.max_body":  "20MB",
				"listen.http":       ":8080",
				// /api/ proxies where location / does: nothing of its own.
				"hosts.0.routes.0.paths":     "[/api/]",
				"hosts.0.routes.0.upstreams": "<missing>",
				"hosts.0.routes.1.paths":     "[/other/]",
				"hosts.0.routes.1.upstreams": "[http://127.0.0.1:9000]",
				"hosts.0.routes.2":           "<missing>",
			},
			wantFindings: []string{"max_fails=3 fail_timeout=5s: gatehouse marks every upstream of a host or route down after the same max_fails", "gatehouse has no backup servers"},
			wantYAML:     []string{"- http://127.0.0.1:3001 # server, "},
			valid:        true,
		},
		{
			name: "TLS with a redirect server",
			cert: true,
			files: map[string]string{"nginx.conf": httpConf(`
				server { listen 80; server_name a.example.com; return 301 https://$host$request_uri; }
				server { listen 443 ssl http2; server_name a.example.com;
					ssl_certificate cert.pem; ssl_certificate_key DIR/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
					location / { proxy_pass http://127.0.0.1:3000; }
				}`)},
			want: map[string]string{
				"listen.http":             ":80",
				"listen.https":            ":443",
				"tls.certificates.0.cert": "DIR/cert.pem",
				"tls.certificates.0.key":  "DIR/key.pem",
				"tls.certificates.1":      "<missing>",
				"hosts.0.match":           "[a.example.com]",
				"hosts.0.upstreams":       "[http://127.0.0.1:3000]",
				"hosts.1":                 "<missing>",
			},
			wantYAML: []string{"TLS on: plain HTTP is redirected to https", "return 301 https://$host$request_uri"},
			valid:    true,
		},
		{
			name: "redirect to https without a certificate",
			files: map[string]string{"nginx.conf": httpConf(`
				server { listen 80; server_name a.example.com; return 301 https://a.example.com$request_uri; }
				server { listen 80; server_name b.example.com; location / { proxy_pass http://127.0.0.1:3000; } }`)},
			want:         map[string]string{"hosts.0.match": "[b.example.com]", "tls": "<missing>"},
			wantFindings: []string{"a redirect to https, but no server here has a certificate"},
			valid:        true,
		},
		{
			name: "basic auth at server and location level",
			files: map[string]string{
				"htpasswd": htpasswdLine,
				"nginx.conf": httpConf(`
				server { server_name staging.example.com; auth_basic "Staging"; auth_basic_user_file htpasswd;
					location / { proxy_pass http://127.0.0.1:3000; }
					location /health { auth_basic off; proxy_pass http://127.0.0.1:3000; }
				}
				server { server_name app.example.com;
					location / { proxy_pass http://127.0.0.1:3001; }
					location /admin/ { auth_basic "Admin"; auth_basic_user_file DIR/htpasswd; proxy_pass http://127.0.0.1:3001; }
					location /ops { auth_basic "Admin"; auth_basic_user_file DIR/htpasswd; proxy_pass http://127.0.0.1:3001; }
					location ~ ^/secret { auth_basic "Admin"; auth_basic_user_file DIR/htpasswd; proxy_pass http://127.0.0.1:3001; }
				}`)},
			// Each location keeps its own auth: auth_basic off exempts
			// /health, the others protect their own paths only, /ops
			// as nginx's raw prefix does.
			want: map[string]string{
				"hosts.0.basic_auth.realm":          "Staging",
				"hosts.0.basic_auth.htpasswd":       "DIR/htpasswd",
				"hosts.0.routes.0.paths":            "[/health*]",
				"hosts.0.routes.0.basic_auth":       "off",
				"hosts.1.basic_auth":                "<missing>",
				"hosts.1.routes.0.paths":            "[/admin/]",
				"hosts.1.routes.0.basic_auth.realm": "Admin",
				"hosts.1.routes.1.paths":            "[/ops*]",
				"hosts.1.routes.1.basic_auth.realm": "Admin",
				"hosts.1.routes.2.paths":            "[re:^/secret]",
				"hosts.1.routes.2.basic_auth":       "map[htpasswd:DIR/htpasswd realm:Admin]",
			},
			valid: true,
		},
		{
			name: "hotlink protection",
			files: map[string]string{"nginx.conf": httpConf(`
				server { server_name media.example.com img.example.com;
					valid_referers none blocked server_names *.example.com example.* ~\.partner\.test/;
					location / { proxy_pass http://127.0.0.1:3000; }
					location ~* \.(jpg|PNG|mp4)$ {
						if ($invalid_referer) { return 403; }
						proxy_pass http://127.0.0.1:3000;
					}
					location /videos/ {
						if ( $invalid_referer ) { rewrite ^ https://example.com/hotlink.png redirect; }
						proxy_pass http://127.0.0.1:3000;
					}
				}`)},
			want: map[string]string{
				"hosts.0.hotlink.paths":  "[*.jpg *.png *.mp4]",
				"hosts.0.hotlink.allow":  `[none blocked media.example.com img.example.com *.example.com example.* re:\.partner\.test/]`,
				"hosts.0.hotlink.action": "map[status:403]",
			},
			wantFindings: []string{"gatehouse has one hotlink rule per host"},
			valid:        true,
		},
		{
			// Locations that refuse every request stay routes of their
			// host, never rules for every host.
			name: "refusing locations",
			files: map[string]string{"nginx.conf": httpConf(`
				server { server_name app.example.com;
					location / { proxy_pass http://127.0.0.1:3000; }
					location ~ /\.(?!well-known) { deny all; }
					location = /xmlrpc.php { return 404; }
					location ^~ /phpMyAdmin { log_not_found off; return 404; }
					location ~* (wp-login|Setup)\.php$ { return 444; }
					location ~ (?<!x)/admin { deny all; }
					location /internal/ { allow 10.0.0.0/8; deny all; proxy_pass http://127.0.0.1:3000; }
				}
				server { server_name other.example.com; location / { proxy_pass http://127.0.0.1:3001; } }`)},
			want: map[string]string{
				"hosts.0.routes.0.paths":   `[re:/\.(?:$|[^w]|w(?:$|[^e]|e(?:$|[^l]|l(?:$|[^l]|l(?:$|[^\-]|-(?:$|[^k]|k(?:$|[^n]|n(?:$|[^o]|o(?:$|[^w]|w(?:$|[^n]))))))))))]`,
				"hosts.0.routes.0.access":  "[deny all]",
				"hosts.0.routes.1.paths":   "[=/xmlrpc.php]",
				"hosts.0.routes.1.respond": "map[status:404]",
				"hosts.0.routes.2.paths":   "[^~/phpMyAdmin*]",
				"hosts.0.routes.2.respond": "map[status:404]",
				"hosts.0.routes.3.paths":   `[re:(?i)(wp-login|Setup)\.php$]`,
				"hosts.0.routes.3.respond": "map[status:444]",
				"hosts.0.routes.4.paths":   "[/internal/]",
				"hosts.0.routes.4.access":  "[allow 10.0.0.0/8 deny all]",
				"hosts.0.routes.4.jail":    "<missing>",
				"hosts.1.routes":           "<missing>",
				"probes":                   "<missing>",
				"allow":                    "<missing>",
			},
			wantFindings: []string{"uses PCRE syntax Go's RE2 lacks"},
			valid:        true,
		},
		{
			name: "limit_req and deny lists",
			files: map[string]string{"nginx.conf": httpConf(`
				limit_req_zone $binary_remote_addr zone=one:10m rate=30r/m;
				limit_req_zone $server_name zone=srv:10m rate=100r/s;
				deny 203.0.113.9;
				deny 198.51.100.0/24;
				allow all;
				server { server_name app.example.com; limit_req zone=one burst=5;
					location / { proxy_pass http://127.0.0.1:3000; }
					location /api/ { limit_req zone=srv; proxy_pass http://127.0.0.1:3000; }
				}`)},
			// The server's limit is the host's, never a flood limit of
			// every host; /api/ had its own (not carried), so it takes
			// none of the host's. The http-level deny list is every
			// host's access list.
			want: map[string]string{
				"limits.rates.one":        "map[burst:5 rate:30r/m status:503]",
				"limits.rates.srv":        "<missing>",
				"hosts.0.limit":           "one",
				"hosts.0.access":          "[deny 203.0.113.9/32 deny 198.51.100.0/24 allow all]",
				"hosts.0.routes.0.paths":  "[/api/]",
				"hosts.0.routes.0.limit":  "off",
				"hosts.0.routes.0.access": "<missing>",
				"jails":                   "<missing>",
				"state_dir":               "<missing>",
			},
			wantFindings: []string{"gatehouse counts a named limit per client address (key client), per client and host, or per request header; not by $server_name"},
			wantYAML:     []string{"- deny 203.0.113.9/32 # deny, DIR/nginx.conf:6"},
			valid:        true,
		},
		{
			name: "real IP and secure links",
			files: map[string]string{"nginx.conf": httpConf(`
				set_real_ip_from 10.0.0.0/8;
				set_real_ip_from 192.0.2.1;
				real_ip_header X-Forwarded-For;
				real_ip_recursive on;
				server { server_name media.example.com;
					location / { proxy_pass http://127.0.0.1:3000; }
					location /paid/ {
						secure_link $arg_md5,$arg_expires;
						secure_link_md5 "$secure_link_expires$uri secret";
						if ($secure_link = "") { return 403; }
						if ($secure_link = "0") { return 410; }
						proxy_pass http://127.0.0.1:3000;
					}
				}`)},
			want:         map[string]string{"trusted_proxies": "[10.0.0.0/8 192.0.2.1/32]"},
			wantFindings: []string{"nginx's MD5 secure links cannot be carried over"},
			wantYAML:     []string{"signed_links:", "paths: [/paid/]", "key: env:GATEHOUSE_LINK_KEY"},
		},
		{
			name: "real IP without real_ip_header",
			files: map[string]string{"nginx.conf": httpConf(`
				server { server_name a.example.com; set_real_ip_from 10.1.0.0/16; location / { proxy_pass http://127.0.0.1:3000; } }`)},
			want:         map[string]string{"trusted_proxies": "[10.1.0.0/16]"},
			wantFindings: []string{"without real_ip_header nginx took the client address from X-Real-IP"},
			valid:        true,
		},
		{
			name: "what has no equivalent",
			files: map[string]string{"fastcgi_params": "fastcgi_param QUERY_STRING $query_string;\n", "nginx.conf": "load_module modules/ngx_http_lua_module.so;\nevents {}\n" + httpConf(`
				map $http_user_agent $bot { default 0; ~*curl 1; }
				map $http_upgrade $connection_upgrade { default upgrade; '' close; }
				proxy_cache_path /var/cache/nginx keys_zone=c:10m;
				gzip on;
				server { server_name app.example.com;
					rewrite ^/old/(.*)$ /new/$1 permanent;
					location / { proxy_pass http://127.0.0.1:3000; proxy_cache c; access_by_lua_block { if ngx.var.x == "}" then ngx.exit(403) end -- }
					} }
					location ~ \.php$ { include fastcgi_params; fastcgi_pass unix:/run/php/php-fpm.sock; }
					location /static/ { expires 30d; }
					location = /robots.txt { allow all; log_not_found off; }
				}`)[len("events {}\n"):]},
			wantFindings: []string{
				"map $http_user_agent $bot: variables",
				"proxy_cache_path /var/cache/nginx keys_zone=c:10m: caching",
				"gzip on: compression",
				"rewrite ^/old/(.*)$ /new/$1 permanent: rewrites",
				"proxy_cache c: caching",
				"access_by_lua_block: scripts",
				"fastcgi_param QUERY_STRING $query_string: gatehouse proxies to HTTP(S) upstreams only",
				"fastcgi_pass unix:/run/php/php-fpm.sock: gatehouse proxies to HTTP(S) upstreams only",
				"expires 30d: caching",
				"location = /robots.txt: no proxy_pass here",
			},
			valid: true,
		},
		{
			name: "fail2ban jails",
			files: map[string]string{"nginx.conf": httpConf(`
				limit_req_zone $binary_remote_addr zone=one:10m rate=10r/s;
				server { server_name app.example.com; limit_req zone=one burst=20 nodelay;
					location / { proxy_pass http://127.0.0.1:3000; proxy_set_header Upgrade $http_upgrade; }
					location ~ /\.git { deny all; }
				}`)},
			jail: `[INCLUDES]
before = paths-debian.conf

[DEFAULT]
ignoreip = 127.0.0.1/8 ::1
           203.0.113.0/24 ; office
bantime  = 1h
findtime = 10m
maxretry = 5
bantime.increment = true
bantime.maxtime = 1w
banaction = iptables-ipset-proto6-allports

[sshd]
enabled = true

[nginx-http-auth]
enabled  = true
port     = http,https
maxretry = 3
bantime  = 30m

[nginx-botsearch]
enabled  = true
port     = http,https
maxretry = 2
findtime = 1 day
bantime.factor = 3

[nginx-limit-req]
enabled = true
bantime = -1
bantime.increment = false

[apache-auth]
enabled = true

[php-url-fopen]
enabled = false
`,
			want: map[string]string{
				"allow":                      "[127.0.0.0/8 ::1/128 203.0.113.0/24]",
				"jails.auth.maxretry":        "3",
				"jails.auth.bantime":         "30m",
				"jails.auth.increment":       "map[factor:2 max:7d]",
				"jails.probes.maxretry":      "2",
				"jails.probes.findtime":      "1d",
				"jails.probes.bantime":       "3h",
				"limits.rates.one":           "map[burst:20 delay:nodelay jail:limit rate:10r/s status:503]",
				"jails.limit.bantime":        "3650d",
				"jails.limit.increment":      "<missing>",
				"jails.limit.rate":           "<missing>",
				"jails.flood":                "<missing>",
				"firewall.backend":           "ipset",
				"firewall.ports":             "[80 443]",
				"hosts.0.routes.0.paths":     `[re:/\.git]`,
				"hosts.0.routes.0.access":    "[deny all]",
				"hosts.0.routes.0.jail":      "probes",
				"hosts.0.websocket":          "<missing>",
				"jails.auth.findtime":        "10m",
				"jails.probes.increment.max": "7d",
				"jails.probes.increment":     "map[factor:2 max:7d]",
				"jails.limit.maxretry":       "5",
				"hosts.0.match":              "[app.example.com]",
			},
			wantFindings: []string{"filter sshd reads logs gatehouse does not write", "jail auth already comes from"},
			valid:        true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := tc.files
			if tc.cert {
				files = maps(files, "cert.pem", "")
			}
			im := importFiles(t, files, tc.jail)
			if tc.cert {
				writeCert(t, im.dir, "a.example.com")
			}
			for path, want := range tc.want {
				want = strings.ReplaceAll(want, "DIR", im.dir)
				if got := get(im.doc, path); got != want {
					t.Errorf("%s = %q, want %q", path, got, want)
				}
			}
			var got []string
			for _, f := range im.res.Untranslated {
				got = append(got, f.String())
			}
			if tc.wantFindings == nil && len(got) > 0 {
				t.Errorf("findings:\n%s\nwant none", strings.Join(got, "\n"))
			}
			i := 0
			for _, w := range tc.wantFindings {
				for i < len(got) && !strings.Contains(got[i], w) {
					i++
				}
				if i == len(got) {
					t.Errorf("no finding %q (in order) in:\n%s", w, strings.Join(got, "\n"))
					break
				}
				i++
			}
			for _, f := range im.res.Untranslated {
				if f.File == "" || f.Line < 1 {
					t.Errorf("finding without a position: %v", f)
				}
			}
			for _, w := range tc.wantYAML {
				if w = strings.ReplaceAll(w, "DIR", im.dir); !strings.Contains(im.yaml, w) {
					t.Errorf("output lacks %q:\n%s", w, im.yaml)
				}
			}
			for _, f := range im.res.Untranslated {
				if !strings.Contains(im.yaml, "#   "+f.String()) {
					t.Errorf("output does not list %q", f)
				}
			}
			if tc.valid {
				if _, err := config.Parse(filepath.Join(im.dir, "gatehouse.yaml"), im.res.YAML); err != nil {
					t.Errorf("gatehouse refuses the output: %v\n%s", err, im.yaml)
				}
			}
		})
	}
}

// maps returns a copy of m with k set to v.
func maps(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range m {
		out[kk] = vv
	}
	return out
}

// TestTranslateComplete checks that a config using only what gatehouse
// has yields no finding (gatehouse import then exits 0) and that every
// translated block names its source.
func TestTranslateComplete(t *testing.T) {
	t.Parallel()
	im := importFiles(t, map[string]string{
		"htpasswd": htpasswdLine,
		"nginx.conf": `user www-data;
worker_processes auto;
pid /run/nginx.pid;
events { worker_connections 768; }
http {
    sendfile on;
    include conf.d/*.conf;
}
`,
		"conf.d/app.conf": `server {
    listen 8080;
    server_name app.example.com;
    auth_basic "Staging";   # the whole host
    auth_basic_user_file htpasswd;
    location / {
        proxy_pass http://127.0.0.1:3000;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
    location ~ /\.ht { deny all; }
}
`,
	}, "")
	if len(im.res.Untranslated) != 0 {
		t.Fatalf("findings: %v", im.res.Untranslated)
	}
	for _, w := range []string{
		"# server app.example.com, " + im.dir + "/conf.d/app.conf:1",
		"# auth_basic, " + im.dir + "/conf.d/app.conf:1",
		"- http://127.0.0.1:3000 # proxy_pass, " + im.dir + "/conf.d/app.conf:7",
		"# location ~ /\\.ht, " + im.dir + "/conf.d/app.conf:11",
		"- deny all # deny, " + im.dir + "/conf.d/app.conf:11",
		"http: :8080 # listen, " + im.dir + "/conf.d/app.conf:2",
	} {
		if !strings.Contains(im.yaml, w) {
			t.Errorf("output lacks %q:\n%s", w, im.yaml)
		}
	}
	if _, err := config.Parse("out.yaml", im.res.YAML); err != nil {
		t.Errorf("gatehouse refuses the output: %v", err)
	}
}

// TestTranslateDebianStock imports Debian's stock nginx.conf and
// sites-available/default (nginx 1.22.1-9+deb12u11, copied to testdata so
// the test needs no package): it serves static files only, so every
// finding is expected and nothing crashes.
func TestTranslateDebianStock(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(os.DirFS("testdata/debian"), "/etc/nginx/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Translate(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.Untranslated {
		got = append(got, fmt.Sprintf("%s:%d %s", filepath.Base(f.File), f.Line, strings.Fields(f.Directive)[0]))
	}
	want := []string{"nginx.conf:46 gzip", "default:21 server", "default:41 root", "default:44 index", "default:51 try_files"}
	if !slices.Equal(got, want) {
		t.Errorf("findings = %q, want %q", got, want)
	}
	golden(t, "testdata/debian.golden.yaml", res.YAML)
	if _, err := config.Parse("debian.yaml", res.YAML); err == nil || !strings.Contains(err.Error(), "at least one host is required") {
		t.Errorf("config.Parse(output) = %v, want the missing-host error", err)
	}
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// FuzzTranslate feeds any config nginx's grammar accepts to Translate:
// it must not fail, its output must be YAML, and every finding must name
// a line of the input.
func FuzzTranslate(f *testing.F) {
	// Directive shapes the translator looks at, with odd argument counts.
	for _, s := range []string{
		"http { server { server_name a.example.com; location / { proxy_pass http://127.0.0.1:1; } } }",
		"http { server { valid_referers none; if ($invalid_referer) { return; } location ~* \\.(jpg)$ { if ($invalid_referer) { rewrite; } } } }",
		"http { server { location / { deny; allow; return; } location = { } location { } } }",
		"http { upstream u { server; server unix:/x; } server { location / { proxy_pass http://u; } } }",
		"http { limit_req_zone; limit_req; server { listen; listen unix:/x ssl; ssl on; return 301 https://$host$request_uri; } }",
		"http { set_real_ip_from; real_ip_header; access_log; add_header; proxy_hide_header; client_max_body_size; server { server_name _; } }",
		"http { server { auth_basic; auth_basic_user_file; location /a { auth_basic off; secure_link; } } }",
		"http { map $http_upgrade $connection_upgrade { default upgrade; } server { if ($scheme != https) { return 301 https://$host$request_uri; } } }",
		"http { limit_req_zone $binary_remote_addr zone=z:1m rate=1r/s; limit_req_status 429; server { server_name a; limit_req zone=z burst=2 nodelay; allow 10.0.0.0/8; deny all; location = /l { limit_req zone=z burst=1 delay=1; return 444; } location ~ /\\.(?!w) { deny all; } location /a { auth_basic off; proxy_pass http://127.0.0.1:1/a; proxy_read_timeout 5m; } } }",
		"http { upstream u { server 127.0.0.1:1 max_fails=2 fail_timeout=5s; server 127.0.0.1:2 max_fails=3; } server { server_name a; location / { proxy_pass http://u/x/; } location /b/ { return 301 /c; } } }",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		ds, err := conf.Parse("/etc/nginx/nginx.conf", []byte(src))
		if err != nil {
			return
		}
		res, err := Translate(&Config{File: "/etc/nginx/nginx.conf", Prefix: "/etc/nginx", Directives: ds, FS: os.DirFS(t.TempDir())}, Options{})
		var invalid *InvalidError
		if errors.As(err, &invalid) {
			for _, p := range invalid.Problems {
				if p.Line < 1 || p.Line > strings.Count(src, "\n")+1 {
					t.Fatalf("problem %v: line outside the input", p)
				}
			}
			return
		}
		if err != nil {
			t.Fatalf("Translate: %v", err)
		}
		var doc any
		if err := yaml.Unmarshal(res.YAML, &doc); err != nil {
			t.Fatalf("output is not YAML: %v\n%s", err, res.YAML)
		}
		lines := strings.Count(src, "\n") + 1
		for _, fd := range res.Untranslated {
			if fd.Line < 1 || fd.Line > lines {
				t.Fatalf("finding %v: line outside 1..%d", fd, lines)
			}
		}
	})
}

// TestTranslateInvalid checks that input nginx -t refuses is an
// InvalidError naming every refused directive's line, not a translation.
// cmd/gatehouse's import test runs nginx -t on the same shapes.
func TestTranslateInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		conf string
		want []string // "line: substring"
	}{
		{"limit_req without its zone", `server { server_name a.example.com; location / { limit_req zone=nope burst=5; proxy_pass http://127.0.0.1:1; } }`,
			[]string{`3: limit_req zone=nope burst=5: no limit_req_zone defines zone "nope"`}},
		{"bad burst and rate", `limit_req_zone $binary_remote_addr zone=z:1m rate=fast;
server { server_name a.example.com; limit_req zone=z burst=x; location / { proxy_pass http://127.0.0.1:1; } }`,
			[]string{`3: limit_req_zone $binary_remote_addr zone=z:1m rate=fast: invalid rate "rate=fast"`, `4: limit_req zone=z burst=x: invalid burst value "burst=x"`}},
		{"location outside a server", `location / { proxy_pass http://127.0.0.1:1; }`,
			[]string{`3: location /: "location" directive is not allowed here`}},
		{"bad allow address", `server { server_name a.example.com; location / { allow 10.0.0.300; proxy_pass http://127.0.0.1:1; } }`,
			[]string{`3: allow 10.0.0.300: invalid parameter "10.0.0.300"`}},
		{"bad return code", `server { server_name a.example.com; location / { return 1000; } location /x { return nothing; } }`,
			[]string{`3: return 1000: invalid return code "1000"`, `3: return nothing: invalid return code "nothing"`}},
		{"duplicate location", `server { server_name a.example.com;
location /a { proxy_pass http://127.0.0.1:1; }
location ^~ /a { proxy_pass http://127.0.0.1:1; } }`,
			[]string{`5: location ^~ /a: duplicate location "/a"`}},
		{"bad timeouts and sizes", `upstream u { server 127.0.0.1:1 max_fails=x; }
server { server_name a.example.com; proxy_read_timeout 5x; client_max_body_size 10q; limit_req_status 302;
location / { proxy_pass http://u; } }`,
			[]string{`3: server 127.0.0.1:1 max_fails=x: invalid parameter "max_fails=x"`, "4: proxy_read_timeout 5x: invalid value",
				"4: client_max_body_size 10q: invalid value", "4: limit_req_status 302: value must be between 400 and 599"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := "events {}\nhttp {\n" + tc.conf + "\n}\n"
			ds, err := conf.Parse("/etc/nginx/nginx.conf", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Translate(&Config{File: "/etc/nginx/nginx.conf", Prefix: "/etc/nginx", Directives: ds, FS: os.DirFS(t.TempDir())}, Options{})
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("Translate = %v, %v; want an InvalidError", res, err)
			}
			var got []string
			for _, p := range invalid.Problems {
				got = append(got, strings.TrimPrefix(p.String(), "/etc/nginx/nginx.conf:"))
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
					t.Errorf("problems %q lack %q", got, w)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("problems %q, want %d", got, len(tc.want))
			}
		})
	}
}

// TestRouteRegexLookahead checks the RE2 form of a trailing negative
// lookahead against what PCRE decides for "/\.(?!well-known)".
func TestRouteRegexLookahead(t *testing.T) {
	t.Parallel()
	expr, err := routeRegex(`/\.(?!well-known)`)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(expr)
	for path, want := range map[string]bool{
		"/.env": true, "/.git/config": true, "/a/.htaccess": true, "/.": true, "/.w": true, "/.well": true,
		"/.well-know": true, "/.well-knowX": true, "/.wellknown": true,
		"/.well-known": false, "/.well-known/acme-challenge/x": false, "/.well-knownx": false, "/a/b": false,
		"/.well-known/.env": true, // PCRE finds the second "/."
	} {
		if got := re.MatchString(path); got != want {
			t.Errorf("%s matches %q = %v, want %v (PCRE)", expr, path, got, want)
		}
	}
	if _, err := routeRegex(`/(?!well-known)x`); err == nil {
		t.Errorf("routeRegex accepted a lookahead not at the end")
	}
}

// TestTranslateMailAction checks fail2ban's action_mw: notify.email
// carries destemail and sender, and the SMTP server is listed.
func TestTranslateMailAction(t *testing.T) {
	t.Parallel()
	im := importFiles(t, map[string]string{"nginx.conf": httpConf(`server { server_name a.example.com; location / { proxy_pass http://127.0.0.1:3000; } }`)},
		`[DEFAULT]
destemail = ops@example.com
sender = fail2ban@example.com
action = %(action_mwl)s

[nginx-http-auth]
enabled = true

[nginx-botsearch]
enabled = true
action = %(action_)s
`)
	for path, want := range map[string]string{
		"notify.email.smtp": "localhost:25",
		"notify.email.from": "fail2ban@example.com",
		"notify.email.to":   "[ops@example.com]",
	} {
		if got := get(im.doc, path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	var got []string
	for _, f := range im.res.Untranslated {
		got = append(got, f.String())
	}
	for _, w := range []string{"jail.local:4: action: fail2ban mailed bans through the local sendmail", "gatehouse mails every ban; fail2ban mailed bans of nginx-http-auth only, not of nginx-botsearch"} {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
			t.Errorf("findings %q lack %q", got, w)
		}
	}
	if _, err := config.Parse(filepath.Join(im.dir, "gatehouse.yaml"), im.res.YAML); err != nil {
		t.Errorf("gatehouse refuses the output: %v\n%s", err, im.yaml)
	}
}
