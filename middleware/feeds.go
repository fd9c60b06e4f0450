package middleware

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"
)

// FeedAction is what a client listed by a blocklist feed gets over HTTP.
type FeedAction uint8

const (
	// FeedDrop closes the client's connection without an answer (logged
	// as 444), as the kernel drops its packets when a firewall backend
	// is on. A client reached through a trusted proxy gets 403 instead:
	// the proxy's connection carries other clients' requests too.
	FeedDrop FeedAction = iota
	// FeedForbid answers 403.
	FeedForbid
)

// FeedTable is one immutable view of the feeds: one lookup over all of
// them and each feed's name and action, indexed as Lookup numbers them.
// The feed runner builds a new table when a feed changes and swaps it in.
type FeedTable struct {
	// Lookup returns the first feed (by index) listing a, without
	// allocating.
	Lookup func(a netip.Addr) (feed int, listed bool)
	// Names and Actions are per feed.
	Names   []string
	Actions []FeedAction
	// Blocks, when set, counts each feed's refused requests.
	Blocks []*atomic.Uint64
}

// FeedGuardConfig configures FeedGuard.
type FeedGuardConfig struct {
	// Table is the current feed table, swapped by the feed runner; a
	// nil table lists nobody. Required.
	Table *atomic.Pointer[FeedTable]
	// Exempt reports clients no feed ever blocks: allow and
	// trusted_proxies. Required.
	Exempt func(netip.Addr) bool
	// Log receives a debug line per refusal; nil discards.
	Log *slog.Logger
}

// FeedGuard refuses clients that a blocklist feed lists. It needs the
// Scope's client IP. A client that is not listed costs one lookup (one
// binary search over every feed at once) and no allocation.
func FeedGuard(cfg FeedGuardConfig) (func(http.Handler) http.Handler, error) {
	if cfg.Table == nil || cfg.Exempt == nil {
		return nil, errors.New("feed guard: no feed table or exemption")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t := cfg.Table.Load()
			if t == nil {
				next.ServeHTTP(w, r)
				return
			}
			s := ScopeFrom(r)
			feed, listed := t.Lookup(s.ClientIP)
			if !listed || cfg.Exempt(s.ClientIP) {
				next.ServeHTTP(w, r)
				return
			}
			if t.Blocks != nil {
				t.Blocks[feed].Add(1)
			}
			if log.Enabled(r.Context(), slog.LevelDebug) {
				log.Debug("client listed by a feed refused", "client_ip", s.ClientIP, "feed", t.Names[feed])
			}
			if t.Actions[feed] == FeedDrop && !s.PeerTrusted {
				logStatus(w, StatusNoAnswer)
				panic(http.ErrAbortHandler)
			}
			PlainStatus(w, http.StatusForbidden)
		})
	}, nil
}
