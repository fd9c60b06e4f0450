package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/proxy/admin"
	"gatehouse/proxy/cert"
	"gatehouse/proxy/config"
	"gatehouse/proxy/listener"
	"gatehouse/proxy/logsink"
	"gatehouse/proxy/privdrop"
	"gatehouse/rules"
	"gatehouse/rules/filever"
	"gatehouse/rules/firewall"
	"gatehouse/rules/fleet"
	"gatehouse/rules/notify"
	"gatehouse/rules/store"
)

// Options configures a Server.
type Options struct {
	// Config is the initial, already validated config. Required.
	Config *config.File
	// ConfigPath is the file Reload re-reads. "" (the embedded demo
	// config) means the config cannot be reloaded.
	ConfigPath string
	// WatchInterval is how often ConfigPath is checked for changes, which
	// trigger a reload. Zero: no watching (SIGHUP still reloads).
	WatchInterval time.Duration
	// Log receives the gateway's own log. nil: discard.
	Log *slog.Logger
	// RunAs, when set, is the account Run switches to once every
	// listener is bound and before anything is served (serve --user,
	// see package privdrop). It keeps CAP_NET_ADMIN when the kernel firewall
	// is on and no other capability. nil: no switch.
	RunAs *privdrop.Credential
}

// Server is the gateway: public listener, admin listener, and the current
// generation, swapped atomically on reload. Its methods are safe for
// concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	// sinks are the access logs' files.
	sinks *logsink.Set
	// bans is the ban list for the process's lifetime: reloads keep it.
	bans *rules.BanList
	// store keeps bans and ban history in state_dir/bans.db; nil without
	// a state_dir.
	store *store.Store
	// notifier sends ban notifications; nil without a notify section.
	notifier *notify.Notifier
	// firewall keeps the kernel's drop sets equal to the ban list; nil
	// with firewall.backend none or when no backend could be had.
	firewall *firewall.Reconciler
	// feeds keeps the blocklist feeds (intel.feeds) current, on the
	// request path and in the kernel (feeds.go).
	feeds *feedRunner
	// certs holds the HTTPS listener's certificates; nil without tls.
	certs *cert.Source
	// clientAuth asks the clients of the hosts with client_certs for a
	// certificate (clientcert.go); nil without tls.
	clientAuth *cert.ClientAuth
	// fleet syncs bans with the other nodes through redis; both nil
	// without a fleet block (fleet.go).
	fleet *fleet.Fleet
	redis *redis.Client
	// admin serves the admin listener.
	admin *admin.Admin
	// intel keeps the named trusted_proxies sets current (intel.go).
	intel *intelLists
	// watcher runs the watch sources (watch.go).
	watcher *watcher
	// checkpointPath is state_dir's offences.state ("" without a
	// state_dir); positions are the watch sources' read positions saved
	// in it, lastCheckpoint what the last one saved (checkpoint.go).
	checkpointPath string
	positions      *checkpointPositions
	lastCheckpoint checkpointMark

	reloadMu sync.Mutex // serialises reloads
	current  atomic.Pointer[generation]
	cfgSum   [sha256.Size]byte // of the file behind current; guarded by reloadMu

	ready atomic.Bool
}

var _ http.Handler = (*Server)(nil)

