// Command gatehouse is the security reverse proxy gateway's command line:
// serve, check and version (see DESIGN.md for the full set). It parses
// flags, wires packages together and chooses exit codes: 0 ok, 1 runtime
// failure, 2 usage or invalid config.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"syscall"
	"time"

	"gatehouse/configs"
	"gatehouse/middleware/htpasswd"
	"gatehouse/proxy"
	"gatehouse/proxy/config"

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
  serve   [-c FILE] [--user USER | --allow-root]
                      run the gateway (no -c and no GATEHOUSE_CONFIG: the embedded demo config);
                      as root it needs --user (switch once bound) or --allow-root
  check   -c FILE     validate a config; errors name file:line and the field
  htpasswd [-c] [-n] [-b] [-i] [-B|-m|-s|-2|-5] [-C COST] [-r ROUNDS] [-D] [-v] FILE USER [PASSWORD]
                      create and edit htpasswd files, with Apache htpasswd's flags
  rules test -c FILE [--show-matches] [--host NAME] LOGFILE
                      replay an nginx/Apache access log through the probe and hotlink
                      rules and the jails; print matches and the bans that would follow
  sign s3 --bucket B --key K [--method GET|PUT] [--expires 1h]
  sign cloudfront --url URL [--expires 1h] [--not-before T] [--ip CIDR] [--cookies]
  sign link --url URL [--expires 1h] [--ip IP]
                      signed URLs for paid media from a running gateway (--admin URL
                      --token T, or GATEHOUSE_ADMIN / GATEHOUSE_TOKEN) or locally with -c FILE
  bans list | add IP [--for 1h] [--reason R] | del IP
                      the ban list of a running gateway (--admin URL --token T,
                      or GATEHOUSE_ADMIN / GATEHOUSE_TOKEN)
  firewall status|flush [-c FILE]
                      show or remove the kernel sets/rules gatehouse created
  fleet status [-c FILE]
                      the nodes of the fleet as its Redis sees them: last seen, lag, outbox
  import nginx FILE [--fail2ban JAIL.LOCAL] [-o OUT.yaml]
                      translate an nginx config (and fail2ban jails) into a gatehouse
                      config; exit 3 when something could not be carried over
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
	case "htpasswd":
		return htpasswdCmd(args[1:], os.Stdin, stdout, stderr)
	case "rules":
		return rulesCmd(args[1:], stdout, stderr)
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
	fmt.Fprintf(stdout, "%s: ok: %s\n", *path, cfg.Summary())
	return exitOK
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := configFlag(fs)
	watch := fs.Duration("watch", 2*time.Second, "check the config file for changes this often (0: only on SIGHUP)")
	runAsUser := fs.String("user", "", "started as root: switch to `USER` (name or uid) once the listeners are bound, keeping only CAP_NET_ADMIN for kernel ban sync")
	allowRoot := fs.Bool("allow-root", false, "keep running as root (without --user, gatehouse refuses to)")
	if !parseFlags(fs, args, stderr) {
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var cfg *config.File
	var err error
	var d *demo
	if *path == "" {
		cfg, d, err = demoConfig()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitRuntime
		}
		defer d.Close()
	} else if cfg, err = config.Load(*path); err != nil {
		fmt.Fprintln(stderr, err)
		return loadExit(err)
	}
	runAs, err := proxy.ResolveRunAs(*runAsUser, *allowRoot, os.Geteuid())
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
		log.Error("start failed", "error", err)
		return exitUsage
	}
	log.Info("gatehouse starting", "version", version, "config", configName(*path), "summary", cfg.Summary())
	if d != nil {
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

// demo is the running demo: the app behind the embedded config and the
// staging host's generated password.
type demo struct {
	app      *http.Server
	dir      string
	password string
}

func (d *demo) Close() {
	d.app.Close()
	os.RemoveAll(d.dir)
}

// demoConfig starts the built-in demo app on a loopback port, writes the
// staging host's htpasswd file with a random password, and returns the
// embedded config pointing at both.
func demoConfig() (*config.File, *demo, error) {
	dir, err := os.MkdirTemp("", "gatehouse-demo-")
	if err != nil {
		return nil, nil, fmt.Errorf("demo: %w", err)
	}
	d := &demo{dir: dir, password: rand.Text()[:16]}
	hash, err := htpasswd.HashBcrypt(d.password, bcrypt.DefaultCost)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("demo htpasswd: %w", err)
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
	cfg, err := config.Parse("embedded default.yaml", data)
	if err != nil {
		d.Close()
		return nil, nil, err
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

`, base, cfg.Admin.Listen, configs.DemoUser, d.password)
}
