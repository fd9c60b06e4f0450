package proxy

import (
	"context"
	"fmt"
	"path/filepath"

	"gatehouse/proxy/privdrop"
)

// firewallBackend names the kernel firewall backend in use, for
// privdrop.Keep: "" when none is on. "auto" is resolved by asking the
// reconciler which backend it chose; should that fail, "auto" is
// returned and the ipset backend's capabilities are kept, as auto may
// have fallen back to it.
func (s *Server) firewallBackend(ctx context.Context) string {
	if s.firewall == nil {
		return ""
	}
	backend := s.current.Load().cfg.Firewall.Backend
	if backend == "auto" {
		if st, err := s.firewall.Status(ctx); err == nil {
			backend = st.Backend
		}
	}
	return backend
}

// dropPrivileges switches the process to s.opts.RunAs, if set, keeping
// only the capabilities the kernel firewall needs. Run calls it once
// every listener is bound and before anything is served; an error means
// the process may be half switched and must not serve.
func (s *Server) dropPrivileges(ctx context.Context) error {
	c := s.opts.RunAs
	if c == nil {
		return nil
	}
	keep := privdrop.Keep(s.firewallBackend(ctx))
	if err := s.certs.HandOver(c.UID, c.GID); err != nil {
		return fmt.Errorf("hand state_dir/certs to user %s: %w", c.User, err)
	}
	if err := s.sinks.HandOver(c.UID, c.GID); err != nil {
		return fmt.Errorf("hand the access log files to user %s: %w", c.User, err)
	}
	if err := privdrop.Switch(*c, keep); err != nil {
		return fmt.Errorf("switch to user %s: %w", c.User, err)
	}
	s.log.Info("switched user", "user", c.User, "uid", c.UID, "gid", c.GID, "capabilities", privdrop.Names(keep))
	// bans.db is open already; new files in state_dir (certificates)
	// and reloaded files need the new user's access.
	if dir := s.current.Load().cfg.StateDir; dir != "" && !privdrop.Writable(dir) {
		s.log.Warn("state_dir is not writable by the user gatehouse switched to; make it theirs (chown)",
			"path", dir, "user", c.User)
	}
	// A log file moved away by logrotate (without create) is made again
	// by the reopen that follows, which needs its directory.
	for _, p := range s.current.Load().logPaths {
		if p != "" && p != "-" && !privdrop.Writable(filepath.Dir(p)) {
			s.log.Warn("an access log's directory is not writable by the user gatehouse switched to; logrotate must recreate the file for it (create … USER) or the directory be theirs",
				"path", p, "user", c.User)
		}
	}
	return nil
}
