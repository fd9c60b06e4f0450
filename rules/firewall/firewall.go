package firewall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// Names of the kernel objects gatehouse creates. They are fixed so that
// `gatehouse firewall flush` finds them after a restart, and so that an
// operator can tell them from everybody else's: gatehouse never touches
// an object with another name.
const (
	// IPSetName4 and IPSetName6 are the ipset backend's sets
	// (hash:net, family inet and inet6, with timeouts).
	IPSetName4 = "gatehouse4"
	IPSetName6 = "gatehouse6"
	// NFTTable is the nftables backend's table, of family inet; its sets
	// are NFTSet4 and NFTSet6 and its base chain NFTChain.
	NFTTable = "gatehouse"
	NFTSet4  = "ban4"
	NFTSet6  = "ban6"
	NFTChain = "prerouting"
	// IPTablesChain is the iptables backend's chain in the raw table of
	// iptables and ip6tables.
	IPTablesChain = "GATEHOUSE"
)

// MaxTimeout is the longest timeout a backend gives a kernel entry:
// ipset's limit (2^31-1 ms, in whole seconds: 24 days 20 hours), used
// for nftables too so that every backend behaves alike. A longer ban is
// pushed with MaxTimeout and refreshed by the Reconciler when less than
// half of it is left, so the kernel keeps dropping while gatehouse runs
// and for at least 12 days after it stops.
const MaxTimeout = 2147483 * time.Second

// maxSetSize is the maxelem of the ipset sets: rules.BanList holds at
// most 1,000,000 bans by default.
const maxSetSize = 1 << 20

// Entry is one banned prefix as the kernel holds it.
type Entry struct {
	// Prefix is the banned source prefix, masked; IPv4 prefixes are
	// IPv4 (never IPv4-mapped IPv6).
	Prefix netip.Prefix
	// Expires is when the kernel drops the entry by itself. In Apply
	// the backend turns it into a timeout (the time left, rounded up to
	// what the kernel can hold, at most MaxTimeout); an Expires already
	// past is not added. Zero means no kernel timeout: the entry stays
	// until it is deleted. List reports zero for entries without a
	// timeout, and always for the iptables backend, which has none.
	Expires time.Time
}

// Backend is the kernel I/O of one firewall implementation: it keeps
// gatehouse's own objects (sets, tables, chains, rules) and their entries,
// and touches nothing else. The Reconciler holds the policy; a backend
// only does what it is told, idempotently. Implementations are safe for
// concurrent use, though the Reconciler calls them from one goroutine.
type Backend interface {
	// Name is the backend's name: "ipset", "nftables" or "iptables".
	Name() string
	// Ensure creates the backend's objects where they are missing and
	// repairs them where they differ from what gatehouse creates (a
	// set of the wrong type, a rule with other ports); it leaves the
	// entries of sets that are right alone. It is cheap when nothing is
	// to be done.
	Ensure(ctx context.Context) error
	// List returns the entries the kernel holds in gatehouse's objects,
	// in no particular order. Missing objects hold no entries: List
	// returns an empty list for them, not an error.
	List(ctx context.Context) ([]Entry, error)
	// Apply deletes del and adds add. A prefix in both is replaced: its
	// timeout is renewed from its add entry. Adding a present entry
	// updates its timeout; deleting an absent one is not an error. Large
	// batches are cut in chunks; a chunk that fails is retried item by
	// item (ipset: resumed after the line it names), and the items that
	// still fail are reported together in the returned error (each an
	// *OpError naming the prefix; after 256 of them Apply gives up on the
	// rest), while the others are applied.
	Apply(ctx context.Context, add []Entry, del []netip.Prefix) error
	// Remove deletes every object the backend created, with the entries
	// in them, and nothing else. Removing what is not there is not an
	// error.
	Remove(ctx context.Context) error
}

// Config selects and configures a backend for New.
type Config struct {
	// Backend is "ipset", "nftables", "iptables" or "auto" (nftables if
	// the kernel answers, else ipset). "none" means no kernel firewall:
	// the caller does not call New then, and New refuses it.
	Backend string
	// Ports limits the drop to TCP connections to these destination
	// ports (the gateway's listeners). Empty: every packet from a banned
	// source is dropped.
	Ports []uint16
	// Log receives backend selection and repair messages; nil discards.
	Log *slog.Logger
	// NetNS names a network namespace, as `ip netns` does (a file in
	// /run/netns), in which the backend works instead of the current
	// one: for tests and containers. Shell-outs then run under
	// `ip netns exec NetNS`, and netlink sockets are opened inside it.
	// Empty: the namespace gatehouse runs in.
	NetNS string
}

// ErrNoPermission is wrapped by errors of kernel operations refused for
// lack of privilege: gatehouse needs CAP_NET_ADMIN (and root or the
// capability for the ipset/iptables tools) to change the firewall. The
// caller then says so once and keeps banning in memory.
var ErrNoPermission = errors.New("not permitted to change the kernel firewall (CAP_NET_ADMIN needed)")

// ErrUnavailable is wrapped by errors of New when the backend asked for
// cannot work on this host: its tools or kernel support are missing, or
// "auto" found no usable backend. The caller then runs with bans in
// memory only.
var ErrUnavailable = errors.New("kernel firewall backend unavailable")

