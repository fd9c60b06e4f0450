package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"gatehouse/rules"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// RateLimitConfig configures RateLimit: the flood jail.
type RateLimitConfig struct {
	// Rate is the sustained requests per second allowed per client.
	// Required (> 0).
	Rate float64
	// Burst is how many requests a client may send at once. Default:
	// twice Rate, at least 1.
	Burst int
	// Jail receives an offence per refused request. Required.
	Jail string
	// Allow lists clients never limited (the config's allow).
	Allow []netip.Prefix
	// IPv6Prefix is the length by which IPv6 clients share a limit.
	// Default 64.
	IPv6Prefix int
	// Capacity bounds the clients tracked; the least recently seen is
	// forgotten first. Default 100,000.
	Capacity int
}

// RateBuckets are the per-client token buckets of one flood jail: a
// bounded LRU, so a flood of addresses cannot exhaust memory. They outlive
// a reload that leaves the jail's rate, burst, IPv6 prefix and capacity
// alone (see NewRateBuckets), so a flooding client gets no fresh burst
// from a reload. Safe for concurrent use.
type RateBuckets struct {
	limit    rate.Limit
	burst    int
	v6bits   int
	capacity int
	cache    *lru.Cache[netip.Prefix, *rate.Limiter]
}

// NewRateBuckets returns the buckets for cfg (defaults applied): prev
// when prev was made for the same rate, burst, IPv6 prefix and capacity,
// else new, empty ones. prev nil: new ones.
func NewRateBuckets(cfg RateLimitConfig, prev *RateBuckets) (*RateBuckets, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &RateBuckets{limit: rate.Limit(cfg.Rate), burst: cfg.Burst, v6bits: cfg.IPv6Prefix, capacity: cfg.Capacity}
	if prev != nil && prev.limit == b.limit && prev.burst == b.burst && prev.v6bits == b.v6bits && prev.capacity == b.capacity {
		return prev, nil
	}
	if b.cache, err = lru.New[netip.Prefix, *rate.Limiter](cfg.Capacity); err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	return b, nil
}

// withDefaults validates c and applies its defaults.
func (c RateLimitConfig) withDefaults() (RateLimitConfig, error) {
	if c.Rate <= 0 {
		return c, fmt.Errorf("rate limit: rate %v must be greater than 0", c.Rate)
	}
	if c.Burst <= 0 {
		c.Burst = max(1, int(2*c.Rate))
	}
	if c.IPv6Prefix == 0 {
		c.IPv6Prefix = 64
	}
	if c.Capacity <= 0 {
		c.Capacity = 100_000
	}
	return c, nil
}

// RateLimit refuses a client's requests over its token bucket
// (golang.org/x/time/rate) with 429 and a Retry-After, and reports each
// refusal to the jail, which bans a client that keeps flooding. buckets
// holds the clients' buckets (NewRateBuckets for the same cfg); nil: new
// ones. It needs the Scope's client IP.
func RateLimit(cfg RateLimitConfig, buckets *RateBuckets, jails *rules.Jails, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Jail == "" || jails == nil {
		return nil, errors.New("rate limit: no jail")
	}
	if buckets == nil {
		if buckets, err = NewRateBuckets(cfg, nil); err != nil {
			return nil, err
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limiters, limit, burst := buckets.cache, buckets.limit, buckets.burst
	retryAfter := []string{strconv.Itoa(max(1, int(time.Second.Seconds()/cfg.Rate+0.999)))}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := ScopeFrom(r)
			ip := s.ClientIP
			if !ip.IsValid() || allowed(cfg.Allow, ip) {
				next.ServeHTTP(w, r)
				return
			}
			key := netip.PrefixFrom(ip, ip.BitLen())
			if ip.Is6() {
				key, _ = ip.Prefix(cfg.IPv6Prefix)
			}
			l, ok := limiters.Get(key)
			if !ok {
				l = rate.NewLimiter(limit, burst)
				// Two first requests racing may both add; the later wins,
				// which costs that client one burst at most.
				limiters.Add(key, l)
			}
			if l.Allow() {
				next.ServeHTTP(w, r)
				return
			}
			s.Offence = "flood"
			jails.Report(cfg.Jail, ip, "flood")
			if log.Enabled(r.Context(), slog.LevelDebug) {
				log.Debug("rate limited", "client_ip", ip, "jail", cfg.Jail)
			}
			w.Header()["Retry-After"] = retryAfter
			PlainStatus(w, http.StatusTooManyRequests)
		})
	}, nil
}

func allowed(allow []netip.Prefix, ip netip.Addr) bool {
	for _, p := range allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