// New builds the first generation from opts.Config. It opens no sockets; Run
// does. A failure closes everything New had opened (the ban store and
// its file lock, the fleet's Redis clients, the access log file, the
// certificate cache), so a caller may retry on the same state_dir.
func New(opts Options) (_ *Server, err error) {
	if opts.Config == nil {
		return nil, errors.New("proxy: no config")
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log, metrics: newMetrics()}
	s.feeds = newFeedRunner(log, opts.Config.StateDir)
	defer func() {
		if err != nil {
			s.closeOpened()
		}
	}()
	s.intel = newIntelLists(log, s.trustedChanged)
	lists, err := s.intel.prepare(opts.Config)
	if err != nil {
		return nil, err
	}
	s.metrics.reg.MustRegister(s.intel)
	named := rangesOf(lists)
	s.bans = rules.NewBanList(rules.BanListConfig{Allow: neverBanned(opts.Config, named)})
	if n := opts.Config.Notify; n != nil {
		nc := notify.Config{Webhook: n.Webhook, MinInterval: n.MinInterval.D(), Log: log.With("component", "notify")}
		if e := n.Email; e != nil {
			nc.Email = &notify.EmailConfig{SMTP: e.SMTP, From: e.From, To: e.To,
				Username: e.Username.Value(), Password: e.Password.Value()}
		}
		if s.notifier, err = notify.New(nc); err != nil {
			return nil, fmt.Errorf("notify: %w", err)
		}
	}
	if err := s.openStore(opts.Config, named); err != nil {
		return nil, err
	}
	if err := s.openFleet(opts.Config); err != nil {
		return nil, err
	}
	s.metrics.reg.MustRegister(newBanCollector(s), newOpsCollector(s), feedCollector{s.feeds}, newGeoCollector(s))
	if err := s.openFirewall(opts.Config, named); err != nil {
		return nil, err
	}
	if opts.Config.TLSOn() {
		if s.clientAuth, err = s.newClientAuth(opts.Config); err != nil {
			return nil, err
		}
		cc := certConfig(opts.Config, log.With("component", "tls"))
		cc.ClientAuth = s.clientAuth
		if cc.ACME != nil {
			if cc.Redis, err = certRedis(opts.Config); err != nil {
				return nil, err
			}
		}
		s.certs = cert.New(cc)
	}
	s.sinks = logsink.NewSet(log.With("component", "access_log"))
	s.logWarnings(opts.Config)
	g, err := s.build(opts.Config, nil)
	if err != nil {
		return nil, err
	}
	if err := s.sinks.Reopen(g.logPaths); err != nil {
		return nil, err
	}
	s.current.Store(g)
	s.intel.commit(g.trusted)
	s.feeds.install(g.feeds, feedExempt(opts.Config, rangesOf(g.trusted)))
	s.restoreCheckpoint(opts.Config.StateDir)
	s.watcher = newWatcher(s, s.positions)
	entries, err := s.watcher.prepare(opts.Config)
	if err != nil {
		return nil, err
	}
	s.watcher.apply(entries)
	if s.admin, err = s.newAdmin(opts.Config); err != nil {
		return nil, err
	}
	if opts.ConfigPath != "" {
		if data, err := os.ReadFile(opts.ConfigPath); err == nil {
			s.cfgSum = sha256.Sum256(data)
		}
	}
	return s, nil
}

// closeOpened closes what New opened, for a New that fails: nothing of
// it has started (Run starts the goroutines), so closing is all there
// is to undo.
func (s *Server) closeOpened() {
	if s.sinks != nil {
		s.sinks.CloseAll()
	}
	s.stopTLS()
	if s.redis != nil {
		if err := s.redis.Close(); err != nil {
			s.log.Debug("close fleet redis client", "error", err)
		}
	}
	s.closeStore()
	if g := s.current.Load(); g != nil {
		g.closeIdle()
	}
}

// stopTLS ends certificate maintenance and closes the certificate
// store's Redis client in fleet mode.
func (s *Server) stopTLS() {
	if err := s.certs.Stop(); err != nil {
		s.log.Debug("close certificate store", "error", err)
	}
}

// ServeHTTP serves r on the current generation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.current.Load().handler.ServeHTTP(w, r)
}