// OpError is a failed kernel operation. It wraps ErrNoPermission when the
// kernel or the tool refused for lack of privilege.
type OpError struct {
	// Backend is the backend's name.
	Backend string
	// Op says what was done: "create set", "restore", "list", "netlink
	// batch".
	Op string
	// Object names what it was done to: "gatehouse4", "raw PREROUTING",
	// "inet gatehouse ban4 203.0.113.7/32".
	Object string
	// Stderr is what the tool printed on its standard error, trimmed;
	// empty for netlink operations.
	Stderr string
	// Err is the cause: an *exec.ExitError, a netlink error, ...
	Err error

	perm bool
}

// Error returns "backend: op object: cause: stderr".
func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString(e.Backend)
	b.WriteString(": ")
	b.WriteString(e.Op)
	if e.Object != "" {
		b.WriteString(" ")
		b.WriteString(e.Object)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Stderr != "" {
		b.WriteString(": ")
		b.WriteString(e.Stderr)
	}
	if e.perm {
		b.WriteString(" (")
		b.WriteString(ErrNoPermission.Error())
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the cause and, for a refusal for lack of privilege,
// ErrNoPermission.
func (e *OpError) Unwrap() []error {
	if e.perm {
		return []error{e.Err, ErrNoPermission}
	}
	return []error{e.Err}
}

// newOpError builds an OpError, marking it as a permission error when the
// cause is EPERM/EACCES or the tool's message says so (the tools exit 1
// or 2 whatever went wrong, so their text is all there is; they run under
// LC_ALL=C).
func newOpError(backend, op, object, stderr string, err error) *OpError {
	e := &OpError{Backend: backend, Op: op, Object: object, Stderr: stderr, Err: err}
	lower := strings.ToLower(stderr)
	e.perm = errors.Is(err, os.ErrPermission) ||
		strings.Contains(lower, "operation not permitted") ||
		strings.Contains(lower, "permission denied") ||
		strings.Contains(lower, "you must be root") ||
		strings.Contains(lower, "you need to be root")
	return e
}

// maxItemErrors bounds how many item errors Apply reports one by one; the
// rest are counted. After maxItemFailures failures Apply stops trying:
// the cause is no single item (a set of the wrong kind, say), and the
// next Ensure is the cure.
const (
	maxItemErrors   = 16
	maxItemFailures = 256
)

// itemErrors collects the failures of single items in an Apply.
type itemErrors struct {
	errs []error
	more int
}

func (ie *itemErrors) add(err error) {
	if len(ie.errs) < maxItemErrors {
		ie.errs = append(ie.errs, err)
		return
	}
	ie.more++
}

func (ie *itemErrors) n() int { return len(ie.errs) + ie.more }

func (ie *itemErrors) err() error {
	if ie.more > 0 {
		return errors.Join(append(ie.errs, fmt.Errorf("and %d more items failed", ie.more))...)
	}
	return errors.Join(ie.errs...)
}

// kernelTimeout returns the timeout to give an entry expiring at expires:
// the time left at now rounded up to unit (the kernel's granularity, so
// the entry never ends before the ban), at most MaxTimeout. ok is false
// when expires is not after now. A zero expires gives (0, true): no
// timeout.
func kernelTimeout(expires, now time.Time, unit time.Duration) (d time.Duration, ok bool) {
	if expires.IsZero() {
		return 0, true
	}
	left := expires.Sub(now)
	if left <= 0 {
		return 0, false
	}
	if left >= MaxTimeout {
		return MaxTimeout, true
	}
	if r := left % unit; r != 0 {
		left += unit - r
	}
	return min(left, MaxTimeout), true
}

// Status is what a backend's kernel objects hold, for
// `gatehouse firewall status`.
type Status struct {
	// Backend is the backend's name.
	Backend string
	// Entries are the kernel's entries, IPv4 first, in address order.
	Entries []Entry
	// IPv4 and IPv6 count Entries by family.
	IPv4, IPv6 int
	// Feeds are the blocklist feeds the kernel holds, by name, with
	// their entry counts; nil for a backend without feed sets.
	Feeds []FeedStatus

	// The fields below are filled by Reconciler.Status only.

	// Want counts the active bans that belong in the kernel (not on the
	// allow list, not inside a longer-lasting ban of a shorter prefix).
	Want int
	// Missing counts the bans of Want that the kernel does not hold.
	Missing int
	// Stale counts kernel entries that no active ban asks for.
	Stale int
	// LastPass is when the Reconciler last completed a full pass; zero
	// before the first.
	LastPass time.Time
	// LastError is the error of the Reconciler's last pass, nil if it
	// succeeded.
	LastError error
}

// ReadStatus lists what b's kernel objects hold. It changes nothing.
func ReadStatus(ctx context.Context, b Backend) (Status, error) {
	entries, err := b.List(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("firewall status: %w", err)
	}
	st := Status{Backend: b.Name(), Entries: entries}
	if k, ok := b.(feedKernel); ok {
		if st.Feeds, err = readFeeds(ctx, k); err != nil {
			return Status{}, fmt.Errorf("firewall status: %w", err)
		}
	}
	sortEntries(st.Entries)
	for _, e := range entries {
		if e.Prefix.Addr().Is4() {
			st.IPv4++
		} else {
			st.IPv6++
		}
	}
	return st, nil
}

// sortEntries orders entries IPv4 first, by address, then prefix length.
func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return comparePrefix(a.Prefix, b.Prefix) })
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// validPorts checks and normalises a port list: sorted, without
// duplicates, no port 0.
func validPorts(ports []uint16) ([]uint16, error) {
	out := slices.Clone(ports)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > 0 && out[0] == 0 {
		return nil, errors.New("firewall ports: port 0 is not a port")
	}
	return out, nil
}

// discard returns log, or a logger that drops everything when log is nil.
func discard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
