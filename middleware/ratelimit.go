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

// RateLimit refuses a client's requests over its token bucket
// (golang.org/x/time/rate) with 429 and a Retry-After, and reports each
// refusal to the jail, which bans a client that keeps flooding. Limiter
// state is a bounded LRU, so a flood of addresses cannot exhaust memory.
// It needs the Scope's client IP.
func RateLimit(cfg RateLimitConfig, jails *rules.Jails, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	if cfg.Rate <= 0 {
		return nil, fmt.Errorf("rate limit: rate %v must be greater than 0", cfg.Rate)
	}
	if cfg.Jail == "" || jails == nil {
		return nil, errors.New("rate limit: no jail")
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(2*cfg.Rate))
	}
	if cfg.IPv6Prefix == 0 {
		cfg.IPv6Prefix = 64
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 100_000
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limiters, err := lru.New[netip.Prefix, *rate.Limiter](cfg.Capacity)
	if err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	limit := rate.Limit(cfg.Rate)
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
				l = rate.NewLimiter(limit, cfg.Burst)
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
