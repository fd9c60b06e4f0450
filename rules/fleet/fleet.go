package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"gatehouse/rules"
	"gatehouse/rules/store"
)

// Config configures a Fleet.
type Config struct {
	// Redis is the client of the fleet's Redis, its options (address,
	// ACL user, password, TLS) set by the caller. The Fleet takes one
	// connection of its pool for the blocking stream reads. Required;
	// the caller closes it after Run returned.
	Redis *redis.Client
	// Prefix is the key prefix, used as a hash tag ("{gh}:bans"). Not
	// empty, no braces. Zero: "gh".
	Prefix string
	// Node names this node in the fleet: in the bans it makes and in
	// `gatehouse fleet status`. No "|", no spaces. Required.
	Node string
	// Bans is this node's ban list: its local bans are pushed to the
	// fleet, the fleet's go into it. Required.
	Bans *rules.BanList
	// Journal is this node's ban store, which keeps the outbox and the
	// stream cursor. Required.
	Journal *store.Store
	// History, when set, is given every jail ban received from the fleet
	// (rules.Jails.RestoreHistory), so that local counting, the fallback
	// when Redis is down, continues the increment sequence.
	History func(rules.Ban)
	// StreamMax caps the change stream (XADD MAXLEN ~): a node that falls
	// further behind does a full pull. Zero: 100,000 entries (about 15 MB).
	StreamMax int64
	// TombstoneKeep is how long an unban is remembered at least, so that
	// a ban made before it and pushed late by a node that was cut off
	// stays lifted. Zero: 7 days.
	TombstoneKeep time.Duration
	// Block is how long a stream read waits for changes before the
	// follower checks the fleet's epoch. Zero: 2 seconds.
	Block time.Duration
	// OffenceQueue bounds the shared offences waiting to be counted;
	// past it they are counted locally. Zero: 8192.
	OffenceQueue int
	// Heartbeat is how often the node refreshes its clock offset, its
	// entry in the nodes hash, and prunes expired state. Zero: 5 seconds.
	Heartbeat time.Duration
	// Registerer receives the fleet's metrics. nil: not registered.
	Registerer prometheus.Registerer
	// Log receives the fleet's log. nil: discard.
	Log *slog.Logger
}

const (
	defaultPrefix        = "gh"
	defaultStreamMax     = 100_000
	defaultTombstoneKeep = 7 * 24 * time.Hour
	defaultBlock         = 2 * time.Second
	defaultOffenceQueue  = 8192
	defaultHeartbeat     = 5 * time.Second

	// pushBatch is how many changes one apply call carries, and
	// offenceBatch how many offences one offend call counts.
	pushBatch    = 512
	offenceBatch = 256
	// readCount is how many stream entries one XREAD returns at most.
	readCount = 1024
	// scanCount is the HSCAN COUNT hint of a full pull.
	scanCount = 2000
	// sameRev is how far apart two revisions of a prefix may be and
	// still be the same change seen through two clock offsets.
	sameRev = 50 * time.Millisecond
	// cursorEvery is how often the stream cursor is saved at most; a
	// restart replays what came after, which changes nothing.
	cursorEvery = time.Second
	// retryMin and retryMax bound the backoff after a Redis failure.
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

// Fleet syncs one node's bans with the other nodes of its fleet through
// Redis, and counts the offences of shared jails there. Build it with
// New, pass it as the jails' rules.OffenceSharer, and run it with Run.
// Its methods are safe for concurrent use.
type Fleet struct {
	rdb     *redis.Client
	k       keys
	node    string
	bans    *rules.BanList
	journal *store.Store
	history func(rules.Ban)
	log     *slog.Logger
	now     func() time.Time

	streamMax int64
	tombKeep  time.Duration
	block     time.Duration
	heartbeat time.Duration

	offset   atomic.Int64 // ns to add to this node's clock to get Redis's
	up       atomic.Bool  // the last Redis call succeeded
	lag      atomic.Int64 // ns: age of the last stream entry applied
	bansHeld atomic.Int64 // bans on the list, for the heartbeat
	counted  atomic.Int64 // when bansHeld was counted, Unix ns
	seq      atomic.Uint64
	offences chan rules.Offence
	kick     chan struct{}
	limitq   chan *limitReq // requests of shared limits (limits.go)
	lim      limitState

	mu       sync.Mutex
	received map[netip.Prefix]int64 // bans this Fleet put on the list, by Until (ns), until its feed shows them
	// refused holds the jails' network bans from the fleet that this
	// node's allow list refused, by Until (ns): the unbans of their
	// members, which the escalating node pushes, are not applied here.
	refused map[netip.Prefix]int64

	pushMu sync.Mutex // serialises outbox drains and full pushes

	m *metrics
}

// New checks cfg and returns a Fleet; it does not contact Redis.
func New(cfg Config) (*Fleet, error) {
	var problems []string
	if cfg.Redis == nil {
		problems = append(problems, "no Redis client")
	}
	if cfg.Bans == nil {
		problems = append(problems, "no ban list")
	}
	if cfg.Journal == nil {
		problems = append(problems, "no ban store for the outbox")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		problems = append(problems, fmt.Sprintf("prefix %q holds a brace", cfg.Prefix))
	}
	if err := CheckNode(cfg.Node); err != nil {
		problems = append(problems, err.Error())
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"tombstone retention", cfg.TombstoneKeep}, {"block", cfg.Block}, {"heartbeat", cfg.Heartbeat}} {
		if d.v < 0 {
			problems = append(problems, fmt.Sprintf("%s %s is negative", d.name, d.v))
		}
	}
	if cfg.StreamMax < 0 || cfg.OffenceQueue < 0 {
		problems = append(problems, "stream cap and offence queue must not be negative")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("fleet: %s", strings.Join(problems, "; "))
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{
		rdb:       cfg.Redis,
		k:         newKeys(cfg.Prefix),
		node:      cfg.Node,
		bans:      cfg.Bans,
		journal:   cfg.Journal,
		history:   cfg.History,
		log:       log.With("component", "fleet"),
		now:       time.Now,
		streamMax: orDefault(cfg.StreamMax, defaultStreamMax),
		tombKeep:  orDefault(cfg.TombstoneKeep, defaultTombstoneKeep),
		block:     orDefault(cfg.Block, defaultBlock),
		heartbeat: orDefault(cfg.Heartbeat, defaultHeartbeat),
		offences:  make(chan rules.Offence, orDefault(cfg.OffenceQueue, defaultOffenceQueue)),
		kick:      make(chan struct{}, 1),
		limitq:    make(chan *limitReq, limitQueue),
		received:  map[netip.Prefix]int64{},
		refused:   map[netip.Prefix]int64{},
	}
	f.m = newMetrics(f)
	if cfg.Registerer != nil {
		if err := f.m.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("fleet: register metrics: %w", err)
		}
	}
	return f, nil
}

