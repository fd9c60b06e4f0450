// Command gatehouse is the security reverse proxy gateway's command line:
// serve, check and version (see DESIGN.md for the full set). It parses
// flags, wires packages together and chooses exit codes: 0 ok, 1 runtime
// failure, 2 usage or invalid config.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"gatehouse/configs"
	"gatehouse/middleware/htpasswd"
	"gatehouse/proxy"
	"gatehouse/proxy/config"
	"gatehouse/proxy/privdrop"

	"golang.org/x/crypto/bcrypt"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

const usage = `usage: gatehouse <command> [flags]

commands:
  serve   [-c FILE] [--watch 2s] [--user USER | --allow-root] [--port N] [--admin-port N]
                      run the gateway (no -c and no GATEHOUSE_CONFIG: the embedded demo config,
                      whose ports --port and --admin-port change);
                      reload when FILE changes (checked every --watch; 0: on SIGHUP only);
                      as root it needs --user (switch once bound) or --allow-root
  check   -c FILE     validate a config; errors name file:line and the field
  healthcheck [-c FILE] [--admin URL]
                      exit 0 when a running gateway's /readyz answers 200, else 1
                      (for Docker's HEALTHCHECK and other supervisors)
  htpasswd [--follow] [-c] [-n] [-b] [-i] [-B|-m|-s|-2|-5] [-C COST] [-r ROUNDS] [-D] [-v] FILE USER [PASSWORD]
                      create and edit htpasswd files, with Apache htpasswd's flags
  rules test -c FILE [--show-matches] [--host NAME] [--top N] LOGFILE... | -
                      replay access logs (nginx/Apache or gatehouse's; gzip or plain;
                      - is standard input) through the rules and the jails, oldest log
                      first; print what would be refused and the bans that would follow;
                      exit 1 when a log has no line in a known format
  rules test -c FILE --watch NAME [--show-matches] [--print-missed] LOGFILE... | -
  rules test --filter NAME [--mode MODE] LOGFILE... | -
                      replay a service's log (auth.log, journalctl -o json …) through a
                      watch source's filter and jail, or a built-in filter alone, like
                      fail2ban-regex: matches per regex, missed lines, the bans that follow
  sign s3 --bucket B --key K [--method GET|PUT] [--expires 1h]
  sign cloudfront --url URL [--expires 1h] [--not-before T] [--ip CIDR] [--cookies]
  sign link --url URL [--expires 1h] [--ip IP]
                      signed URLs for paid media from a running gateway (--admin URL
                      --token T or --token-file FILE, or GATEHOUSE_ADMIN / GATEHOUSE_TOKEN)
                      or locally with -c FILE
  bans list [--json] | add IP|CIDR [--for 1h] [--reason R] | del IP|CIDR
                      the ban list of a running gateway (--admin URL --token T or
                      --token-file FILE, or GATEHOUSE_ADMIN / GATEHOUSE_TOKEN)
  firewall status|flush [-c FILE]
                      show or remove the kernel sets/rules gatehouse created
  fleet status [-c FILE]
                      the nodes of the fleet as its Redis sees them: last seen, lag, outbox
  import nginx FILE [--fail2ban DIR|JAIL.LOCAL] [-o OUT.yaml]
                      translate an nginx config (and fail2ban jails) into a gatehouse
                      config; exit 3 when something could not be carried over
  import fail2ban [DIR] [-o OUT.yaml]
                      turn fail2ban's enabled jails (default /etc/fail2ban) into
                      watch entries and jails; exit 3 as above
  version             print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheckCmd(args[1:], stderr)
	case "htpasswd":
		return htpasswdCmd(args[1:], os.Stdin, stdout, stderr)
	case "rules":
		return rulesCmd(args[1:], os.Stdin, stdout, stderr)
	case "bans":
		return bansCmd(args[1:], stdout, stderr)
	case "sign":
		return signCmd(args[1:], stdout, stderr)
	case "firewall":
		return firewallCmd(args[1:], stdout, stderr)
	case "import":
		return importCmd(args[1:], stdout, stderr)
	case "fleet":
		return fleetCmd(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		v += " " + bi.GoVersion
	}
	return "gatehouse " + v
}

// configFlag registers -c and returns the flag's value, defaulting to
// $GATEHOUSE_CONFIG.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("c", os.Getenv("GATEHOUSE_CONFIG"), "config `FILE` (default $GATEHOUSE_CONFIG)")
}

func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) bool {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return false
	}
	return true
}

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := configFlag(fs)
	if !parseFlags(fs, args, stderr) {
		return exitUsage
	}
	if *path == "" {
		fmt.Fprintln(stderr, "gatehouse check: -c FILE is required")
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return loadExit(err)
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, w)
	}
	fmt.Fprintf(stdout, "%s: ok: %s\n", *path, cfg.Summary())
	return exitOK
}

// serveUsage is what `gatehouse serve --help` prints; its first line is
// the serve line of usage, so both show every flag.
const serveUsage = `usage: gatehouse serve [-c FILE] [--watch 2s] [--user USER | --allow-root] [--port N] [--admin-port N]
  -c FILE        config file (default $GATEHOUSE_CONFIG; neither: the embedded demo config)
  --watch 2s     check the config file for changes this often and reload when its
                 content changed (0: only on SIGHUP)
  --user USER    started as root: switch to USER (name or uid) once the listeners are
                 bound, keeping only CAP_NET_ADMIN (and CAP_NET_RAW for ipset) for
                 kernel ban sync
  --allow-root   keep running as root (without --user, gatehouse refuses to run as root)
  --port N       embedded demo config only: serve on 127.0.0.1:N instead of 8080
  --admin-port N embedded demo config only: the admin listener and dashboard on
                 127.0.0.1:N instead of 9901