// Run binds the listeners and serves until ctx is done, then stops
// accepting, drains requests in flight for up to limits.shutdown_timeout
// and returns. It returns an error only when a listener cannot be bound or
// fails.
func (s *Server) Run(ctx context.Context) error {
	cfg := s.current.Load().cfg
	lc := net.ListenConfig{}
	var ln net.Listener
	var err error
	if len(cfg.Hosts) > 0 { // none: a watch-only config, no proxy
		ln, err = lc.Listen(ctx, "tcp", cfg.Listen.HTTP)
		if err != nil {
			return fmt.Errorf("listen.http %s: %w", cfg.Listen.HTTP, err)
		}
	}
	var tlsLn net.Listener
	if cfg.TLSOn() {
		tlsLn, err = lc.Listen(ctx, "tcp", cfg.Listen.HTTPS)
		if err != nil {
			if ln != nil {
				ln.Close()
			}
			return fmt.Errorf("listen.https %s: %w", cfg.Listen.HTTPS, err)
		}
	}
	var admLn net.Listener
	if cfg.Admin.Listen != "off" {
		admLn, err = lc.Listen(ctx, "tcp", cfg.Admin.Listen)
		if err != nil {
			if ln != nil {
				ln.Close()
			}
			if tlsLn != nil {
				tlsLn.Close()
			}
			return fmt.Errorf("admin.listen %s: %w", cfg.Admin.Listen, err)
		}
	}

	// Every listener is bound: switch user before serving anything.
	if err := s.dropPrivileges(ctx); err != nil {
		for _, l := range []net.Listener{ln, tlsLn, admLn} {
			if l != nil {
				l.Close()
			}
		}
		return err
	}
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	var handler http.Handler = s
	if s.certs != nil {
		// ACME HTTP-01 challenges are answered before anything else.
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !s.certs.HandleChallenge(w, r) {
				s.ServeHTTP(w, r)
			}
		})
	}
	srv := &http.Server{
		Handler:                      handler,
		ReadHeaderTimeout:            cfg.Limits.ReadHeaderTimeout.D(),
		IdleTimeout:                  cfg.Limits.IdleTimeout.D(),
		MaxHeaderBytes:               int(cfg.Limits.MaxHeaderBytes),
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     errLog,
	}
	servers := []*http.Server{srv}
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	serve := func(srv *http.Server, ln net.Listener) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}
	// Connections per client are counted across the public listeners.
	connLimit := s.connLimiter(cfg)
	if ln != nil {
		wg.Go(func() { serve(srv, s.plainListener(ln, connLimit, cfg)) })
		s.log.Info("listening", "listener", "http", "addr", ln.Addr().String())
	} else {
		servers = nil
		s.log.Info("no hosts: no public listener; watching logs only", "watch_sources", len(cfg.Watch))
	}
	if tlsLn != nil {
		// gatehouse terminates TLS itself (package listener): HTTP/1.1 over
		// TLS then passes the framing guard too. TLSConfig only tells the
		// server to speak HTTP/2 on the h2 connections it is handed.
		tsrv := &http.Server{
			Handler:                      listener.WithTLSState(s),
			TLSConfig:                    s.certs.TLSConfig(),
			ConnContext:                  listener.ConnContext,
			ReadHeaderTimeout:            srv.ReadHeaderTimeout,
			IdleTimeout:                  srv.IdleTimeout,
			MaxHeaderBytes:               srv.MaxHeaderBytes,
			DisableGeneralOptionsHandler: true,
			ErrorLog:                     errLog,
			HTTP2:                        &http.HTTP2Config{MaxConcurrentStreams: cfg.Limits.H2MaxStreams},
		}
		tl := listener.NewTLS(listener.Limit(s.proxyProtocol(tlsLn, cfg), connLimit), tsrv.TLSConfig, srv.ReadHeaderTimeout, srv.MaxHeaderBytes, s.framingRefused, s.log)
		servers = append(servers, tsrv)
		wg.Go(func() { serve(tsrv, tl) })
		s.log.Info("listening", "listener", "https", "addr", tlsLn.Addr().String())
		if err := s.certs.Start(ctx, ln.Addr(), tlsLn.Addr()); err != nil {
			s.log.Error("automatic certificates not started", "error", err)
		}
	}
	if admLn != nil {
		adm := &http.Server{
			Handler:           s.admin,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       time.Minute,
			ErrorLog:          errLog,
		}
		servers = append(servers, adm)
		wg.Go(func() { serve(adm, admLn) })
		s.log.Info("listening", "listener", "admin", "addr", admLn.Addr().String())
	}

	sinkCtx, stopSink := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() { s.sinks.Run(sinkCtx) })
	watchCtx, stopWatch := context.WithCancel(ctx)
	// The dashboard's offence lists; it returns, ending the dashboard's
	// event streams, when watchCtx ends, before the servers drain.
	wg.Go(func() {
		// Run only returns when watchCtx ends.
		_ = s.metrics.dash.Run(watchCtx)
	})
	if s.opts.ConfigPath != "" && s.opts.WatchInterval > 0 {
		wg.Go(func() { s.watch(watchCtx) })
	}
	wg.Go(func() { s.watchHtpasswd(watchCtx) })
	wg.Go(func() { s.intel.Run(watchCtx) })
	wg.Go(func() { s.watchGeo(watchCtx) })
	wg.Go(func() { s.clientAuth.Run(watchCtx) })
	wg.Go(func() { s.watcher.Run(watchCtx) })
	wg.Go(func() { s.feeds.Run(watchCtx) })
	wg.Go(func() {
		// Run only returns when watchCtx ends.
		_ = s.bans.Run(watchCtx)
	})
	if s.firewall != nil {
		wg.Go(func() {
			err := s.firewall.Run(watchCtx)
			switch {
			case errors.Is(err, firewall.ErrNoPermission):
				s.log.Error("kernel firewall disabled: gatehouse lacks CAP_NET_ADMIN; bans are enforced in memory only", "error", err)
			case err != nil:
				s.log.Error("kernel firewall stopped; bans are enforced in memory only", "error", err)
			}
		})
	}
	if s.notifier != nil {
		sub := s.bans.Subscribe(1024)
		wg.Go(func() {
			defer sub.Close()
			if err := s.notifier.Run(sinkCtx, sub); err != nil {
				s.log.Error("ban notifications stopped", "error", err)
			}
		})
	}
	if s.fleet != nil {
		wg.Go(func() { s.runFleet(sinkCtx) })
	}
	if s.store != nil {
		sub := s.bans.Subscribe(4096)
		wg.Go(func() {
			defer sub.Close()
			if err := s.store.Run(sinkCtx, sub); err != nil {
				s.log.Error("ban store stopped; bans are no longer saved", "error", err)
			}
		})
	}
	s.releaseStartupMemory()
	s.ready.Store(true)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	s.ready.Store(false)
	stopWatch()
	timeout := s.current.Load().cfg.Limits.ShutdownTimeout.D()
	s.log.Info("shutting down", "drain_timeout", timeout.Seconds())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			s.log.Warn("drain timed out; closing remaining connections", "error", err)
			srv.Close()
		}
	}

	stopSink()
	wg.Wait()
	// The watch sources have stopped and requests have drained: the
	// counts and positions saved now are the last.
	s.checkpoint(true)
	s.closeStore()
	s.stopTLS()
	s.current.Load().closeIdle()
	return runErr
}