// CheckNode reports whether name can name a node: not empty, at most 255
// bytes, no "|", no spaces or control characters.
func CheckNode(name string) error {
	if name == "" {
		return errors.New("node name is empty")
	}
	if len(name) > 255 {
		return fmt.Errorf("node name of %d bytes is longer than 255", len(name))
	}
	for _, r := range name {
		if r == '|' || r <= ' ' || r == 0x7f {
			return fmt.Errorf("node name %q holds %q", name, r)
		}
	}
	return nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Run syncs until ctx is done, then pushes what the outbox still holds
// (for at most two seconds) and returns nil. Redis being down is not an
// error: bans and unbans wait in the outbox, shared offences are counted
// locally, and Run keeps retrying with backoff. Start it after the bans
// saved in the store are back on the ban list. The caller owns the
// goroutine; Run may be called once.
func (f *Fleet) Run(ctx context.Context) error {
	sub := f.bans.Subscribe(16384)
	defer sub.Close()
	var wg sync.WaitGroup
	wg.Go(func() { f.watch(ctx, sub) })
	wg.Go(func() { f.pushLoop(ctx) })
	wg.Go(func() { f.follow(ctx) })
	wg.Go(func() { f.countLoop(ctx) })
	wg.Go(func() { f.limitLoop(ctx) })
	wg.Go(func() { f.tick(ctx) })
	wg.Wait()
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := f.drain(final); err != nil {
		f.log.Info("outbox not empty at shutdown; it is pushed at the next start", "error", err)
	}
	return nil
}

// Kick makes Run push the outbox now: the admin API calls it after
// store.PutQueued or store.DeleteQueued. It never blocks.
func (f *Fleet) Kick() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Up reports whether the last call to Redis succeeded.
func (f *Fleet) Up() bool { return f.up.Load() }

func (f *Fleet) setUp(up bool, err error) {
	if f.up.Swap(up) != up {
		if up {
			f.log.Info("redis reachable: fleet sync on")
		} else {
			f.log.Warn("redis unreachable: bans wait in the outbox, shared jails count locally", "error", err)
		}
	}
}

// toRemote converts a time of this node's clock to microseconds on
// Redis's clock.
func (f *Fleet) toRemote(t time.Time) int64 {
	return (t.UnixNano() + f.offset.Load()) / 1000
}

// fromRemote converts microseconds on Redis's clock to this node's clock.
func (f *Fleet) fromRemote(us int64) time.Time {
	return time.Unix(0, us*1000-f.offset.Load())
}

// syncClock measures Redis's clock against this node's with TIME: of
// three round trips it keeps the shortest, and takes Redis's time to be
// that of its middle, so the error is at most half that round trip (the
// first call of a new connection, which also dials, is never the one).
func (f *Fleet) syncClock(ctx context.Context) error {
	best := time.Duration(-1)
	var offset int64
	for range 3 {
		t0 := f.now()
		rt, err := f.rdb.Time(ctx).Result()
		if err != nil {
			return fmt.Errorf("read redis clock: %w", err)
		}
		t1 := f.now()
		if rtt := t1.Sub(t0); best < 0 || rtt < best {
			best = rtt
			offset = rt.UnixNano() - t0.Add(rtt/2).UnixNano()
		}
	}
	f.offset.Store(offset)
	return nil
}

// nextBackoff doubles b within [retryMin, retryMax].
func nextBackoff(b time.Duration) time.Duration {
	return min(max(2*b, retryMin), retryMax)
}
