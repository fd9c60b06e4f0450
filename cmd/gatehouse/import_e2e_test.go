//go:build unix

package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"gatehouse/rules/testenv"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nginx is the oracle of gatehouse import: the test writes a realistic
// nginx config, nginx -t accepts it, gatehouse import translates it,
// gatehouse check accepts the result, and then nginx (running the input)
// and gatehouse (running the output) answer the same table of requests,
// both on loopback in front of the same echo upstreams. They must make
// the same decision — proxied, asked for a login, or refused — except
// where a row names a deliberate difference and its reason.

// decision is what a request came to.
type decision string

const (
	passed   decision = "pass"     // the upstream answered
	login    decision = "auth"     // 401, a login is needed
	refused  decision = "refuse"   // 4xx other than 401, or the connection closed (nginx 444)
	redirect decision = "redirect" // 3xx to https
	moved    decision = "moved"    // 3xx on the same scheme (nginx's "/x" to "/x/")
	answered decision = "answer"   // 2xx from the server itself (nginx's return 200)
	limited  decision = "limit"    // 429 or 503: a rate limit refused it
)

// oracleRequest is one request of the table.
type oracleRequest struct {
	name    string
	host    string
	path    string
	peer    string // source address; "" is 127.0.0.1 (a trusted proxy)
	xff     string // X-Forwarded-For; "" none
	referer string // "" none
	user    string // "user:password" for basic auth
	// want is the decision of both servers; wantGatehouse, when set, is
	// gatehouse's where it differs on purpose, and why says why.
	want          decision
	wantGatehouse decision
	why           string
	// status, when not 0, is the exact status both must answer (-1: the
	// connection closed without one, nginx's 444); upstream, when set,
	// names the upstream both must have passed the request to.
	status   int
	upstream string
}

// nginxServer is a running nginx.
type nginxServer struct {
	done   chan struct{}
	err    error
	stderr *logBuffer
}

// startNginx runs nginx in the foreground on conf (which must say
// "daemon off; master_process off;" so it needs no privileges and stays
// one process), and waits until addr accepts connections.
func startNginx(t *testing.T, bin, dir, conf string, addrs ...string) *nginxServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-p", dir+"/", "-c", conf, "-e", filepath.Join(dir, "error.log"))
	n := &nginxServer{done: make(chan struct{}), stderr: newLogBuffer()}
	cmd.Stdout, cmd.Stderr = n.stderr, n.stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start nginx: %v", err)
	}
	go func() {
		n.err = cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		// SIGQUIT: graceful stop; the context kills it if that hangs.
		_ = cmd.Process.Signal(syscall.SIGQUIT) // it may have exited already
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		select {
		case <-n.done:
		case <-timer.C:
			t.Errorf("nginx did not stop within %v of SIGQUIT", stopTimeout)
		}
		cancel()
		<-n.done
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", n.stderr, log)
		}
	})
	deadline := time.Now().Add(startTimeout)
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-n.done:
				t.Fatalf("nginx exited (%v) before listening on %s:\n%s", n.err, addr, n.stderr)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx does not listen on %s within %v: %v", addr, startTimeout, err)
			}
			timer := time.NewTimer(pollInterval)
			select {
			case <-timer.C:
			case <-n.done:
			}
			timer.Stop()
		}
	}
	return n
}

// loopbackPort returns a loopback port that was free a moment ago; nginx
// needs a fixed port in its config.
func loopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// ask sends r to addr (scheme http or https, roots for https) and returns
// the decision and a description of the answer.
func ask(t *testing.T, scheme, addr string, roots *x509.CertPool, r oracleRequest) (decision, string) {
	t.Helper()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if r.peer != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(r.peer)}
	}
	tr := &http.Transport{
		Proxy:             nil,
		DialContext:       dialer.DialContext,
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: strings.ToLower(r.host)},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: clientTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, scheme+"://"+addr+r.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Send the path exactly as written (";", "%2e" …), not as Go cleans it.
	req.URL.Opaque = r.path
	req.Host = r.host
	if r.xff != "" {
		req.Header.Set("X-Forwarded-For", r.xff)
	}
	if r.referer != "" {
		req.Header.Set("Referer", r.referer)
	}
	if user, pass, ok := strings.Cut(r.user, ":"); ok {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "EOF") {
			return refused, "connection closed"
		}
		t.Fatalf("%s: GET %s%s: %v", r.name, r.host, r.path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body) // the status is what counts
	desc := fmt.Sprintf("%d", resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusOK && resp.Header.Get("X-Upstream") != "":
		return passed, desc + " from " + resp.Header.Get("X-Upstream")
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return answered, desc
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return limited, desc
	case resp.StatusCode == http.StatusUnauthorized:
		return login, desc
	case resp.StatusCode >= 300 && resp.StatusCode < 400 && strings.HasPrefix(resp.Header.Get("Location"), "https://"):
		return redirect, desc + " to " + resp.Header.Get("Location")
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return moved, desc + " to " + resp.Header.Get("Location")
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return refused, desc
	}
	t.Fatalf("%s: GET %s%s: unexpected status %d", r.name, r.host, r.path, resp.StatusCode)
	return "", ""
}

// compare runs the table against both servers.
func compare(t *testing.T, table []oracleRequest, nginxAsk, gatehouseAsk func(oracleRequest) (decision, string)) {
	t.Helper()
	for _, r := range table {
		want := r.want
		gotN, descN := nginxAsk(r)
		if gotN != want {
			t.Errorf("%s: nginx: %s (%s), want %s", r.name, gotN, descN, want)
		}
		if r.wantGatehouse != "" {
			if r.why == "" {
				t.Errorf("%s: a deliberate difference needs its reason", r.name)
			}
			want = r.wantGatehouse
		}
		gotG, descG := gatehouseAsk(r)
		if gotG != want {
			t.Errorf("%s: gatehouse: %s (%s), want %s (nginx: %s, %s)", r.name, gotG, descG, want, gotN, descN)
		}
		for _, side := range []struct{ who, desc string }{{"nginx", descN}, {"gatehouse", descG}} {
			if r.wantGatehouse != "" && side.who == "gatehouse" {
				continue
			}
			if st := r.status; st != 0 && ((st == -1 && side.desc != "connection closed") || (st > 0 && !strings.HasPrefix(side.desc, strconv.Itoa(st)))) {
				t.Errorf("%s: %s answered %s, want status %d", r.name, side.who, side.desc, st)
			}
			if r.upstream != "" && !strings.HasSuffix(side.desc, " from "+r.upstream) {
				t.Errorf("%s: %s answered %s, want it from %s", r.name, side.who, side.desc, r.upstream)
			}
		}
	}
}

