package proxy

// Privilege drop for starts outside systemd (a shell, a container's
// entrypoint): `gatehouse serve --user NAME` is started as root, binds its
// listeners and opens the kernel firewall, then becomes NAME and keeps
// only the capabilities it still needs:
//
//   - CAP_NET_ADMIN while a firewall backend is on, because the
//     reconciler changes the kernel sets for as long as the gateway runs
//     (in-process netlink for nftables, and the ipset and iptables tools,
//     which inherit it through the ambient set);
//   - CAP_NET_RAW too for the ipset backend: its iptables rule matches
//     the set through libxt_set, which looks the set up over a raw socket
//     (iptables-restore: "Can't open socket to ipset" without it). The
//     iptables backend needs the nf_tables iptables (Debian's default):
//     iptables-legacy would want a raw socket and root's lock file;
//   - never CAP_NET_BIND_SERVICE: listeners are bound once, before the
//     switch, and a reload keeps them (a changed listen address takes a
//     restart, see warnRestartOnly), so nothing binds a port afterwards.
//
// Everything else is dropped from the permitted, effective, inheritable,
// ambient and bounding sets, and no_new_privs is set, so neither the
// gateway nor a tool it runs can regain privilege. Under systemd none of
// this runs: configs/gatehouse.service starts gatehouse as its own user
// with the capabilities granted by the unit.

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// Credential is the account the gateway switches to once its listeners
// are bound (serve --user NAME).
type Credential struct {
	// User is the account's name as given, for logs.
	User string
	// UID and GID are the account's user and primary group IDs.
	UID, GID int
	// Groups are the supplementary groups: every group of the account in
	// the group database, its primary group included, as initgroups(3)
	// would set them.
	Groups []int
}

// ErrRunAsRoot is returned by ResolveRunAs when the gateway would keep
// running as root without --allow-root.
var ErrRunAsRoot = errors.New("refusing to run as root")

// ResolveRunAs decides whom a gateway started with effective user ID euid
// runs as, from serve's --user NAME (name, "" for none) and --allow-root
// flags. It returns the credential to switch to, or nil when no switch is
// to be made: without --user when not root, as root with allowRoot, and
// when the process already runs as NAME. Running as root without
// allowRoot (no --user, or a --user that is root) is an error wrapping
// ErrRunAsRoot whose text says what to do instead. Switching to a user
// other than the current one needs root; an unknown user is an error too.
func ResolveRunAs(name string, allowRoot bool, euid int) (*Credential, error) {
	if name == "" {
		if euid == 0 && !allowRoot {
			return nil, fmt.Errorf("%w: start gatehouse as an unprivileged user with CAP_NET_BIND_SERVICE "+
				"(see configs/gatehouse.service), or pass --user NAME to switch to NAME once the listeners are bound, "+
				"or --allow-root to run as root anyway", ErrRunAsRoot)
		}
		return nil, nil
	}
	c, err := LookupCredential(name)
	if err != nil {
		return nil, err
	}
	switch {
	case c.UID == 0 && !allowRoot:
		return nil, fmt.Errorf("%w: --user %s is root; name an unprivileged user, or add --allow-root", ErrRunAsRoot, name)
	case c.UID == euid:
		return nil, nil // already running as that user
	case euid != 0:
		return nil, fmt.Errorf("--user %s: switching to uid %d needs root, and gatehouse runs as uid %d", name, c.UID, euid)
	}
	return &c, nil
}

// LookupCredential finds an account in the user and group databases by
// name, or by numeric user ID when no account has that name.
func LookupCredential(name string) (Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if _, nerr := strconv.Atoi(name); nerr != nil || !errors.As(err, &unknown) {
			return Credential{}, fmt.Errorf("--user %s: %w", name, err)
		}
		if u, err = user.LookupId(name); err != nil {
			return Credential{}, fmt.Errorf("--user %s: %w", name, err)
		}
	}
	c := Credential{User: name}
	if c.UID, err = strconv.Atoi(u.Uid); err != nil {
		return Credential{}, fmt.Errorf("--user %s: uid %q: %w", name, u.Uid, err)
	}
	if c.GID, err = strconv.Atoi(u.Gid); err != nil {
		return Credential{}, fmt.Errorf("--user %s: gid %q: %w", name, u.Gid, err)
	}
	ids, err := u.GroupIds()
	if err != nil {
		return Credential{}, fmt.Errorf("--user %s: groups: %w", name, err)
	}
	for _, id := range ids {
		g, err := strconv.Atoi(id)
		if err != nil {
			return Credential{}, fmt.Errorf("--user %s: group id %q: %w", name, id, err)
		}
		c.Groups = append(c.Groups, g)
	}
	if !slices.Contains(c.Groups, c.GID) {
		c.Groups = append(c.Groups, c.GID)
	}
	slices.Sort(c.Groups)
	c.Groups = slices.Compact(c.Groups)
	return c, nil
}

// capability is a Linux capability number (linux/capability.h).
type capability uint

// The capabilities a switched gateway may keep.
const (
	capNetAdmin capability = 12
	capNetRaw   capability = 13
)

func (c capability) String() string {
	switch c {
	case capNetAdmin:
		return "cap_net_admin"
	case capNetRaw:
		return "cap_net_raw"
	}
	return "cap_" + strconv.FormatUint(uint64(c), 10)
}

// capabilityNames lists keep for a log line: "none" or names joined by
// commas.
func capabilityNames(keep []capability) string {
	if len(keep) == 0 {
		return "none"
	}
	names := make([]string, len(keep))
	for i, c := range keep {
		names[i] = c.String()
	}
	return strings.Join(names, ",")
}

// keptCapabilities returns what the gateway needs after the switch for
// the firewall backend in use (see the top of this file). "auto" is
// resolved by asking the reconciler which backend it chose; should that
// fail, the ipset backend's set is kept, as auto may have fallen back to
// it.
func (s *Server) keptCapabilities(ctx context.Context) []capability {
	if s.firewall == nil {
		return nil
	}
	backend := s.current.Load().cfg.Firewall.Backend
	if backend == "auto" {
		if st, err := s.firewall.Status(ctx); err == nil {
			backend = st.Backend
		}
	}
	switch backend {
	case "nftables", "iptables":
		return []capability{capNetAdmin}
	}
	return []capability{capNetAdmin, capNetRaw}
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
	keep := s.keptCapabilities(ctx)
	if err := s.tls.handOver(c.UID, c.GID); err != nil {
		return fmt.Errorf("hand state_dir/certs to user %s: %w", c.User, err)
	}
	if err := switchUser(*c, keep); err != nil {
		return fmt.Errorf("switch to user %s: %w", c.User, err)
	}
	s.log.Info("switched user", "user", c.User, "uid", c.UID, "gid", c.GID, "capabilities", capabilityNames(keep))
	// bans.db is open already; new files in state_dir (certificates)
	// and reloaded files need the new user's access.
	if dir := s.current.Load().cfg.StateDir; dir != "" && !writable(dir) {
		s.log.Warn("state_dir is not writable by the user gatehouse switched to; make it theirs (chown)",
			"path", dir, "user", c.User)
	}
	return nil
}
