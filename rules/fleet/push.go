package fleet

import (
	"context"
	"fmt"
	"time"

	"gatehouse/rules"
	"gatehouse/rules/store"
)

// watch follows the ban list and pushes every ban made on this node:
// jail bans, and manual bans once more (the admin API queued them
// already, with the same revision, and Redis ignores the second push).
// While Redis is unreachable they are queued in the outbox instead. Bans
// the fleet delivered are recognised and skipped. Removals are not
// pushed: a ban that ends needs no message, and the admin API queues its
// unbans itself, durably, before it answers; but the members an escalated
// ban replaced here are pushed as unbans, so the fleet keeps the network
// alone. When the feed overflows,
// every ban of a fresh snapshot is queued: Redis ignores those it knows.
//
// The bans on the list before Run started are pushed by the follower's
// first session (pushAll).
func (f *Fleet) watch(ctx context.Context, sub *rules.Subscription) {
	var batch []store.OutboxEntry
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Overflow():
			f.log.Info("fleet fell behind the ban list; queueing a snapshot")
			f.queueSnapshot(sub.Resync())
		case c, ok := <-sub.C:
			if !ok {
				return
			}
			batch = f.local(batch[:0], c)
			for more := true; more && len(batch) < pushBatch; {
				select {
				case c, ok := <-sub.C:
					if !ok {
						more = false
						break
					}
					batch = f.local(batch, c)
				default:
					more = false
				}
			}
			if len(batch) == 0 {
				continue
			}
			// Pushed at once while Redis answers; queued in the outbox,
			// durably, when it does not.
			if f.up.Load() {
				if _, err := f.apply(ctx, batch); err == nil {
					continue
				}
			}
			if err := f.journal.Queue(batch); err != nil {
				f.log.Error("bans not queued for the fleet", "bans", len(batch), "error", err)
				continue
			}
			f.Kick()
		}
	}
}

// local appends c to batch when it is a ban made on this node, or a ban
// this node replaced by an escalated ban of its network (Change.By): the
// fleet then holds the network as one entry, and every node drops the
// member, as this one did.
func (f *Fleet) local(batch []store.OutboxEntry, c rules.Change) []store.OutboxEntry {
	if c.Op == rules.Removed && c.By.IsValid() {
		return append(batch, store.OutboxEntry{Unban: true, Ban: rules.Ban{Prefix: c.Ban.Prefix}, At: f.now()})
	}
	if c.Op != rules.Added {
		return batch
	}
	f.mu.Lock()
	until, ok := f.received[c.Ban.Prefix]
	if ok && until == c.Ban.Until.UnixNano() {
		delete(f.received, c.Ban.Prefix)
	}
	f.mu.Unlock()
	if ok && until == c.Ban.Until.UnixNano() {
		return batch
	}
	return append(batch, store.OutboxEntry{Ban: c.Ban, At: c.Ban.Created})
}

// queueSnapshot queues every ban of snap, after the feed overflowed: it
// covers the changes that were lost.
func (f *Fleet) queueSnapshot(snap []rules.Ban) {
	f.mu.Lock()
	clear(f.received) // the feed restarts after the snapshot
	f.mu.Unlock()
	entries := make([]store.OutboxEntry, 0, len(snap))
	for _, b := range snap {
		entries = append(entries, store.OutboxEntry{Ban: b, At: b.Created})
	}
	for len(entries) > 0 {
		n := min(len(entries), 8192)
		if err := f.journal.Queue(entries[:n]); err != nil {
			f.log.Error("bans not queued for the fleet", "bans", n, "error", err)
		}
		entries = entries[n:]
	}
	f.Kick()
}

// pushLoop drains the outbox whenever something is queued, and retries
// with backoff while Redis is unreachable.
func (f *Fleet) pushLoop(ctx context.Context) {
	var backoff time.Duration
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		case <-retry.C:
		}
		if err := f.drain(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			f.setUp(false, err)
			backoff = nextBackoff(backoff)
			retry.Reset(backoff)
			continue
		}
		backoff = 0
	}
}

// drain pushes the outbox to Redis, batch by batch, removing what Redis
// took, until it is empty.
func (f *Fleet) drain(ctx context.Context) error {
	f.pushMu.Lock()
	defer f.pushMu.Unlock()
	for {
		entries, total, err := f.journal.Outbox(pushBatch)
		f.m.outbox.Set(float64(total))
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		if _, err := f.apply(ctx, entries); err != nil {
			return err
		}
		if err := f.journal.Dequeue(entries); err != nil {
			return err
		}
		f.m.outbox.Set(float64(total - len(entries)))
		// Read once more: a change may have been queued meanwhile.
	}
}

// apply runs the apply script on entries and returns how many changes
// Redis took (the others were stale or already known).
func (f *Fleet) apply(ctx context.Context, entries []store.OutboxEntry) (int, error) {
	args := make([]any, 0, 2+4*len(entries))
	args = append(args, f.streamMax, micros(f.tombKeep), micros(sameRev))
	for _, e := range entries {
		p := e.Ban.Prefix.String()
		if e.Unban {
			args = append(args, "u", p, f.toRemote(e.At), f.node)
			continue
		}
		v := f.value(e.Ban)
		args = append(args, "b", p, v.Rev, v.String())
	}
	n, err := applyScript.Run(ctx, f.rdb, []string{f.k.bans, f.k.exp, f.k.unbans, f.k.unexp, f.k.stream}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("push %d changes to redis: %w", len(entries), err)
	}
	f.setUp(true, nil)
	f.m.pushed.Add(float64(n))
	return n, nil
}

// value is b as the fleet stores it, made by this node.
func (f *Fleet) value(b rules.Ban) banValue {
	return banValue{
		Until:  f.toRemote(b.Until),
		Rev:    f.toRemote(b.Created),
		Count:  min(max(b.Count, 0), 65535),
		Node:   f.node,
		Jail:   b.Jail,
		Reason: b.Reason,
	}
}

// pushAll pushes every ban of the ban list, so that a Redis that lost
// its data gets this node's bans back. Redis keeps the newest revision of
// each prefix, so bans it knows, or knows to be lifted, change nothing.
func (f *Fleet) pushAll(ctx context.Context) error {
	f.pushMu.Lock()
	defer f.pushMu.Unlock()
	all := f.bans.List()
	for len(all) > 0 {
		n := min(len(all), pushBatch)
		entries := make([]store.OutboxEntry, n)
		for i, b := range all[:n] {
			entries[i] = store.OutboxEntry{Ban: b, At: b.Created}
		}
		if _, err := f.apply(ctx, entries); err != nil {
			return err
		}
		all = all[n:]
	}
	return nil
}