// patchImported makes an imported config runnable beside nginx in a
// test: its own ports, a state_dir of its own and an admin token.
func patchImported(t *testing.T, yaml string, nginxAddrs []string, token string) string {
	t.Helper()
	for _, a := range nginxAddrs {
		if !strings.Contains(yaml, a) {
			t.Fatalf("imported config does not listen on nginx's %s:\n%s", a, yaml)
		}
		yaml = strings.ReplaceAll(yaml, a, "127.0.0.1:0")
	}
	yaml = strings.ReplaceAll(yaml, "state_dir: /var/lib/gatehouse", "state_dir: "+t.TempDir())
	sum := sha256.Sum256([]byte(token))
	return yaml + "admin:\n  listen: 127.0.0.1:0\n  tokens:\n    - name: ops\n      token: sha256:" +
		hex.EncodeToString(sum[:]) + "\n      scopes: [bans:read, bans:write]\n"
}

// writeTree writes files (relative names) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImportNginxOracle(t *testing.T) {
	t.Parallel()
	nginxBin := testenv.Tool(t, "nginx")
	dir := t.TempDir()
	app1, app2 := newEchoUpstream(t, "app1"), newEchoUpstream(t, "app2")
	staging, media := newEchoUpstream(t, "staging"), newEchoUpstream(t, "media")
	api, shop, intranet := newEchoUpstream(t, "api"), newEchoUpstream(t, "shop"), newEchoUpstream(t, "intranet")
	host := func(u *echoUpstream) string { return strings.TrimPrefix(u.URL(), "http://") }
	port := loopbackPort(t)
	addr := "127.0.0.1:" + port

	htfile := filepath.Join(dir, "staging.htpasswd")
	for _, args := range [][]string{{"-c", "-b", "-B", "-C", "4", htfile, "alice", "wonderland"}, {"-b", "-m", htfile, "bob", "builder"}} {
		if _, stderr, code := runGatehouse(t, append([]string{"htpasswd"}, args...)...); code != 0 {
			t.Fatalf("gatehouse htpasswd %v: exit %d: %s", args, code, stderr)
		}
	}
	r := strings.NewReplacer("DIR", dir, "ADDR", addr, "APP1", host(app1), "APP2", host(app2),
		"STAGING", host(staging), "MEDIA", host(media), "API", host(api), "SHOP", host(shop), "INTRANET", host(intranet))
	files := map[string]string{
		"nginx.conf": `daemon off;
master_process off;
worker_processes 1;
pid DIR/nginx.pid;
error_log DIR/error.log;

events {
    worker_connections 128;
}

http {
    client_body_temp_path DIR/tmp/body;
    proxy_temp_path DIR/tmp/proxy;
    fastcgi_temp_path DIR/tmp/fastcgi;
    uwsgi_temp_path DIR/tmp/uwsgi;
    scgi_temp_path DIR/tmp/scgi;
    access_log DIR/access.log combined;
    sendfile on;
    server_tokens off;

    # The load balancer on this host speaks for its clients.
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;

    deny 203.0.113.9;       # a scraper
    deny 198.51.100.0/24;   # a botnet

    # Low rates: the burst edges do not depend on timing.
    limit_req_zone $binary_remote_addr zone=perip:10m rate=50r/s;
    limit_req_zone $binary_remote_addr zone=login:10m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=api:10m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=shop:10m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=cart:10m rate=1r/m;

    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }

    upstream app_backend {
        server APP1 max_fails=3 fail_timeout=10s;
        server APP2 max_fails=3 fail_timeout=10s;
        keepalive 16;
    }

    server {
        listen ADDR default_server;
        server_name _;
        return 444;
    }

    include sites-enabled/*.conf;
}
`,
		"snippets/proxy.conf": `proxy_http_version 1.1;
proxy_set_header Host $host;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;
proxy_set_header Upgrade $http_upgrade;
proxy_set_header Connection $connection_upgrade;
`,
		"snippets/deny-probes.conf": `# Scanners: dotfiles (not ACME's), WordPress and phpMyAdmin, which we do not run.
location ~ /\.(?!well-known) {
    deny all;
}
location ~* /(wp-login|xmlrpc)\.php$ {
    return 403;
}
location ^~ /phpmyadmin {
    deny all;
    access_log off;
}
`,
		// Included from sites-enabled/, but relative to nginx.conf's
		// directory, as nginx resolves it.
		"sites-enabled/app.conf": `server {
    listen ADDR;
    server_name app.example.com www.example.com;
    client_max_body_size 10m;
    limit_req zone=perip burst=100 nodelay;

    include snippets/deny-probes.conf;

    location / {
        include snippets/proxy.conf;
        proxy_pass http://app_backend;
    }

    location /admin/ {
        auth_basic "App admin";
        auth_basic_user_file staging.htpasswd;
        include snippets/proxy.conf;
        proxy_pass http://app_backend;
    }

    location = /login {
        limit_req zone=login burst=2 nodelay;
        include snippets/proxy.conf;
        proxy_pass http://app_backend;
    }

    location /api/ {
        limit_req zone=api burst=3 delay=3;
        limit_req_status 429;
        include snippets/proxy.conf;
        proxy_pass http://API;
    }

    location /internal/ {
        allow 192.0.2.0/28;
        allow 10.0.0.0/8;
        deny all;
        include snippets/proxy.conf;
        proxy_pass http://app_backend;
    }

    location = /old { return 410; }
    location /gone/ { return 444; }
    location = /moved { return 301 /new; }
    location /shop/ { return 302 $scheme://shop.example.com$request_uri; }
    location = /ping { return 200 "pong"; }
}
`,
		"sites-enabled/staging.conf": `server {
    listen ADDR;
    server_name staging.example.com;
    auth_basic "Staging";
    auth_basic_user_file DIR/staging.htpasswd;

    location / {
        include snippets/proxy.conf;
        proxy_pass http://STAGING;
    }

    location = /healthz {
        auth_basic off;
        include snippets/proxy.conf;
        proxy_pass http://STAGING;
    }

    location /public/ {
        auth_basic off;
        include snippets/proxy.conf;
        proxy_pass http://STAGING;
    }
}
`,
		"sites-enabled/media.conf": `server {
    listen ADDR;
    server_name media.example.com;

    location ~* \.(jpg|jpeg|png|mp4)$ {
        valid_referers none blocked server_names *.example.com;
        if ($invalid_referer) {
            return 403;
        }
        include snippets/proxy.conf;
        proxy_pass http://MEDIA;
    }

    location / {
        include snippets/proxy.conf;
        proxy_pass http://MEDIA;
    }
}
`,
		"sites-enabled/shop.conf": `server {
    listen ADDR;
    server_name shop.example.com;
    limit_req zone=shop burst=4 nodelay;

    location / {
        include snippets/proxy.conf;
        proxy_pass http://SHOP;
    }

    location /static/ {
        include snippets/proxy.conf;
        proxy_pass http://SHOP;
    }

    location /cart/ {
        limit_req zone=cart burst=1 nodelay;
        include snippets/proxy.conf;
        proxy_pass http://SHOP;
    }
}
`,
		"sites-enabled/intranet.conf": `server {
    listen ADDR;
    server_name intranet.example.com;
    allow 192.0.2.0/24;
    allow 2001:db8::/32;
    deny all;

    location / {
        include snippets/proxy.conf;
        proxy_pass http://INTRANET;
    }

    location = /status {
        allow all;
        include snippets/proxy.conf;
        proxy_pass http://INTRANET;
    }
}
`,
		"jail.local": `[DEFAULT]
ignoreip = 127.0.0.1/8 ::1
bantime  = 1h
findtime = 10m

[sshd]
enabled = false

[nginx-http-auth]
enabled  = true
port     = http,https
maxretry = 5

[nginx-botsearch]
enabled  = true
port     = http,https
maxretry = 2

[nginx-limit-req]
enabled  = true
port     = http,https
maxretry = 2
`,
	}
	for name, data := range files {
		files[name] = r.Replace(data)
	}
	writeTree(t, dir, files)
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")

	// nginx accepts the input.
	if out, err := exec.Command(nginxBin, "-t", "-p", dir+"/", "-c", conf, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	// gatehouse translates it, listing the one thing it leaves out, and
	// accepts the output.
	out := filepath.Join(dir, "gatehouse.yaml")
	_, stderr, code := runGatehouse(t, "import", "nginx", conf, "--fail2ban", filepath.Join(dir, "jail.local"), "-o", out)
	wantListed := filepath.Join(dir, "snippets/deny-probes.conf") + ":10: access_log off: gatehouse logs per host (hosts[].log), not per location\n" +
		"gatehouse import: 1 not carried over"
	if code != exitPartial || !strings.Contains(stderr, wantListed) {
		t.Fatalf("gatehouse import: exit %d, want %d listing\n%s\n:\n%s", code, exitPartial, wantListed, stderr)
	}
	if stdout, stderr, code := runGatehouse(t, "check", "-c", out); code != 0 {
		t.Fatalf("gatehouse check: exit %d: %s%s", code, stdout, stderr)
	}
	imported, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// The login-only limit stays on /login: no jail has a rate (a flood
	// limit for every client on every path).
	if strings.Contains(string(imported), "flood") {
		t.Errorf("the import widened a limit_req to a flood jail:\n%s", imported)
	}
	g := startGateway(t, patchImported(t, string(imported), []string{addr}, "oracle-test-token"))
	startNginx(t, nginxBin, dir, conf, addr)

	const untrusted = "127.0.0.2" // a loopback peer that is not in set_real_ip_from
	app := "app.example.com"
	table := []oracleRequest{
		{name: "app root", host: app, path: "/", xff: "192.0.2.1", want: passed},
		{name: "app, host in capitals", host: "APP.Example.COM", path: "/x", xff: "192.0.2.2", want: passed},
		{name: "app admin without login", host: app, path: "/admin/", xff: "192.0.2.3", want: login},
		{name: "app admin, bcrypt user", host: app, path: "/admin/users", xff: "192.0.2.4", user: "alice:wonderland", want: passed},
		{name: "app admin, apr1 user", host: app, path: "/admin/", xff: "192.0.2.5", user: "bob:builder", want: passed},
		{name: "app admin, wrong password", host: app, path: "/admin/", xff: "192.0.2.6", user: "alice:queen", want: login},
		{name: "app admin, unknown user", host: app, path: "/admin/", xff: "192.0.2.7", user: "mallory:x", want: login},
		// The route /admin/ covers /admin too. nginx redirects /admin
		// to /admin/ (whose login it then asks), so the upstream never
		// sees /admin without a login there either; gatehouse asks at once.
		{name: "app admin without slash", host: app, path: "/admin", xff: "192.0.2.30", want: moved,
			wantGatehouse: login, why: "gatehouse asks for the login on /admin where nginx redirects it to /admin/, which asks"},
		{name: "app admin without slash, query", host: app, path: "/admin?x=1", xff: "192.0.2.31", want: moved,
			wantGatehouse: login, why: "as /admin: the query is not part of the path"},
		{name: "app admin with a ;param", host: app, path: "/admin;x", xff: "192.0.2.32", want: passed,
			wantGatehouse: login, why: "nginx's location / serves /admin;x to the upstream without a login, which most applications read as /admin; " +
				"gatehouse strips ;params from every reading, so the route /admin/ asks for the login"},
		{name: "app admin with a trailing dot", host: app, path: "/admin.", xff: "192.0.2.33", want: passed,
			wantGatehouse: refused, why: "a Windows upstream reads /admin. as /admin: the readings disagree as for /admin;x"},
		{name: "app outside admin needs no login", host: app, path: "/administrators", xff: "192.0.2.8", want: passed},
		{name: "staging without login", host: "staging.example.com", path: "/", xff: "192.0.2.9", want: login},
		{name: "staging with login", host: "staging.example.com", path: "/build/42", xff: "192.0.2.10", user: "bob:builder", want: passed, upstream: "staging"},
		{name: "staging wrong password", host: "staging.example.com", path: "/", xff: "192.0.2.11", user: "bob:bulldozer", want: login},
		{name: "media, no referer", host: "media.example.com", path: "/v/a.mp4", xff: "192.0.2.12", want: passed, upstream: "media"},
		{name: "media, own page", host: "media.example.com", path: "/i/a.jpg", xff: "192.0.2.13", referer: "https://media.example.com/gallery", want: passed},
		{name: "media, sister site", host: "media.example.com", path: "/i/a.PNG", xff: "192.0.2.14", referer: "https://blog.example.com/post", want: passed},
		{name: "media, foreign site", host: "media.example.com", path: "/i/a.jpg", xff: "192.0.2.15", referer: "https://evil.test/", want: refused},
		{name: "media, lookalike host", host: "media.example.com", path: "/v/b.mp4", xff: "192.0.2.16", referer: "https://example.com.evil.test/", want: refused},
		{name: "media, referer mangled by a proxy", host: "media.example.com", path: "/i/a.jpg", xff: "192.0.2.17", referer: "XXXXXXXX", want: passed},
		{name: "media page, foreign referer", host: "media.example.com", path: "/page.html", xff: "192.0.2.18", referer: "https://evil.test/", want: passed},
		{name: "probe .env", host: app, path: "/.env", xff: "192.0.2.19", want: refused, status: 403},
		{name: "probe .git", host: app, path: "/blog/.git/config", xff: "192.0.2.20", want: refused},
		{name: "ACME path is no probe", host: app, path: "/.well-known/security.txt", xff: "192.0.2.21", want: passed},
		{name: "a dotfile under .well-known", host: app, path: "/.well-known/.env", xff: "192.0.2.34", want: refused},
		{name: "probe wp-login", host: "www.example.com", path: "/WP-Login.php", xff: "192.0.2.22", want: refused, status: 403},
		{name: "probe phpmyadmin", host: app, path: "/phpmyadmin/index.php", xff: "192.0.2.23", want: refused},
		{name: "probe with merged slashes", host: app, path: "//.env", xff: "192.0.2.24", want: refused},
		{name: "probe, other case", host: app, path: "/phpMyAdmin/", xff: "192.0.2.25", want: passed,
			wantGatehouse: refused, why: "gatehouse's prefix routes ignore ASCII case; nginx's ^~ /phpmyadmin is case-sensitive"},
		{name: "probe with a ;param", host: app, path: "/xmlrpc.php;x=1", xff: "192.0.2.26", want: passed,
			wantGatehouse: refused, why: "path normalisation: gatehouse strips ;params before matching, nginx's \\.php$ does not match"},
		{name: "probe rules stay on their host", host: "media.example.com", path: "/.env", xff: "192.0.2.27", want: passed},
		{name: "unknown host", host: "unknown.example.net", path: "/", xff: "192.0.2.28", want: refused},
		{name: "no Host match, IP literal", host: "127.0.0.1", path: "/", xff: "192.0.2.29", want: refused},
		{name: "denied address via trusted proxy", host: app, path: "/", xff: "203.0.113.9", want: refused, status: 403},
		{name: "denied network via trusted proxy", host: app, path: "/", xff: "198.51.100.77", want: refused, status: 403},
		{name: "denied address behind a chain", host: app, path: "/", xff: "198.51.100.5, 127.0.0.1", want: refused},
		{name: "denied address, other host", host: "media.example.com", path: "/", xff: "203.0.113.9", want: refused},
		{name: "denied address before a login", host: "staging.example.com", path: "/", xff: "198.51.100.6", user: "bob:builder", want: refused, status: 403},
		{name: "spoofed XFF from an untrusted peer", host: app, path: "/", peer: untrusted, xff: "203.0.113.9", want: passed},
		{name: "untrusted peer", host: "staging.example.com", path: "/", peer: untrusted, want: login},

		// limit_req zone=login burst=2 nodelay on = /login only: three
		// requests pass, the fourth gets nginx's 503.
		{name: "login 1", host: app, path: "/login", xff: "198.18.1.1", want: passed},
		{name: "login 2", host: app, path: "/login", xff: "198.18.1.1", want: passed},
		{name: "login 3, burst full", host: app, path: "/login", xff: "198.18.1.1", want: passed},
		{name: "login 4, over the burst", host: app, path: "/login", xff: "198.18.1.1", want: limited, status: 503},
		{name: "login limit is per client", host: app, path: "/login", xff: "198.18.1.2", want: passed},
		{name: "login limit is per client 2", host: app, path: "/login", xff: "198.18.1.2", want: passed},
		{name: "login limit is per client 3", host: app, path: "/login", xff: "198.18.1.2", want: passed},
		{name: "login limit is per client 4", host: app, path: "/login", xff: "198.18.1.2", want: limited, status: 503},
		{name: "other paths are not limited by it", host: app, path: "/", xff: "198.18.1.1", want: passed},
		{name: "other paths are not limited by it 2", host: app, path: "/login/x", xff: "198.18.1.1", want: passed},
		{name: "other paths are not limited by it 3", host: app, path: "/styles.css", xff: "198.18.1.1", want: passed},
		{name: "login with a query counts", host: app, path: "/login", xff: "198.18.1.3", want: passed},
		{name: "login with a query counts 2", host: app, path: "/login?next=/", xff: "198.18.1.3", want: passed},
		{name: "login with a query counts 3", host: app, path: "/login?a=b", xff: "198.18.1.3", want: passed},
		{name: "login with a query counts 4", host: app, path: "/login?x", xff: "198.18.1.3", want: limited, status: 503},
		{name: "login in capitals", host: app, path: "/LOGIN", xff: "198.18.1.4", want: passed},
		{name: "login in capitals 2", host: app, path: "/LOGIN", xff: "198.18.1.4", want: passed},
		{name: "login in capitals 3", host: app, path: "/LOGIN", xff: "198.18.1.4", want: passed},
		{name: "login in capitals 4", host: app, path: "/LOGIN", xff: "198.18.1.4", want: passed,
			wantGatehouse: limited, why: "gatehouse's =/login ignores ASCII case; nginx's = /login does not, so /LOGIN took location /"},
		// fail2ban's nginx-limit-req jail (maxretry 2) counts refusals:
		// gatehouse bans the second one's client, nginx never bans.
		{name: "second refusal", host: app, path: "/login", xff: "198.18.1.2", want: limited, status: 503},
		{name: "banned after two refusals", host: app, path: "/", xff: "198.18.1.2", want: passed,
			wantGatehouse: refused, why: "gatehouse bans after repeated limit refusals (fail2ban's nginx-limit-req jail, counted inline)"},

		// limit_req zone=api burst=3 delay=3 (answered at once) with
		// limit_req_status 429, on /api/ with its own upstream.
		{name: "api 1", host: app, path: "/api/v1/items", xff: "198.18.2.1", want: passed, upstream: "api"},
		{name: "api 2", host: app, path: "/api/v1/items", xff: "198.18.2.1", want: passed, upstream: "api"},
		{name: "api 3", host: app, path: "/api/v1/items/7", xff: "198.18.2.1", want: passed, upstream: "api"},
		{name: "api 4, burst full", host: app, path: "/api/", xff: "198.18.2.1", want: passed, upstream: "api"},
		{name: "api 5, over the burst", host: app, path: "/api/v1/items", xff: "198.18.2.1", want: limited, status: 429},
		{name: "api, second client", host: app, path: "/api/a", xff: "198.18.2.2", want: passed, upstream: "api"},
		{name: "api, second client 2", host: app, path: "/api/b", xff: "198.18.2.2", want: passed, upstream: "api"},
		{name: "api, second client 3", host: app, path: "/api/c", xff: "198.18.2.2", want: passed, upstream: "api"},
		{name: "api, second client 4", host: app, path: "/api/d", xff: "198.18.2.2", want: passed, upstream: "api"},
		{name: "api, second client 5", host: app, path: "/api/e", xff: "198.18.2.2", want: limited, status: 429},
		{name: "api without slash", host: app, path: "/api", xff: "198.18.2.3", want: moved,
			wantGatehouse: passed, why: "the route /api/ covers /api, which nginx redirects to /api/ (the same upstream)"},
		{name: "a name that starts like api", host: app, path: "/apix", xff: "198.18.2.3", want: passed},

		// allow 192.0.2.0/28; allow 10.0.0.0/8; deny all on /internal/.
		{name: "internal, allowed network", host: app, path: "/internal/report", xff: "192.0.2.1", want: passed},
		{name: "internal, last allowed address", host: app, path: "/internal/", xff: "192.0.2.15", want: passed},
		{name: "internal, first address after", host: app, path: "/internal/", xff: "192.0.2.16", want: refused, status: 403},
		{name: "internal, private network", host: app, path: "/internal/x", xff: "10.9.8.7", want: passed},
		{name: "internal, other network", host: app, path: "/internal/x", xff: "172.16.0.1", want: refused, status: 403},
		{name: "internal, IPv6 client", host: app, path: "/internal/x", xff: "2001:db8::1", want: refused},
		{name: "internal, the http deny list no longer applies", host: app, path: "/internal/x", xff: "198.51.100.9", want: refused},
		{name: "internal without slash, refused client", host: app, path: "/internal", xff: "172.16.0.2", want: moved,
			wantGatehouse: refused, why: "the route /internal/ covers /internal, which nginx redirects to /internal/ (which refuses)"},
		{name: "internal elsewhere", host: app, path: "/internals", xff: "172.16.0.3", want: passed},

		// return in a location.
		// A 410 is no scanner's answer: no offence, however often.
		{name: "return 410", host: app, path: "/old", xff: "192.0.2.40", want: refused, status: 410},
		{name: "return 410 with a query", host: app, path: "/old?x=1", xff: "192.0.2.40", want: refused, status: 410},
		{name: "return 410 again", host: app, path: "/old", xff: "192.0.2.40", want: refused, status: 410},
		{name: "return 410 is exact", host: app, path: "/older", xff: "192.0.2.40", want: passed},
		{name: "return 410 in capitals", host: app, path: "/OLD", xff: "192.0.2.40", want: passed,
			wantGatehouse: refused, why: "gatehouse's =/old ignores ASCII case"},
		// A 444 is (the botsearch jail counts it): one client each.
		{name: "return 444", host: app, path: "/gone/page", xff: "192.0.2.41", want: refused, status: -1},
		{name: "return 444 deeper", host: app, path: "/gone/a/b", xff: "192.0.2.47", want: refused, status: -1},
		{name: "return 444, directory itself", host: app, path: "/gone/", xff: "192.0.2.48", want: refused, status: -1},
		{name: "return 444, without slash", host: app, path: "/gone", xff: "192.0.2.49", want: passed,
			wantGatehouse: refused, why: "the route /gone/ covers /gone; nginx's location /gone/ (without proxy_pass) does not, so location / took it"},
		{name: "return 301", host: app, path: "/moved", xff: "192.0.2.42", want: moved, status: 301},
		{name: "return 302 with variables", host: app, path: "/shop/cart?item=7", xff: "192.0.2.42", want: moved, status: 302},
		{name: "return 302 with variables, deeper", host: app, path: "/shop/a/b", xff: "192.0.2.42", want: moved, status: 302},
		{name: "return 200", host: app, path: "/ping", xff: "192.0.2.43", want: answered, status: 200},
		{name: "return 200 with a query", host: app, path: "/ping?x", xff: "192.0.2.43", want: answered, status: 200},

		// auth_basic off in an authenticated host.
		{name: "healthz without login", host: "staging.example.com", path: "/healthz", xff: "192.0.2.44", want: passed, upstream: "staging"},
		{name: "healthz with a query", host: "staging.example.com", path: "/healthz?full=1", xff: "192.0.2.44", want: passed},
		{name: "healthz with a wrong password", host: "staging.example.com", path: "/healthz", xff: "192.0.2.45", user: "bob:x", want: passed},
		{name: "healthz is exact", host: "staging.example.com", path: "/healthz/x", xff: "192.0.2.44", want: login},
		{name: "healthz in capitals", host: "staging.example.com", path: "/HEALTHZ", xff: "192.0.2.44", want: login,
			wantGatehouse: passed, why: "gatehouse's =/healthz ignores ASCII case; the upstream gets /HEALTHZ without a login"},
		{name: "public without login", host: "staging.example.com", path: "/public/logo.png", xff: "192.0.2.46", want: passed},
		{name: "public directory", host: "staging.example.com", path: "/public/", xff: "192.0.2.46", want: passed},
		{name: "public without slash", host: "staging.example.com", path: "/public", xff: "192.0.2.46", want: moved,
			wantGatehouse: passed, why: "the route /public/ covers /public, which nginx redirects to /public/ (no login either)"},
		{name: "a name that starts like public", host: "staging.example.com", path: "/publicity", xff: "192.0.2.46", want: login},
		{name: "the rest still needs a login", host: "staging.example.com", path: "/private", xff: "192.0.2.46", want: login},
		{name: "the rest with a login", host: "staging.example.com", path: "/private", xff: "192.0.2.46", user: "alice:wonderland", want: passed},

		// A server-level limit_req (zone=shop burst=4 nodelay) counts
		// every location that has none of its own; /cart/ has its own.
		{name: "shop 1", host: "shop.example.com", path: "/", xff: "198.18.3.1", want: passed, upstream: "shop"},
		{name: "shop 2", host: "shop.example.com", path: "/static/a.css", xff: "198.18.3.1", want: passed},
		{name: "shop 3", host: "shop.example.com", path: "/p/1", xff: "198.18.3.1", want: passed},
		{name: "shop 4", host: "shop.example.com", path: "/static/b.css", xff: "198.18.3.1", want: passed},
		{name: "shop 5, burst full", host: "shop.example.com", path: "/", xff: "198.18.3.1", want: passed},
		{name: "shop 6, over the burst", host: "shop.example.com", path: "/static/c.css", xff: "198.18.3.1", want: limited, status: 503},
		{name: "cart has its own limit", host: "shop.example.com", path: "/cart/", xff: "198.18.3.1", want: passed},
		{name: "cart 2", host: "shop.example.com", path: "/cart/add", xff: "198.18.3.1", want: passed},
		{name: "cart 3, over its burst", host: "shop.example.com", path: "/cart/add", xff: "198.18.3.1", want: limited, status: 503},
		{name: "cart first", host: "shop.example.com", path: "/cart/", xff: "198.18.3.2", want: passed},
		{name: "cart first 2", host: "shop.example.com", path: "/cart/", xff: "198.18.3.2", want: passed},
		{name: "cart first 3", host: "shop.example.com", path: "/cart/", xff: "198.18.3.2", want: limited, status: 503},
		{name: "shop after cart", host: "shop.example.com", path: "/", xff: "198.18.3.2", want: passed},
		{name: "shop after cart 2", host: "shop.example.com", path: "/static/x.js", xff: "198.18.3.2", want: passed},
		{name: "shop after cart 3", host: "shop.example.com", path: "/", xff: "198.18.3.2", want: passed},
		{name: "shop after cart 4", host: "shop.example.com", path: "/static/y.js", xff: "198.18.3.2", want: passed},
		{name: "shop after cart 5", host: "shop.example.com", path: "/", xff: "198.18.3.2", want: passed},
		{name: "shop after cart 6", host: "shop.example.com", path: "/", xff: "198.18.3.2", want: limited, status: 503},

		// Server-level allow/deny, replaced by location = /status.
		{name: "intranet, allowed network", host: "intranet.example.com", path: "/", xff: "192.0.2.200", want: passed, upstream: "intranet"},
		{name: "intranet, allowed IPv6", host: "intranet.example.com", path: "/wiki", xff: "2001:db8::5", want: passed},
		{name: "intranet, other network", host: "intranet.example.com", path: "/", xff: "10.0.0.1", want: refused, status: 403},
		{name: "intranet, the scraper", host: "intranet.example.com", path: "/", xff: "203.0.113.9", want: refused},
		// location = /status's allow all replaces the server's and the
		// http-level lists, in both.
		{name: "intranet status, the scraper", host: "intranet.example.com", path: "/status", xff: "203.0.113.9", want: passed},
		{name: "intranet status, anyone", host: "intranet.example.com", path: "/status", xff: "172.16.0.9", want: passed},
		{name: "intranet status is exact", host: "intranet.example.com", path: "/statusx", xff: "172.16.0.9", want: refused},
		{name: "intranet, untrusted peer", host: "intranet.example.com", path: "/", peer: untrusted, want: refused},
		{name: "intranet status, untrusted peer", host: "intranet.example.com", path: "/status", peer: untrusted, want: passed},

		// Two probes ban 192.0.2.50 in gatehouse (the nginx-botsearch
		// jail, maxretry 2, counting the refusing routes); nginx never
		// bans.
		{name: "first probe", host: app, path: "/.aws/credentials", xff: "192.0.2.50", want: refused},
		{name: "second probe", host: app, path: "/.ssh/id_rsa", xff: "192.0.2.50", want: refused},
		{name: "after two probes", host: app, path: "/", xff: "192.0.2.50", want: passed,
			wantGatehouse: refused, why: "gatehouse bans after repeated probes (fail2ban's nginx-botsearch jail, counted inline)"},
		{name: "banned on every host", host: "media.example.com", path: "/", xff: "192.0.2.50", want: passed,
			wantGatehouse: refused, why: "a gatehouse ban covers every host"},
	}
	if len(table) < 120 {
		t.Fatalf("the decision table has %d requests, want at least 120", len(table))
	}
	compare(t, table,
		func(r oracleRequest) (decision, string) { return ask(t, "http", addr, nil, r) },
		func(r oracleRequest) (decision, string) { return ask(t, "http", g.httpAddr, nil, r) })

	// Both servers spread app's requests over its two upstreams.
	for _, target := range []struct{ name, addr string }{{"nginx", addr}, {"gatehouse", g.httpAddr}} {
		seen := map[string]bool{}
		for i := range 6 {
			_, desc := ask(t, "http", target.addr, nil, oracleRequest{name: "round robin", host: app, path: "/rr", xff: "192.0.2." + strconv.Itoa(100+i)})
			seen[desc] = true
		}
		if !seen["200 from app1"] || !seen["200 from app2"] {
			t.Errorf("%s: app's answers %v, want both app1 and app2", target.name, seen)
		}
	}
}

