package privdrop

import (
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

// Capability is a Linux capability number (linux/capability.h).
type Capability uint

// The capabilities a switched gateway may keep.
const (
	CapNetAdmin Capability = 12
	CapNetRaw   Capability = 13
)

func (c Capability) String() string {
	switch c {
	case CapNetAdmin:
		return "cap_net_admin"
	case CapNetRaw:
		return "cap_net_raw"
	}
	return "cap_" + strconv.FormatUint(uint64(c), 10)
}

// Names lists keep for a log line: "none" or names joined by
// commas.
func Names(keep []Capability) string {
	if len(keep) == 0 {
		return "none"
	}
	names := make([]string, len(keep))
	for i, c := range keep {
		names[i] = c.String()
	}
	return strings.Join(names, ",")
}

// Keep returns the capabilities the gateway needs after the switch for
// the kernel firewall backend in use (see the package comment): none
// without one (""), CAP_NET_ADMIN for nftables and iptables, and
// CAP_NET_RAW as well for ipset and for a backend not known here (an
// unresolved "auto" may have fallen back to ipset).
func Keep(backend string) []Capability {
	switch backend {
	case "":
		return nil
	case "nftables", "iptables":
		return []Capability{CapNetAdmin}
	}
	return []Capability{CapNetAdmin, CapNetRaw}
}