// Reload re-reads the config file and, when it is valid, swaps in a new
// generation. An invalid config changes nothing. Settings bound at start
// (listeners and server timeouts) are kept, with a warning, until restart.
func (s *Server) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	err := s.reload()
	if err != nil {
		s.metrics.reloads.WithLabelValues("failed").Inc()
		s.log.Error("config reload failed; the previous config keeps serving", "path", s.opts.ConfigPath, "error", err)
		return err
	}
	s.metrics.reloads.WithLabelValues("ok").Inc()
	return nil
}

func (s *Server) reload() (err error) {
	defer func() {
		// A bug in the config's checks must not take the running
		// gateway down: the reload fails, the old config serves on.
		if r := recover(); r != nil {
			err = fmt.Errorf("config reload: internal error: %v", r)
		}
	}()
	if s.opts.ConfigPath == "" {
		return errors.New("the embedded demo config cannot be reloaded; start with -c FILE")
	}
	data, err := os.ReadFile(s.opts.ConfigPath)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	cfg, err := config.Parse(s.opts.ConfigPath, data)
	if err != nil {
		return err
	}
	prev := s.current.Load()
	rt, err := s.build(cfg, prev)
	if err != nil {
		return err
	}
	entries, err := s.watcher.prepare(cfg)
	if err != nil {
		return err
	}
	if err := s.sinks.Reopen(rt.logPaths); err != nil {
		return err
	}
	s.warnRestartOnly(prev.cfg, cfg)
	if cfg.TLSOn() && s.clientAuth != nil {
		// The CA and CRL files are read again; a failure leaves the old
		// config serving.
		if err := s.clientAuth.Update(clientAuthConfig(cfg)); err != nil {
			return err
		}
	}
	if cfg.TLSOn() {
		s.certs.Update(certConfig(cfg, nil))
	}
	// New jails take over the counts of the old, and the offences that
	// requests still in flight on the old chain report.
	rt.jails.HandOver(prev.jails)
	// The watch entries first: until the generation follows, a line
	// judged by a new entry reports to the old jails, which pass it on.
	s.watcher.entries.Store(&entries)
	s.current.Store(rt)
	s.intel.commit(rt.trusted)
	s.feeds.install(rt.feeds, feedExempt(cfg, rangesOf(rt.trusted)))
	s.watcher.apply(entries)
	s.watcher.forget(prev.cfg, cfg)
	s.cfgSum = sha256.Sum256(data)
	if rt.transport != prev.transport {
		prev.transport.CloseIdleConnections()
	}
	for k, t := range prev.transports {
		if rt.transports[k] != t {
			t.CloseIdleConnections()
		}
	}
	if rt.client != prev.client {
		prev.client.CloseIdleConnections()
	}
	for k, c := range prev.clients {
		if rt.clients[k] != c {
			c.CloseIdleConnections()
		}
	}
	rt.closeIdleRemoved(prev)
	s.logWarnings(cfg)
	s.log.Info("config reloaded", "path", s.opts.ConfigPath, "summary", cfg.Summary())
	return nil
}

