package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Host names a log line blames are looked up only with watch[].resolve.
// The name is the attacker's choice (sshd logs the reverse name of the
// client with UseDNS), and so is how slowly it resolves: answers are
// cached, lookups are few per second, and each is bounded in time.
const (
	// resolveTimeout bounds one lookup.
	resolveTimeout = 2 * time.Second
	// resolveTTL is how long an answer, found or not, is kept.
	resolveTTL = 5 * time.Minute
	// maxResolved bounds the names kept; a full cache starts over.
	maxResolved = 4096
	// maxResolvedAddrs bounds the addresses taken from one answer.
	maxResolvedAddrs = 8
	// resolveRate and resolveBurst bound the lookups of new names per
	// second: a line over them is not resolved.
	resolveRate  = 10
	resolveBurst = 20
)

// hostResolver looks host names up for serve's watcher and for rules
// test, the same way. Safe for concurrent use.
type hostResolver struct {
	lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)
	now    func() time.Time
	limit  *rate.Limiter

	mu    sync.Mutex
	cache map[string]resolvedName
}

type resolvedName struct {
	addrs []netip.Addr
	at    time.Time
}

// errResolveBusy: more new names than resolveRate allows.
var errResolveBusy = errors.New("too many host names to look up; not resolved")

func newHostResolver() *hostResolver {
	return &hostResolver{
		lookup: net.DefaultResolver.LookupNetIP,
		now:    time.Now,
		limit:  rate.NewLimiter(resolveRate, resolveBurst),
		cache:  map[string]resolvedName{},
	}
}

// resolve returns the addresses of name (zone-less, IPv4-mapped ones
// folded, at most maxResolvedAddrs), nil when it has none. err is
// errResolveBusy over the rate, or the lookup's error other than "not
// found".
func (r *hostResolver) resolve(ctx context.Context, name string) ([]netip.Addr, error) {
	now := r.now()
	r.mu.Lock()
	if c, ok := r.cache[name]; ok && now.Sub(c.at) < resolveTTL {
		r.mu.Unlock()
		return c.addrs, nil
	}
	r.mu.Unlock()
	if !r.limit.AllowN(now, 1) {
		return nil, errResolveBusy
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := r.lookup(ctx, "ip", name)
	var dnsErr *net.DNSError
	if err != nil && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		return nil, err
	}
	addrs = addrs[:min(len(addrs), maxResolvedAddrs)]
	for i, a := range addrs {
		addrs[i] = a.Unmap().WithZone("")
	}
	r.mu.Lock()
	if len(r.cache) >= maxResolved {
		clear(r.cache)
	}
	r.cache[name] = resolvedName{addrs, now}
	r.mu.Unlock()
	return addrs, nil
}