// TestImportNginxTLSOracle compares a TLS site with its plain-HTTP
// redirect server; the certificate is self-signed with openssl.
func TestImportNginxTLSOracle(t *testing.T) {
	t.Parallel()
	nginxBin := testenv.Tool(t, "nginx")
	openssl := testenv.Tool(t, "openssl")
	dir := t.TempDir()
	up := newEchoUpstream(t, "secure")
	httpAddr, httpsAddr := "127.0.0.1:"+loopbackPort(t), "127.0.0.1:"+loopbackPort(t)
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if out, err := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
		"-keyout", key, "-out", cert, "-subj", "/CN=secure.example.com",
		"-addext", "subjectAltName=DNS:secure.example.com,DNS:www.secure.example.com").CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	r := strings.NewReplacer("DIR", dir, "HTTPADDR", httpAddr, "HTTPSADDR", httpsAddr, "UPSTREAM", up.URL())
	writeTree(t, dir, map[string]string{"nginx.conf": r.Replace(`daemon off;
master_process off;
pid DIR/nginx.pid;
events {}
http {
    client_body_temp_path DIR/body;
    proxy_temp_path DIR/proxy;
    fastcgi_temp_path DIR/fastcgi;
    uwsgi_temp_path DIR/uwsgi;
    scgi_temp_path DIR/scgi;
    access_log off;

    server {
        listen HTTPADDR;
        server_name secure.example.com www.secure.example.com;
        return 301 https://$host$request_uri;
    }

    server {
        listen HTTPSADDR ssl http2;
        server_name secure.example.com www.secure.example.com;
        ssl_certificate DIR/cert.pem;
        ssl_certificate_key DIR/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:1m;

        location / {
            proxy_pass UPSTREAM;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }
}
`)})
	conf := filepath.Join(dir, "nginx.conf")
	if out, err := exec.Command(nginxBin, "-t", "-p", dir+"/", "-c", conf, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "gatehouse.yaml")
	_, stderr, code := runGatehouse(t, "import", "nginx", conf, "-o", out)
	if code != 0 {
		t.Fatalf("gatehouse import: exit %d, want 0:\n%s", code, stderr)
	}
	if stdout, stderr, code := runGatehouse(t, "check", "-c", out); code != 0 {
		t.Fatalf("gatehouse check: exit %d: %s%s", code, stdout, stderr)
	}
	imported, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"https: " + httpsAddr, "cert: " + cert, "key: " + key, "TLS on: plain HTTP is redirected to https"} {
		if !strings.Contains(string(imported), want) {
			t.Errorf("imported config lacks %q:\n%s", want, imported)
		}
	}
	g := startGateway(t, patchImported(t, string(imported), []string{httpsAddr, httpAddr}, "tls-oracle-token"))
	if g.httpsAddr == "" {
		t.Fatalf("gatehouse did not log an https listener")
	}
	startNginx(t, nginxBin, dir, conf, httpAddr, httpsAddr)

	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	httpsTable := []oracleRequest{
		{name: "https site", host: "secure.example.com", path: "/", want: passed},
		{name: "https second name", host: "www.secure.example.com", path: "/a?b=c", want: passed},
		{name: "https unknown host", host: "other.example.com", path: "/", want: passed, wantGatehouse: refused,
			why: "gatehouse answers 421 to a host it does not serve; nginx sent it to its only TLS server"},
	}
	httpTable := []oracleRequest{
		{name: "plain HTTP redirects", host: "secure.example.com", path: "/login", want: redirect},
		{name: "plain HTTP redirects, second name", host: "www.secure.example.com", path: "/", want: redirect},
	}
	compare(t, httpsTable,
		func(r oracleRequest) (decision, string) { return askTLS(t, httpsAddr, roots, r, "other.example.com") },
		func(r oracleRequest) (decision, string) { return askTLS(t, g.httpsAddr, roots, r, "other.example.com") })
	compare(t, httpTable,
		func(r oracleRequest) (decision, string) { return ask(t, "http", httpAddr, nil, r) },
		func(r oracleRequest) (decision, string) { return ask(t, "http", g.httpAddr, nil, r) })
}