// logWarnings logs what check warns of in cfg (a route no path reaches),
// so a config changed and reloaded without check shows it too.
func (s *Server) logWarnings(cfg *config.File) {
	for _, w := range cfg.Warnings {
		s.log.Warn("config warning", "path", w.File, "line", w.Line, "field", w.Field, "warning", strings.TrimPrefix(w.Msg, "warning: "))
	}
}

// warnRestartOnly logs the settings a reload cannot change in place.
func (s *Server) warnRestartOnly(old, cfg *config.File) {
	warn := func(field string) {
		s.log.Warn("setting changed; it takes effect after a restart", "field", field)
	}
	if old.Listen.HTTP != cfg.Listen.HTTP {
		warn("listen.http")
	}
	if old.Listen.HTTPS != cfg.Listen.HTTPS || old.TLSOn() != cfg.TLSOn() {
		warn("listen.https / tls")
	}
	if !slices.Equal(old.Listen.ProxyProtocol, cfg.Listen.ProxyProtocol) {
		warn("listen.proxy_protocol")
	}
	if old.Admin.Listen != cfg.Admin.Listen {
		warn("admin.listen")
	}
	if !slices.Equal(old.Admin.Names, cfg.Admin.Names) {
		warn("admin.names")
	}
	if !reflect.DeepEqual(old.Notify, cfg.Notify) {
		warn("notify")
	}
	if !reflect.DeepEqual(old.Firewall, cfg.Firewall) {
		warn("firewall")
	}
	if !reflect.DeepEqual(old.Fleet, cfg.Fleet) {
		warn("fleet")
	}
	if !slices.Equal(old.Allow, cfg.Allow) || !slices.Equal(old.TrustedProxies, cfg.TrustedProxies) {
		// The ban list refuses bans of allowed clients and trusted
		// proxies; jails already use the new list for counting.
		warn("allow and trusted_proxies (for manual and fleet bans)")
	}
	ol, nl := old.Limits, cfg.Limits
	if ol.ReadHeaderTimeout != nl.ReadHeaderTimeout || ol.IdleTimeout != nl.IdleTimeout || ol.MaxHeaderBytes != nl.MaxHeaderBytes ||
		ol.ConnsPerIP != nl.ConnsPerIP || ol.H2MaxStreams != nl.H2MaxStreams {
		warn("limits (server timeouts, header size, conns_per_ip, h2_max_streams)")
	}
}