`

// serveFlags are serve's flags; the FlagSet is returned for parsing.
type serveFlags struct {
	path      *string
	watch     *time.Duration
	runAsUser *string
	allowRoot *bool
	port      *int
	adminPort *int
}

func newServeFlags(stderr io.Writer) (*flag.FlagSet, serveFlags) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage) }
	return fs, serveFlags{
		path:      configFlag(fs),
		watch:     fs.Duration("watch", 2*time.Second, "check the config file for changes this often (0: only on SIGHUP)"),
		runAsUser: fs.String("user", "", "started as root: switch to `USER` (name or uid) once the listeners are bound, keeping only CAP_NET_ADMIN for kernel ban sync"),
		allowRoot: fs.Bool("allow-root", false, "keep running as root (without --user, gatehouse refuses to)"),
		port:      fs.Int("port", 0, "embedded demo only: serve on 127.0.0.1:`PORT` instead of 8080"),
		adminPort: fs.Int("admin-port", 0, "embedded demo only: the admin listener and dashboard on 127.0.0.1:`PORT` instead of 9901"),
	}
}

func serve(args []string, stderr io.Writer) int {
	fs, f := newServeFlags(stderr)
	path, watch, runAsUser, allowRoot, port, adminPort := f.path, f.watch, f.runAsUser, f.allowRoot, f.port, f.adminPort
	if !parseFlags(fs, args, stderr) {
		return exitUsage
	}
	demoPorts, err := demoPortsOf(fs, *path, *port, *adminPort)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse serve:", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var cfg *config.File
	var d *demo
	if *path == "" {
		cfg, d, err = demoConfig(demoPorts)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitRuntime
		}
		defer d.Close()
	} else if cfg, err = config.Load(*path); err != nil {
		fmt.Fprintln(stderr, err)
		return loadExit(err)
	}
	runAs, err := privdrop.ResolveRunAs(*runAsUser, *allowRoot, os.Geteuid())
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse serve:", err)
		return exitUsage
	}
	if d != nil && runAs != nil {
		// The demo's htpasswd file is watched, and its directory removed
		// at exit, by the user gatehouse switches to.
		err := filepath.WalkDir(d.dir, func(p string, _ os.DirEntry, err error) error {
			return errors.Join(err, os.Lchown(p, runAs.UID, runAs.GID))
		})
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse serve: demo files for --user:", err)
			return exitRuntime
		}
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel(cfg.Log.Level)}))
	if runAs == nil && os.Geteuid() == 0 {
		log.Warn("running as root (--allow-root); prefer --user or the systemd unit")
	}
	srv, err := proxy.New(proxy.Options{Config: cfg, ConfigPath: *path, WatchInterval: *watch, Log: log, RunAs: runAs})
	if err != nil {
		// The config is valid (config.Load said so): what fails now is
		// the environment — state_dir, a bans.db another gatehouse holds,
		// an access log file, an htpasswd file gone since.
		log.Error("start failed", "error", err)
		return exitRuntime
	}
	log.Info("gatehouse starting", "version", version, "config", configName(*path), "summary", cfg.Summary())
	if d != nil {
		// The token is in the banner only, never in a log line.
		log.Info("demo dashboard", "url", "http://"+cfg.Admin.Listen+"/ui/")
		logDemoHints(stderr, cfg, d)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading config")
				_ = srv.Reload() // Reload logs its own outcome
			case <-ctx.Done():
				return
			}
		}
	}()

	if err := srv.Run(ctx); err != nil {
		log.Error("gateway stopped", "error", err)
		return exitRuntime
	}
	log.Info("stopped")
	return exitOK
}

// loadExit maps a config.Load error to the exit code: an invalid config is
// a usage error (2), an unreadable file a runtime failure (1).
func loadExit(err error) int {
	var errs config.Errors
	if errors.As(err, &errs) {
		return exitUsage
	}
	return exitRuntime
}

func configName(path string) string {
	if path == "" {
		return "embedded demo"
	}
	return path
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo // validated by config already
	}
	return l
}

// demo is the running demo: the app behind the embedded config, the
// staging host's generated password and the dashboard's token.
type demo struct {
	app      *http.Server
	dir      string
	password string
	token    string
}

// demoListen are the demo's listen addresses, from serve --port and
// --admin-port; "" keeps the embedded config's.
type demoListen struct {
	http, admin string
}

// demoPortsOf checks serve's --port and --admin-port: ports of the
// embedded demo config only, since a config file names its own listeners
// (and a reload re-reads them from the file).
func demoPortsOf(fs *flag.FlagSet, path string, port, adminPort int) (demoListen, error) {
	var l demoListen
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["port"] && !set["admin-port"] {
		return l, nil
	}
	if path != "" {
		return l, fmt.Errorf("--port and --admin-port move the embedded demo's listeners; with -c FILE set listen.http and admin.listen in %s", path)
	}
	for _, p := range []struct {
		flag string
		n    int
		addr *string
	}{{"port", port, &l.http}, {"admin-port", adminPort, &l.admin}} {
		if !set[p.flag] {
			continue
		}
		if p.n < 1 || p.n > 65535 {
			return l, fmt.Errorf("--%s %d is not a port between 1 and 65535", p.flag, p.n)
		}
		*p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.n))
	}
	if l.http != "" && l.http == l.admin || l.http == "" && l.admin == "127.0.0.1:8080" || l.admin == "" && l.http == "127.0.0.1:9901" {
		return l, fmt.Errorf("--port and --admin-port must differ: the admin listener needs its own port")
	}
	return l, nil
}

func (d *demo) Close() {
	d.app.Close()
	os.RemoveAll(d.dir)
}

// demoConfig starts the built-in demo app on a loopback port, writes the
// staging host's htpasswd file with a random password, and returns the
// embedded config pointing at both.
func demoConfig(listen demoListen) (*config.File, *demo, error) {
	dir, err := os.MkdirTemp("", "gatehouse-demo-")
	if err != nil {
		return nil, nil, fmt.Errorf("demo: %w", err)
	}
	// A new token every start: the demo ships no secret.
	d := &demo{dir: dir, password: rand.Text()[:16], token: rand.Text()}
	tokenSum := sha256.Sum256([]byte(d.token))
	hash, err := htpasswd.HashBcrypt(d.password, bcrypt.DefaultCost)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("demo htpasswd: %w", err)
	}
	// The bans hint reads the token from a file, so that it shows in
	// neither ps nor the shell's history.
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(d.token+"\n"), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("demo token: %w", err)
	}
	users := filepath.Join(dir, "staging.htpasswd")
	if err := os.WriteFile(users, []byte(configs.DemoUser+":"+hash+"\n"), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("demo htpasswd: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("demo app: %w", err)
	}
	d.app = &http.Server{Handler: proxy.DemoApp(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		// Serve returns ErrServerClosed when the demo is closed on exit.
		if err := d.app.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "demo app:", err)
		}
	}()
	data := bytes.ReplaceAll(configs.Default, []byte(configs.DemoUpstream), []byte("http://"+ln.Addr().String()))
	data = bytes.ReplaceAll(data, []byte(configs.DemoHtpasswd), []byte(users))
	data = bytes.ReplaceAll(data, []byte(configs.DemoToken), []byte("sha256:"+hex.EncodeToString(tokenSum[:])))
	cfg, err := config.Parse("embedded default.yaml", data)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	if listen.http != "" {
		cfg.Listen.HTTP = listen.http
	}
	if listen.admin != "" {
		cfg.Admin.Listen = listen.admin
	}
	return cfg, d, nil
}

func logDemoHints(w io.Writer, cfg *config.File, d *demo) {
	_, port, _ := net.SplitHostPort(cfg.Listen.HTTP)
	base := "http://127.0.0.1:" + port + "/"
	fmt.Fprintf(w, `
gatehouse demo — try:
  curl -i %[1]s                                              proxied to the demo app
  curl -i -H 'Host: unknown.example' %[1]s                   421: not a host we serve
  curl -i %[1]s.env                                          403: a scanner probe (3 in a minute: banned for 30s)
  curl -i -e https://evil.example/ %[1]smedia/a.mp4          403: hotlinked media
  curl -i -H 'Host: staging.localhost' %[1]s                 401: basic auth
  curl -i -u %[3]s:%[4]s -H 'Host: staging.localhost' %[1]s  200 as user %[3]s
  curl -s http://%[2]s/metrics | grep gatehouse_
  gatehouse bans list --admin http://%[2]s --token-file %[6]s

dashboard: http://%[2]s/ui/
  sign in with the token %[5]s (made for this run only)

`, base, cfg.Admin.Listen, configs.DemoUser, d.password, d.token, filepath.Join(d.dir, "admin.token"))
}