// askTLS asks over https with SNI secure.example.com for the unknown-host
// row (whose Host header is unknown), the request's host otherwise.
func askTLS(t *testing.T, addr string, roots *x509.CertPool, r oracleRequest, unknown string) (decision, string) {
	t.Helper()
	if r.name == "https unknown host" {
		return askHost(t, addr, roots, r, "secure.example.com", unknown)
	}
	return ask(t, "https", addr, roots, r)
}

// askHost sends an https request whose SNI is sni and Host header host.
func askHost(t *testing.T, addr string, roots *x509.CertPool, r oracleRequest, sni, host string) (decision, string) {
	t.Helper()
	r.host = sni
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: sni}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: clientTimeout}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+addr+r.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", r.name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body) // the status is what counts
	if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Upstream") != "" {
		return passed, "200"
	}
	return refused, strconv.Itoa(resp.StatusCode)
}

// TestImportBrowserBurst loads pages as a browser does through an
// imported config whose only limit_req is on the login page (1r/s, burst
// 5): 20 pages, each fetching 12 assets in parallel, must see no 429 or
// 503 and no ban, where an importer that made the login limit a flood
// limit for every path refused and banned within a second. The login
// page itself keeps its limit.
func TestImportBrowserBurst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	up := newEchoUpstream(t, "app")
	addr := "127.0.0.1:" + loopbackPort(t)
	writeTree(t, dir, map[string]string{
		"nginx.conf": strings.NewReplacer("ADDR", addr, "UPSTREAM", strings.TrimPrefix(up.URL(), "http://")).Replace(`events {}
http {
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    limit_req_zone $binary_remote_addr zone=login:10m rate=1r/s;
    server {
        listen ADDR;
        server_name app.example.com;
        location / {
            proxy_pass http://UPSTREAM;
        }
        location = /login {
            limit_req zone=login burst=5 nodelay;
            proxy_pass http://UPSTREAM;
        }
    }
}
`),
		"jail.local": `[nginx-limit-req]
enabled = true
maxretry = 3
findtime = 10m

[nginx-botsearch]
enabled = true
maxretry = 2
`,
	})
	out := filepath.Join(dir, "gatehouse.yaml")
	if _, stderr, code := runGatehouse(t, "import", "nginx", filepath.Join(dir, "nginx.conf"), "--fail2ban", filepath.Join(dir, "jail.local"), "-o", out); code != exitPartial {
		// The botsearch jail is listed: this config refuses no scanner.
		t.Fatalf("gatehouse import: exit %d, want %d:\n%s", code, exitPartial, stderr)
	}
	imported, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	const token = "browser-test-token"
	g := startGateway(t, patchImported(t, string(imported), []string{addr}, token))

	const client = "192.0.2.77"
	get := func(path string) (int, error) {
		req, err := g.newRequest(t.Context(), http.MethodGet, "app.example.com", path, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("X-Forwarded-For", client)
		resp, _, err := g.do(req)
		if err != nil {
			return 0, err
		}
		return resp.StatusCode, nil
	}
	statuses := map[int]int{}
	for page := range 20 {
		path := "/page/" + strconv.Itoa(page)
		if page == 0 {
			path = "/login"
		}
		code, err := get(path)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		statuses[code]++
		codes := make(chan int, 12)
		errs := make(chan error, 12)
		for asset := range 12 {
			go func() {
				code, err := get(fmt.Sprintf("/static/%d/%d.css", page, asset))
				codes <- code
				errs <- err
			}()
		}
		for range 12 {
			if err := <-errs; err != nil {
				t.Fatalf("page %d: asset: %v", page, err)
			}
			statuses[<-codes]++
		}
	}
	if statuses[http.StatusOK] != 20*13 {
		t.Errorf("20 pages of 13 requests answered %v, want %d × 200", statuses, 20*13)
	}
	if n := g.metric(t, "gatehouse_bans_active", "jail", "limit"); n != 0 {
		t.Errorf("gatehouse_bans_active{jail=limit} = %v after browsing, want 0", n)
	}
	// The login page keeps nginx's limit: 20 logins at once from another
	// client cannot all pass (6 can at once, then one a second): nginx's
	// answer is 503, and after three of them the limit jail bans (403).
	limitedLogins, banned := 0, 0
	codes := make(chan int, 20)
	for range 20 {
		go func() {
			req, err := g.newRequest(t.Context(), http.MethodGet, "app.example.com", "/login", nil)
			if err != nil {
				codes <- 0
				return
			}
			req.Header.Set("X-Forwarded-For", "192.0.2.78")
			resp, _, err := g.do(req)
			if err != nil {
				codes <- 0
				return
			}
			codes <- resp.StatusCode
		}()
	}
	for range 20 {
		switch code := <-codes; code {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			limitedLogins++
		case http.StatusForbidden:
			banned++
		default:
			t.Errorf("a login answered %d, want 200, 503 or 403", code)
		}
	}
	if limitedLogins == 0 {
		t.Errorf("20 logins at once: none answered 503 (%d banned); the login limit (1r/s, burst 5) is gone", banned)
	}
}