// watch reloads the config when the file's content changes. It polls, so
// it follows editors that replace the file and config management that
// rewrites it in place alike, and needs no inotify watch.
func (s *Server) watch(ctx context.Context) {
	t := time.NewTicker(s.opts.WatchInterval)
	defer t.Stop()
	var last filever.Version
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, err := filever.Stat(s.opts.ConfigPath)
		if err != nil {
			continue // mid-replace, or removed: keep serving, look again
		}
		if v.Same(last) {
			continue
		}
		last = v
		data, err := os.ReadFile(s.opts.ConfigPath)
		if err != nil {
			continue
		}
		s.reloadMu.Lock()
		same := sha256.Sum256(data) == s.cfgSum
		s.reloadMu.Unlock()
		if same {
			continue
		}
		s.log.Info("config file changed; reloading", "path", s.opts.ConfigPath)
		// Reload logs its own failure.
		_ = s.Reload()
	}
}

// htpasswdPoll is how often htpasswd files are checked for changes: a
// stat per file, so users added or removed take effect within a second.
const htpasswdPoll = time.Second

// watchHtpasswd reloads the htpasswd files of the current generation when
// they change on disk. A broken file keeps the previous users; its error
// is logged once, not every poll.
func (s *Server) watchHtpasswd(ctx context.Context) {
	t := time.NewTicker(htpasswdPoll)
	defer t.Stop()
	lastErr := map[credsKey]string{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for key, c := range s.current.Load().creds {
			loaded, err := c.Refresh()
			switch {
			case err != nil && lastErr[key] != err.Error():
				lastErr[key] = err.Error()
				s.log.Error("htpasswd reload failed; the previous users stay", "path", key.path, "error", err)
			case err == nil && loaded:
				delete(lastErr, key)
				s.log.Info("htpasswd reloaded", "path", key.path)
			}
		}
	}
}

// persistBan makes a manual ban durable before the admin API answers.
// Without a state_dir bans live in memory only.
func (s *Server) persistBan(b rules.Ban) error {
	if s.store == nil {
		return nil
	}
	if s.fleet != nil {
		return s.persistFleetBan(b)
	}
	return s.store.Put(b)
}

// unpersistBan makes a manual unban durable before the admin API answers.
func (s *Server) unpersistBan(p netip.Prefix) error {
	if s.store == nil {
		return nil
	}
	if s.fleet != nil {
		return s.unpersistFleetBan(p)
	}
	return s.store.Delete(p)
}

