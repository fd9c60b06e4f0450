package fleet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/rules"
	"gatehouse/rules/store"
)

// Resync reasons, the label values of gatehouse_fleet_resyncs_total.
const (
	reasonNoCursor = "no_cursor" // first start, or a new state_dir
	reasonEpoch    = "epoch"     // Redis lost its data (or another fleet's data)
	reasonTrimmed  = "trimmed"   // this node fell behind the stream's cap
)

// errEpochChanged ends a session when the fleet's epoch changed under it.
var errEpochChanged = errors.New("fleet epoch changed: redis lost its data")

// follow runs sessions of the stream follower until ctx is done,
// reconnecting with backoff after any failure.
func (f *Fleet) follow(ctx context.Context) {
	first := true
	var backoff time.Duration
	for ctx.Err() == nil {
		started := time.Now()
		err := f.session(ctx, &first)
		if ctx.Err() != nil {
			return
		}
		f.log.Debug("fleet session ended", "error", err)
		if errors.Is(err, errEpochChanged) {
			f.log.Warn("redis lost its data; pushing this node's bans back", "error", err)
			continue
		}
		f.setUp(false, err)
		if time.Since(started) > retryMax {
			backoff = 0 // it ran well for a while: retry quickly
		}
		backoff = nextBackoff(backoff)
		if !rules.Sleep(ctx, backoff) {
			return
		}
	}
}

// session connects, catches up (from the saved cursor, or by a full
// resync) and then follows the change stream with blocking reads on a
// connection of its own, until a Redis failure or ctx ends it.
func (f *Fleet) session(ctx context.Context, first *bool) error {
	if err := f.syncClock(ctx); err != nil {
		return err
	}
	epoch, err := f.epoch(ctx)
	if err != nil {
		return err
	}
	cur, err := f.journal.Cursor()
	if err != nil {
		return err
	}
	reason := ""
	switch {
	case cur.StreamID == "":
		reason = reasonNoCursor
	case cur.Epoch != epoch:
		reason = reasonEpoch
	default:
		trimmed, err := f.trimmedAfter(ctx, cur.StreamID)
		if err != nil {
			return err
		}
		if trimmed {
			reason = reasonTrimmed
		}
	}
	if reason != "" {
		id, err := f.resync(ctx, epoch, reason)
		if err != nil {
			return err
		}
		cur = store.Cursor{Epoch: epoch, StreamID: id}
	} else {
		if err := f.drain(ctx); err != nil {
			return err
		}
		if *first {
			// Bans saved in the store, or made while this node was
			// cut off and lost from its outbox by a crash.
			if err := f.pushAll(ctx); err != nil {
				return err
			}
		}
	}
	*first = false
	f.setUp(true, nil)
	if err := f.beat(ctx); err != nil {
		return err
	}

	conn := f.rdb.Conn()
	defer conn.Close()
	saved := time.Now()
	dirty := false
	save := func() {
		if !dirty {
			return
		}
		if err := f.journal.SetCursor(cur); err != nil {
			f.log.Warn("fleet cursor not saved", "error", err)
			return
		}
		dirty, saved = false, time.Now()
	}
	defer save()
	for ctx.Err() == nil {
		streams, err := conn.XRead(ctx, &redis.XReadArgs{
			Streams: []string{f.k.stream, cur.StreamID},
			Count:   readCount,
			Block:   f.block,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			// Quiet for a while: is it still the same data set?
			e, err := f.rdb.Get(ctx, f.k.epoch).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return fmt.Errorf("read fleet epoch: %w", err)
			}
			if e != epoch {
				return errEpochChanged
			}
		case err != nil:
			return fmt.Errorf("read fleet changes: %w", err)
		default:
			from := cur.StreamID
			for _, s := range streams {
				for _, m := range s.Messages {
					f.receiveEntry(m)
					cur.StreamID = m.ID
					dirty = true
				}
			}
			trimmed, err := f.trimmedAfter(ctx, from)
			if err != nil {
				return err
			}
			if trimmed {
				id, err := f.resync(ctx, epoch, reasonTrimmed)
				if err != nil {
					return err
				}
				cur.StreamID, dirty = id, false
			}
		}
		if time.Since(saved) >= cursorEvery {
			save()
		}
	}
	return nil
}

