package rules

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Well-known jail names the middleware reports to.
const (
	// JailAuth receives failed basic-auth logins.
	JailAuth = "auth"
)

// Jails receives offences reported by the middleware, by jail name. Today
// it counts and logs them; the ban decision (maxretry within findtime →
// bantime) is made here as jails are configured. Report never blocks the
// request path and is safe for concurrent use.
type Jails struct {
	log      *slog.Logger
	mu       sync.RWMutex
	counters map[string]*atomic.Uint64 // jail → offences; keys are config-bounded
}

// NewJails returns an empty set of jails. log nil: discard.
func NewJails(log *slog.Logger) *Jails {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Jails{log: log, counters: map[string]*atomic.Uint64{}}
}

// Report records one offence by ip against jail, for reason (a short
// constant such as "bad password"; never a credential).
func (j *Jails) Report(jail string, ip netip.Addr, reason string) {
	j.counter(jail).Add(1)
	if j.log.Enabled(context.Background(), slog.LevelDebug) {
		j.log.Debug("offence", "jail", jail, "client_ip", ip, "reason", reason)
	}
}

// Offences returns how many offences jail has received.
func (j *Jails) Offences(jail string) uint64 {
	return j.counter(jail).Load()
}

func (j *Jails) counter(jail string) *atomic.Uint64 {
	j.mu.RLock()
	c := j.counters[jail]
	j.mu.RUnlock()
	if c != nil {
		return c
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if c = j.counters[jail]; c == nil {
		c = new(atomic.Uint64)
		j.counters[jail] = c
	}
	return c
}