// openStore opens state_dir/bans.db and puts the saved bans back on the
// ban list, before anything can ban or serve.
func (s *Server) openStore(cfg *config.File, named []netip.Prefix) error {
	if cfg.StateDir == "" {
		s.log.Warn("no state_dir: bans are kept in memory only and lost on restart")
		return nil
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	st, err := store.Open(store.StoreConfig{Path: filepath.Join(cfg.StateDir, "bans.db"), Forget: maxForget(cfg)}, s.log.With("component", "store"))
	if err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	active, _, err := st.Load(time.Now())
	if err != nil {
		st.Close()
		return fmt.Errorf("state_dir: load bans: %w", err)
	}
	for _, b := range active {
		if _, err := s.bans.Ban(b); err != nil {
			s.restoreAround(b, err, neverBanned(cfg, named))
		}
	}
	s.store = st
	s.log.Info("bans restored", "path", filepath.Join(cfg.StateDir, "bans.db"), "active", len(active))
	return nil
}

// restoreAround handles a saved ban the ban list refused with err. A
// jail's network ban (an escalation) that now holds an allowed address
// had replaced its members' bans; it is put back as the pieces of the
// network outside allow, so allow wins and the attackers stay banned.
func (s *Server) restoreAround(b rules.Ban, err error, allow []netip.Prefix) {
	if !errors.Is(err, rules.ErrAllowed) || b.Jail == "" {
		s.log.Warn("saved ban not restored", "prefix", b.Prefix, "error", err)
		return
	}
	pieces, ok := rules.SplitAround(b.Prefix, allow)
	if !ok {
		s.log.Warn("saved ban not restored: it holds too many allowed addresses to ban around them", "prefix", b.Prefix, "error", err)
		return
	}
	n := 0
	for _, p := range pieces {
		piece := b
		piece.Prefix = p
		if _, err := s.bans.Ban(piece); err == nil {
			n++
		}
	}
	s.log.Warn("saved ban restored around the allow list", "prefix", b.Prefix, "jail", b.Jail, "pieces", n)
}

// restoreHistory gives new jails the ban history kept in the store, so a
// repeat offender's bans keep growing across restarts and reloads.
func (s *Server) restoreHistory(j *rules.Jails) {
	if s.store == nil {
		return
	}
	active, history, err := s.store.Load(time.Now())
	if err != nil {
		s.log.Warn("ban history not restored", "error", err)
		return
	}
	for _, h := range slices.Concat(history, active) {
		j.RestoreHistory(h)
	}
}

func (s *Server) closeStore() {
	if s.store == nil {
		return
	}
	if err := s.store.Close(); err != nil {
		s.log.Warn("close ban store", "error", err)
	}
}

// maxForget is the longest forget window of the configured jails, which
// the store keeps ban history for.
func maxForget(cfg *config.File) time.Duration {
	d := 7 * 24 * time.Hour
	for _, j := range cfg.Jails {
		d = max(d, j.Forget.D())
	}
	return d
}

// loopback is never dropped by the kernel firewall: local tools, health
// checks and the admin listener's usual peers live there.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// openFirewall sets up kernel ban sync. A backend that cannot be had
// (tools missing, auto finding none) is logged and bans stay in memory:
// the gateway keeps serving and refusing banned clients either way.
func (s *Server) openFirewall(cfg *config.File, named []netip.Prefix) error {
	fw := cfg.Firewall
	if fw.Backend == "none" {
		return nil
	}
	log := s.log.With("component", "firewall")
	ports := make([]uint16, len(fw.Ports))
	for i, p := range fw.Ports {
		ports[i] = uint16(p)
	}
	// The firewall package names itself in its log lines.
	backend, err := firewall.New(firewall.Config{Backend: fw.Backend, Ports: ports, Log: s.log})
	if err != nil {
		log.Error("kernel firewall unavailable; bans are enforced in memory only", "backend", fw.Backend, "error", err)
		return nil
	}
	r, err := firewall.NewReconciler(firewall.ReconcilerConfig{
		Backend:    backend,
		Bans:       s.bans,
		Interval:   fw.Reconcile.D(),
		Allow:      append(neverBanned(cfg, named), loopback...),
		Log:        s.log,
		Registerer: s.metrics.reg,
	})
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	log.Info("kernel firewall on", "backend", backend.Name(), "ports", fw.Ports, "reconcile_seconds", fw.Reconcile.D().Seconds())
	s.firewall = r
	s.feeds.useKernel(backend, ports, s.log)
	return nil
}
