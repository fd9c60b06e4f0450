package firewall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"sync"
)

// Blocklist feeds in the kernel: one set per feed and family, dropped like
// bans (raw PREROUTING, limited to the backend's Config.Ports), with an
// exempt set (the config's allow list and trusted proxies) that always
// wins over every feed. Names of the kernel objects, fixed from the feed
// name so that `gatehouse firewall status|flush` find them:
//
//	ipset     sets gatehouse-f4-NAME, gatehouse-f6-NAME (hash:net, no timeouts),
//	          gatehouse-x4, gatehouse-x6 (the exempt prefixes), and, for a moment
//	          during a swap, gatehouse-t4-NAME, gatehouse-t6-NAME (gatehouse-x4t,
//	          gatehouse-x6t for the exempt sets); one rule per feed and
//	          family in iptables/ip6tables -t raw PREROUTING:
//	          [-p tcp -m multiport --dports P] -m set --match-set gatehouse-f4-NAME src
//	                                           -m set ! --match-set gatehouse-x4 src -j DROP
//	nftables  in table inet gatehouse: interval sets feed4_NAME, feed6_NAME, exempt4,
//	          exempt6 (no timeouts) and the base chain feeds (hook prerouting,
//	          priority raw): ip saddr @exempt4 return, ip6 saddr @exempt6 return,
//	          then one drop rule per feed and family
const (
	// IPSetExempt4 and IPSetExempt6 are the ipset backend's exempt sets.
	IPSetExempt4 = "gatehouse-x4"
	IPSetExempt6 = "gatehouse-x6"
	// NFTExempt4 and NFTExempt6 are the nftables backend's exempt sets,
	// and NFTFeedChain its base chain of feed rules, in table NFTTable.
	NFTExempt4   = "exempt4"
	NFTExempt6   = "exempt6"
	NFTFeedChain = "feeds"

	ipsetFeedPrefix4 = "gatehouse-f4-"
	ipsetFeedPrefix6 = "gatehouse-f6-"
	ipsetFeedTmp4    = "gatehouse-t4-"
	ipsetFeedTmp6    = "gatehouse-t6-"
	nftFeedPrefix4   = "feed4_"
	nftFeedPrefix6   = "feed6_"
)

// MaxFeedPrefixes bounds a feed, per family, after inner prefixes are
// dropped: two and a half times the 100,000 of the largest public
// lists. An
// nftables feed is replaced in one netlink batch, which must fit in the
// socket's send buffer (nftFeedSockBuf).
const MaxFeedPrefixes = 1 << 18

const (
	maxFeedNameLen     = 16
	minFeedSetSize     = 1 << 17 // the least maxelem of an ipset feed set
	maxExemptPrefixes  = 1 << 16
	ipsetExemptMaxElem = maxExemptPrefixes
)

// ErrFeedsUnsupported is wrapped by NewFeeds for a backend that keeps no
// feed sets (iptables: one rule per prefix would make every packet walk
// 100,000 rules). The caller then enforces feeds in memory only (the
// HTTP path) and says so once.
var ErrFeedsUnsupported = errors.New("kernel feed sets need the ipset or nftables backend")

// FeedStatus is what the kernel holds for one feed.
type FeedStatus struct {
	// Name is the feed's name.
	Name string
	// IPv4 and IPv6 count the prefixes of its sets (without those
	// inside another): for ipset the sets' entries as the kernel counts
	// them, for nftables the counts gatehouse wrote in the comments of
	// the feed's rules in the same transaction as the sets (the sets
	// hold merged ranges, and dumping them costs seconds).
	IPv4, IPv6 int
}

// feedKernel is the kernel I/O of feeds; the ipset and nftables backends
// implement it. v4 and v6 are canonical, sorted and without prefixes
// inside others.
type feedKernel interface {
	// setFeed creates or replaces the feed's sets so that no packet
	// sees a moment with neither the old nor the new content.
	setFeed(ctx context.Context, name string, v4, v6 []netip.Prefix) error
	// removeFeed deletes the feed's rules and sets; absent is fine.
	removeFeed(ctx context.Context, name string) error
	// setExempt replaces the exempt sets.
	setExempt(ctx context.Context, v4, v6 []netip.Prefix) error
	// feeds lists the feeds the kernel holds, with their prefix counts
	// when counts is set.
	feeds(ctx context.Context, counts bool) ([]FeedStatus, error)
}

// FeedsConfig configures Feeds.
type FeedsConfig struct {
	// Backend is the kernel firewall (from New) whose objects the feed
	// sets join: its ports, namespace and Remove apply to them too.
	// Required; ipset or nftables.
	Backend Backend
	// Log receives feed set changes; nil discards.
	Log *slog.Logger
}

// Feeds keeps blocklist feeds in the kernel, one set per feed and family,
// beside a Backend's ban sets. It is told what to hold (SetFeed,
// RemoveFeed, SetExempt, Prune) and holds it until told otherwise: feed
// sets have no timeouts and stay when gatehouse stops, like bans; the next
// start replaces them, and Prune removes those no longer configured.
// Safe for concurrent use: operations take turns.
type Feeds struct {
	k   feedKernel
	log *slog.Logger
	mu  sync.Mutex
}

// NewFeeds returns Feeds over cfg.Backend. It touches no kernel object.
// A backend without feed sets (iptables) is an error wrapping
// ErrFeedsUnsupported.
func NewFeeds(cfg FeedsConfig) (*Feeds, error) {
	if cfg.Backend == nil {
		return nil, errors.New("firewall feeds: no backend")
	}
	k, ok := cfg.Backend.(feedKernel)
	if !ok {
		return nil, fmt.Errorf("firewall feeds: backend %s: %w", cfg.Backend.Name(), ErrFeedsUnsupported)
	}
	return &Feeds{k: k, log: discard(cfg.Log).With("component", "firewall", "backend", cfg.Backend.Name())}, nil
}