// epoch returns the fleet's epoch, creating it when Redis has none (a
// new or emptied Redis).
func (f *Fleet) epoch(ctx context.Context) (string, error) {
	fresh := rand.Text()
	ok, err := f.rdb.SetNX(ctx, f.k.epoch, fresh, 0).Result()
	if err != nil {
		return "", fmt.Errorf("set fleet epoch: %w", err)
	}
	if ok {
		f.log.Info("new fleet epoch", "epoch", fresh)
		return fresh, nil
	}
	e, err := f.rdb.Get(ctx, f.k.epoch).Result()
	if err != nil {
		return "", fmt.Errorf("read fleet epoch: %w", err)
	}
	return e, nil
}

// streamInfo returns the stream's last ID ("0-0" while there is no
// stream) and whether entries were ever trimmed from it, and if so the
// ID of its first entry.
func (f *Fleet) streamInfo(ctx context.Context) (last, first string, trimmed bool, err error) {
	info, err := f.rdb.XInfoStream(ctx, f.k.stream).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return "0-0", "", false, nil
		}
		return "", "", false, fmt.Errorf("read fleet stream info: %w", err)
	}
	first = info.FirstEntry.ID
	if first == "" {
		first = info.RecordedFirstEntryID
	}
	// entries-added is Redis 7's; before it, assume trimming may have
	// happened (a needless pull at worst).
	trimmed = info.EntriesAdded > info.Length || info.EntriesAdded == 0 && info.Length > 0
	return info.LastGeneratedID, first, trimmed, nil
}

// trimmedAfter reports whether entries after id may have been trimmed
// from the stream, so reading on from id could miss changes: something
// was trimmed and the first entry left is after id. It may say so of
// entries trimmed right after they were read, which costs a needless
// full pull, never a missed change.
func (f *Fleet) trimmedAfter(ctx context.Context, id string) (bool, error) {
	_, first, trimmed, err := f.streamInfo(ctx)
	if err != nil {
		return false, err
	}
	return trimmed && first != "" && compareIDs(id, first) < 0, nil
}

// resync makes this node and Redis agree without the stream: it pushes
// the outbox and every ban of this node (Redis keeps the newest
// revision of each prefix), then pulls every ban and tombstone Redis
// holds, and returns the stream ID to follow from. Changes made during
// the pull are in the stream after that ID, and applying them again
// changes nothing.
func (f *Fleet) resync(ctx context.Context, epoch, reason string) (string, error) {
	start := time.Now()
	f.m.resyncs.WithLabelValues(reason).Inc()
	if err := f.drain(ctx); err != nil {
		return "", err
	}
	if err := f.pushAll(ctx); err != nil {
		return "", err
	}
	last, _, _, err := f.streamInfo(ctx)
	if err != nil {
		return "", err
	}
	bans, unbans, err := f.pull(ctx)
	if err != nil {
		return "", err
	}
	if err := f.journal.SetCursor(store.Cursor{Epoch: epoch, StreamID: last}); err != nil {
		return "", err
	}
	f.log.Info("fleet resynced", "reason", reason, "bans", bans, "unbans", unbans,
		"seconds", time.Since(start).Seconds())
	return last, nil
}

