package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/middleware"
	"gatehouse/proxy/config"
	"gatehouse/proxy/ui"
	"gatehouse/rules"
	"gatehouse/rules/fleet"
)

// Fleet mode (the fleet block): the Server gets a fleet.Fleet that syncs
// its ban list through Redis, shares the offences of fleet.share_jails,
// and receives the admin API's bans and unbans through the store's
// outbox. Without the block none of this runs. Changing the block needs
// a restart.

// redisOptions maps the fleet block to go-redis options: the URL's
// address, database and ACL user, the password from its secret, and TLS
// (rediss) always verified, against ca_root as well as the system roots.
func redisOptions(fl *config.Fleet) (*redis.Options, error) {
	o, err := redis.ParseURL(fl.Redis)
	if err != nil {
		// Validation checked the URL; this is a safety net. The URL holds
		// no password (validation refuses one), but say nothing of it.
		return nil, errors.New("fleet.redis: not a Redis URL")
	}
	o.Password = fl.Password.Value()
	if o.TLSConfig != nil {
		o.TLSConfig.MinVersion = tls.VersionTLS12
		if fl.CARoot != "" {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			pem, err := os.ReadFile(fl.CARoot)
			if err != nil {
				return nil, fmt.Errorf("fleet.ca_root: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("fleet.ca_root: %s holds no PEM certificate", fl.CARoot)
			}
			o.TLSConfig.RootCAs = pool
		}
	}
	o.DialTimeout = 2 * time.Second
	o.ReadTimeout = 3 * time.Second
	o.WriteTimeout = 3 * time.Second
	o.ContextTimeoutEnabled = true
	// The fleet retries on its own, with backoff; a command that fails
	// must say so at once, so that offences are counted locally.
	o.MaxRetries = -1
	// No CLIENT SETINFO on connect: one command less for the ACL user
	// to be granted, and Redis before 7.2 does not know it.
	o.DisableIdentity = true
	return o, nil
}

// NewRedisClient returns a client of the fleet's Redis, for `gatehouse
// fleet status`. The caller closes it.
func NewRedisClient(fl *config.Fleet) (*redis.Client, error) {
	o, err := redisOptions(fl)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(o), nil
}

// openFleet builds the fleet worker when the config has a fleet block.
// It contacts nobody: Run starts it, and a Redis that is down is retried.
func (s *Server) openFleet(cfg *config.File) error {
	fl := cfg.Fleet
	if fl == nil {
		return nil
	}
	if s.store == nil {
		return errors.New("fleet: needs state_dir for its outbox")
	}
	o, err := redisOptions(fl)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(o)
	f, err := fleet.New(fleet.Config{
		Redis:   rdb,
		Prefix:  fl.Prefix,
		Node:    fl.Node,
		Bans:    s.bans,
		Journal: s.store,
		History: func(b rules.Ban) {
			if rt := s.current.Load(); rt != nil {
				rt.jails.RestoreHistory(b)
			}
		},
		Registerer: s.metrics.reg,
		Log:        s.log,
	})
	if err != nil {
		rdb.Close()
		return err
	}
	s.fleet, s.redis = f, rdb
	s.log.Info("fleet mode on", "node", fl.Node, "prefix", fl.Prefix, "share_jails", fl.ShareJails, "certificates", fl.Certificates)
	return nil
}

// sharedJails returns what the jails of cfg need to count the offences
// of fleet.share_jails in Redis; nothing without a fleet.
func (s *Server) sharedJails(cfg *config.File) ([]string, rules.OffenceSharer) {
	if s.fleet == nil || cfg.Fleet == nil || len(cfg.Fleet.ShareJails) == 0 {
		return nil, nil
	}
	return cfg.Fleet.ShareJails, s.fleet
}

// runFleet runs the fleet worker until ctx is done, then closes its Redis
// client. The caller owns the goroutine.
func (s *Server) runFleet(ctx context.Context) {
	if err := s.fleet.Run(ctx); err != nil {
		s.log.Error("fleet sync stopped", "error", err)
	}
	if err := s.redis.Close(); err != nil {
		s.log.Debug("close fleet redis client", "error", err)
	}
}

// persistFleetBan is persistBan in fleet mode: the ban, its history and
// its outbox entry in one transaction, then a push.
func (s *Server) persistFleetBan(b rules.Ban) error {
	if err := s.store.PutQueued(b); err != nil {
		return err
	}
	s.fleet.Kick()
	return nil
}

// unpersistFleetBan is unpersistBan in fleet mode.
func (s *Server) unpersistFleetBan(p netip.Prefix) error {
	if err := s.store.DeleteQueued(p, time.Now()); err != nil {
		return err
	}
	s.fleet.Kick()
	return nil
}

// fleetStatus feeds the dashboard's fleet panel (ui.FleetSource): this
// node, whether Redis is reachable, and the nodes seen in the fleet. It
// asks Redis with a short timeout, so a slow Redis never holds up a page.
type fleetStatus struct {
	s      *Server
	node   string
	prefix string
}

var _ ui.FleetSource = fleetStatus{}

// FleetStatus implements ui.FleetSource.
func (f fleetStatus) FleetStatus() ui.FleetStatus {
	st := ui.FleetStatus{Node: f.node, Connected: f.s.fleet.Up()}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	status, err := fleet.ReadStatus(ctx, f.s.redis, f.prefix)
	if err != nil {
		st.LastError = err.Error()
		return st
	}
	st.Nodes = len(status.Nodes)
	return st
}

// fleetSource returns the dashboard's fleet source, nil without fleet mode.
func (s *Server) fleetSource(cfg *config.File) ui.FleetSource {
	if s.fleet == nil || cfg.Fleet == nil {
		return nil
	}
	return fleetStatus{s: s, node: cfg.Fleet.Node, prefix: cfg.Fleet.Prefix}
}

// certRedis opens the Redis client certmagic keeps the fleet's
// certificates in, with fleet.certificates; nil otherwise.
func certRedis(cfg *config.File) (*redis.Client, error) {
	if cfg.Fleet == nil || !cfg.Fleet.Certificates {
		return nil, nil
	}
	o, err := redisOptions(cfg.Fleet)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(o), nil
}

// sharedLimit returns the fleet's side of limits.rates.NAME with
// shared: true, for middleware.LimitConfig.Shared; nil without a fleet
// (the limit is then per node).
func (s *Server) sharedLimit(name string) middleware.SharedLimit {
	if s.fleet == nil {
		return nil
	}
	return s.fleet.Limit(name)
}