// ValidFeedName checks a feed name: 1 to 16 of a-z, 0-9, '_' and '-'.
func ValidFeedName(name string) error {
	if name == "" || len(name) > maxFeedNameLen {
		return fmt.Errorf("feed name %q: want 1 to %d characters", name, maxFeedNameLen)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("feed name %q: %q is not one of a-z, 0-9, _ and -", name, c)
		}
	}
	return nil
}

// SetFeed creates the kernel sets of feed name holding prefixes, or
// replaces their content atomically: a packet from a prefix in both the
// old and the new content is dropped at every moment. Prefixes are
// masked, IPv4-mapped IPv6 ones taken as IPv4, and those inside another
// one of the list dropped; /0 and invalid prefixes are an error, as is a
// family with more than MaxFeedPrefixes. An empty list leaves empty sets
// (use RemoveFeed to remove the feed).
func (f *Feeds) SetFeed(ctx context.Context, name string, prefixes []netip.Prefix) error {
	if err := ValidFeedName(name); err != nil {
		return fmt.Errorf("firewall feed: %w", err)
	}
	v4, v6, err := splitPrefixes(prefixes, MaxFeedPrefixes)
	if err != nil {
		return fmt.Errorf("firewall feed %s: %w", name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.k.setFeed(ctx, name, v4, v6); err != nil {
		return fmt.Errorf("firewall feed %s: %w", name, err)
	}
	f.log.Info("firewall feed set", "feed", name, "ipv4", len(v4), "ipv6", len(v6))
	return nil
}

// RemoveFeed deletes feed name's rules and sets. Removing an absent feed
// is not an error.
func (f *Feeds) RemoveFeed(ctx context.Context, name string) error {
	if err := ValidFeedName(name); err != nil {
		return fmt.Errorf("firewall feed: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.k.removeFeed(ctx, name); err != nil {
		return fmt.Errorf("firewall feed %s: remove: %w", name, err)
	}
	return nil
}

// SetExempt replaces the exempt prefixes (the allow list and trusted
// proxies): a packet from one of them is never dropped by a feed, whatever
// the feeds hold. It does not affect bans (the Reconciler keeps
// allow-listed bans out of the kernel itself).
func (f *Feeds) SetExempt(ctx context.Context, prefixes []netip.Prefix) error {
	v4, v6, err := splitPrefixes(prefixes, maxExemptPrefixes)
	if err != nil {
		return fmt.Errorf("firewall feed exempt: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.k.setExempt(ctx, v4, v6); err != nil {
		return fmt.Errorf("firewall feed exempt: %w", err)
	}
	return nil
}

// Prune removes the kernel feeds whose names are not in keep: feeds
// removed from the config while gatehouse was stopped or before a
// reload. It returns the names it removed.
func (f *Feeds) Prune(ctx context.Context, keep []string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	have, err := f.k.feeds(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("firewall feeds: list: %w", err)
	}
	var removed []string
	var errs []error
	for _, fs := range have {
		if slices.Contains(keep, fs.Name) {
			continue
		}
		if err := f.k.removeFeed(ctx, fs.Name); err != nil {
			errs = append(errs, fmt.Errorf("firewall feed %s: remove: %w", fs.Name, err))
			continue
		}
		removed = append(removed, fs.Name)
		f.log.Info("firewall feed removed: no longer configured", "feed", fs.Name)
	}
	return removed, errors.Join(errs...)
}

// Status lists the feeds the kernel holds with their entry counts, by
// name.
func (f *Feeds) Status(ctx context.Context) ([]FeedStatus, error) {
	return readFeeds(ctx, f.k)
}

func readFeeds(ctx context.Context, k feedKernel) ([]FeedStatus, error) {
	fs, err := k.feeds(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("firewall feeds: list: %w", err)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	return fs, nil
}

// splitPrefixes returns ps by family, canonical, sorted, without
// duplicates or prefixes inside another of the list.
func splitPrefixes(ps []netip.Prefix, limit int) (v4, v6 []netip.Prefix, err error) {
	for _, p := range ps {
		if !p.IsValid() {
			return nil, nil, fmt.Errorf("invalid prefix %s", p)
		}
		a := p.Addr()
		bits := p.Bits()
		if a.Is4In6() {
			if bits < 96 {
				return nil, nil, fmt.Errorf("prefix %s: an IPv4-mapped prefix shorter than /96", p)
			}
			a, bits = a.Unmap(), bits-96
		}
		if bits == 0 {
			return nil, nil, fmt.Errorf("prefix %s: a feed never drops a whole family", p)
		}
		q := netip.PrefixFrom(a.WithZone(""), bits).Masked()
		if q.Addr().Is4() {
			v4 = append(v4, q)
		} else {
			v6 = append(v6, q)
		}
	}
	v4, v6 = outermost(v4), outermost(v6)
	if len(v4) > limit || len(v6) > limit {
		return nil, nil, fmt.Errorf("%d IPv4 and %d IPv6 prefixes: at most %d per family", len(v4), len(v6), limit)
	}
	return v4, v6, nil
}

// outermost sorts ps and drops duplicates and prefixes inside another.
// Sorted by address, then length, a prefix inside another comes after it
// and before the next prefix that is not inside it.
func outermost(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, comparePrefix)
	out := ps[:0]
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Bits() <= p.Bits() && out[n-1].Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return out
}