// pull applies every ban and every tombstone Redis holds.
func (f *Fleet) pull(ctx context.Context) (bans, unbans int, err error) {
	for _, h := range []struct {
		key string
		n   *int
		fn  func(p, v string)
	}{
		{f.k.bans, &bans, func(p, v string) { f.receiveBan(p, v) }},
		{f.k.unbans, &unbans, func(p, v string) { f.receiveUnban(p, v) }},
	} {
		var cursor uint64
		for {
			kv, next, err := f.rdb.HScan(ctx, h.key, cursor, "", scanCount).Result()
			if err != nil {
				return 0, 0, fmt.Errorf("pull %s: %w", h.key, err)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				h.fn(kv[i], kv[i+1])
				*h.n++
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return bans, unbans, nil
}

// receiveEntry applies one change-stream entry.
func (f *Fleet) receiveEntry(m redis.XMessage) {
	op, _ := m.Values["o"].(string)
	p, _ := m.Values["p"].(string)
	v, _ := m.Values["v"].(string)
	var node string
	switch op {
	case "b":
		node = f.receiveBan(p, v)
	case "u":
		node = f.receiveUnban(p, v)
	default:
		f.log.Warn("unknown fleet change skipped", "id", m.ID, "op", op)
		return
	}
	ms, _ := splitID(m.ID)
	age := time.Duration(f.toRemote(f.now())/1000-int64(ms)) * time.Millisecond
	f.lag.Store(int64(max(age, 0)))
	if node != f.node && node != "" {
		f.m.propagation.Observe(max(age, 0).Seconds())
	}
}

// receiveBan puts a ban from the fleet on the ban list, unless this node
// holds the same or a newer ban of that prefix, and returns the node
// that made it.
func (f *Fleet) receiveBan(ps, vs string) string {
	p, err := parseClient(ps)
	if err != nil {
		f.log.Warn("malformed fleet ban skipped", "error", err)
		return ""
	}
	v, err := parseBanValue(vs)
	if err != nil {
		f.log.Warn("malformed fleet ban skipped", "prefix", p, "error", err)
		return ""
	}
	until := f.fromRemote(v.Until)
	if !until.After(f.now()) {
		return v.Node
	}
	tol := int64(sameRev / time.Microsecond)
	if cur, ok := f.exact(p); ok {
		rev := f.toRemote(cur.Created)
		if rev > v.Rev+tol {
			return v.Node // newer here; the outbox takes it to Redis
		}
		if absDiff(rev, v.Rev) <= tol && absDiff(f.toRemote(cur.Until), v.Until) <= tol && cur.Jail == v.Jail {
			return v.Node // already here
		}
	}
	b := rules.Ban{Prefix: p, Jail: v.Jail, Reason: v.Reason, Until: until, Count: v.Count, Created: f.fromRemote(v.Rev)}
	f.mu.Lock()
	f.received[p] = until.UnixNano()
	f.mu.Unlock()
	stored, err := f.bans.Ban(b)
	if err != nil {
		f.mu.Lock()
		delete(f.received, p)
		if errors.Is(err, rules.ErrAllowed) && b.Jail != "" {
			f.refuseNetLocked(p, until.UnixNano())
		}
		f.mu.Unlock()
		f.log.Debug("fleet ban not applied here", "prefix", p, "error", err)
		return v.Node
	}
	f.m.received.WithLabelValues("ban").Inc()
	if f.history != nil && stored.Jail != "" && stored.Count > 0 {
		f.history(stored)
	}
	return v.Node
}

// receiveUnban lifts the ban of a prefix that the fleet lifted, unless
// the ban here is newer than the unban, and returns the node that made it.
func (f *Fleet) receiveUnban(ps, ts string) string {
	p, err := parseClient(ps)
	if err != nil {
		f.log.Warn("malformed fleet unban skipped", "error", err)
		return ""
	}
	t, err := parseTombValue(ts)
	if err != nil {
		f.log.Warn("malformed fleet unban skipped", "prefix", p, "error", err)
		return ""
	}
	// A ban here newer than the unban stays (its push is on the way).
	// A ban hidden from exact by a longer one is lifted all the same:
	// should it be newer, its push brings it back.
	if cur, ok := f.exact(p); ok && f.toRemote(cur.Created) > t.Rev+int64(sameRev/time.Microsecond) {
		return t.Node
	}
	if f.insideRefused(p) {
		// A member of a network escalated elsewhere that this node's
		// allow list keeps from banning whole: the member stays banned.
		f.log.Debug("fleet unban not applied here: its network is not banned here", "prefix", p)
		return t.Node
	}
	if f.bans.Unban(p) {
		f.m.received.WithLabelValues("unban").Inc()
	}
	return t.Node
}

// maxRefused bounds Fleet.refused; past it the oldest-ending entry goes.
const maxRefused = 4096

// refuseNetLocked records a refused network ban that ends at until (Unix
// ns), dropping ended entries. f.mu is held.
func (f *Fleet) refuseNetLocked(p netip.Prefix, until int64) {
	now := f.now().UnixNano()
	for q, u := range f.refused {
		if u <= now {
			delete(f.refused, q)
		}
	}
	if len(f.refused) >= maxRefused {
		var first netip.Prefix
		end := int64(math.MaxInt64)
		for q, u := range f.refused {
			if u < end {
				first, end = q, u
			}
		}
		delete(f.refused, first)
	}
	f.refused[p] = until
}

// insideRefused reports whether p lies strictly inside a refused network
// ban that has not ended.
func (f *Fleet) insideRefused(p netip.Prefix) bool {
	now := f.now().UnixNano()
	f.mu.Lock()
	defer f.mu.Unlock()
	for q, u := range f.refused {
		if u > now && q.Bits() < p.Bits() && q.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// exact returns the active ban of exactly p, if the ban list holds one
// that Lookup finds (a longer banned prefix at p's first address hides
// it, and it is then treated as absent).
func (f *Fleet) exact(p netip.Prefix) (rules.Ban, bool) {
	b, ok := f.bans.Lookup(p.Addr())
	if !ok || b.Prefix != p {
		return rules.Ban{}, false
	}
	return b, true
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}