// TestImportRefusedByNginx checks that a config nginx -t refuses makes
// gatehouse import exit 2, naming the file:line nginx names, and write
// no config.
func TestImportRefusedByNginx(t *testing.T) {
	t.Parallel()
	nginxBin := testenv.Tool(t, "nginx")
	for _, tc := range []struct {
		name string
		conf string // inside http { }
		line int    // the line both name
		// nginxNoLine: nginx names no line ("zero size shared memory
		// zone"); gatehouse names the limit_req's.
		nginxNoLine bool
	}{
		{"limit_req without its zone", "server { server_name a.example.com;\nlocation / { limit_req zone=login burst=5; proxy_pass http://127.0.0.1:1; } }", 4, true},
		{"limit_req with a bad burst", "limit_req_zone $binary_remote_addr zone=z:1m rate=1r/s;\nserver { server_name a.example.com;\nlimit_req zone=z burst=x; location / { proxy_pass http://127.0.0.1:1; } }", 5, false},
		{"bad rate", "limit_req_zone $binary_remote_addr zone=z:1m rate=fast;", 3, false},
		{"location outside a server", "location / { proxy_pass http://127.0.0.1:1; }", 3, false},
		{"bad allow address", "server { server_name a.example.com;\nlocation / { allow 10.0.0.300; proxy_pass http://127.0.0.1:1; } }", 4, false},
		{"bad return code", "server { server_name a.example.com;\nlocation / { return 1000; } }", 4, false},
		{"duplicate location", "server { server_name a.example.com;\nlocation /a { proxy_pass http://127.0.0.1:1; }\nlocation /a { proxy_pass http://127.0.0.1:1; } }", 5, false},
		{"bad max_fails", "upstream u { server 127.0.0.1:1 max_fails=x; }\nserver { server_name a.example.com; location / { proxy_pass http://u; } }", 3, false},
		{"bad proxy_read_timeout", "server { server_name a.example.com;\nproxy_read_timeout 5x; location / { proxy_pass http://127.0.0.1:1; } }", 4, false},
		{"bad limit_req_status", "limit_req_status 302;", 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
				t.Fatal(err)
			}
			conf := filepath.Join(dir, "nginx.conf")
			writeTree(t, dir, map[string]string{"nginx.conf": "events {}\nhttp {\n" + tc.conf + "\n}\n"})
			nginxOut, err := exec.Command(nginxBin, "-t", "-p", dir+"/", "-c", conf, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
			at := fmt.Sprintf("%s:%d", conf, tc.line)
			if err == nil || (!tc.nginxNoLine && !strings.Contains(string(nginxOut), " in "+at)) {
				t.Fatalf("nginx -t = %v, want it to refuse the config at %s:\n%s", err, at, nginxOut)
			}
			out := filepath.Join(dir, "gatehouse.yaml")
			_, stderr, code := runGatehouse(t, "import", "nginx", conf, "-o", out)
			if code != exitUsage || !strings.Contains(stderr, "nginx -t would refuse this config:\n"+at+": ") {
				t.Errorf("gatehouse import = exit %d, want %d naming %s:\n%s\n(nginx -t: %s)", code, exitUsage, at, stderr, nginxOut)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("gatehouse import wrote %s (%v) for a config nginx refuses", out, err)
			}
		})
	}
}
