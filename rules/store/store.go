package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"gatehouse/rules"
)

// StoreConfig configures a Store.
type StoreConfig struct {
	// Path is the database file, normally bans.db in state_dir. Open
	// creates it (mode 0600) but not its directory. Required.
	Path string
	// Forget is how long a client's ban history is kept after its last
	// ban by a jail ended; older history is pruned, so the file cannot
	// grow forever. It should be at least the longest jails.*.forget,
	// or repeat offenders come back as first offenders after a restart.
	// Zero: 7 days (fail2ban's and the jails' default).
	Forget time.Duration
	// MaxHistory bounds the history records kept, since bans are made
	// from client input: past it, pruning drops the records whose ban
	// ended first. A record costs about 100 bytes of file (100 MB at
	// the default); more than the jails can track (JailsConfig.Capacity
	// per jail) is of no use. Zero: 1,000,000.
	MaxHistory int
	// PruneEvery is how often Run deletes expired bans and forgotten
	// history. Zero: 10 minutes.
	PruneEvery time.Duration
	// LockTimeout is how long Open waits for the file lock that another
	// process (a second gatehouse on the same state_dir) holds before it
	// fails with ErrLocked. Zero: 1 second.
	LockTimeout time.Duration
}

const (
	defaultForget      = 7 * 24 * time.Hour
	defaultMaxHistory  = 1_000_000
	defaultPruneEvery  = 10 * time.Minute
	defaultLockTimeout = time.Second

	// schemaVersion is the version of the file layout written in the meta
	// bucket. Open refuses a newer one and will migrate older ones.
	schemaVersion = 1
	// banVersion and historyVersion version the record encodings.
	banVersion     = 1
	historyVersion = 1

	bucketBans    = "bans"
	bucketHistory = "history"
	bucketMeta    = "meta"
	keySchema     = "schema"

	// maxBatch bounds the changes Run writes in one transaction.
	maxBatch = 8192
	// retryMin and retryMax bound the backoff of Run after a failed write.
	retryMin = time.Second
	retryMax = time.Minute
)

// ErrLocked is wrapped by Open's error when another process holds the
// database's lock for longer than StoreConfig.LockTimeout.
var ErrLocked = errors.New("ban store is locked by another process")

// ErrNewerSchema is wrapped by Open's error when the file was written by
// a newer gatehouse whose layout this one does not know.
var ErrNewerSchema = errors.New("ban store was written by a newer gatehouse")

// errClosedFeed is returned by Run when its subscription is closed under it.
var errClosedFeed = errors.New("ban list subscription closed")

// Store keeps bans and ban history in a bbolt database. Put, Delete and
// Load may be called from any goroutine; Run is one long-lived loop, of
// which a Store runs at most one at a time. bbolt serialises writers, so
// a Put waits for a batch of Run to commit, and the reverse.
type Store struct {
	db         *bolt.DB
	log        *slog.Logger
	now        func() time.Time
	path       string
	forget     time.Duration
	maxHistory int
	pruneEvery time.Duration
}

// Open opens the database at cfg.Path, creating it and its buckets if it
// does not exist, and checks its schema version. It fails with an error
// wrapping ErrLocked if another process holds the file for longer than
// cfg.LockTimeout, and with one wrapping ErrNewerSchema if a newer
// gatehouse wrote it. log nil: discard. The caller must Close the Store.
func Open(cfg StoreConfig, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var problems []error
	if cfg.Path == "" {
		problems = append(problems, errors.New("path is empty"))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"forget", cfg.Forget}, {"prune interval", cfg.PruneEvery}, {"lock timeout", cfg.LockTimeout}} {
		if d.v < 0 {
			problems = append(problems, fmt.Errorf("%s %s is negative", d.key, d.v))
		}
	}
	if cfg.MaxHistory < 0 {
		problems = append(problems, fmt.Errorf("max history %d is negative", cfg.MaxHistory))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("open ban store %q: %w", cfg.Path, errors.Join(problems...))
	}
	s := &Store{
		log:        log.With("component", "store"),
		now:        time.Now,
		path:       cfg.Path,
		forget:     orDefault(cfg.Forget, defaultForget),
		maxHistory: orDefault(cfg.MaxHistory, defaultMaxHistory),
		pruneEvery: orDefault(cfg.PruneEvery, defaultPruneEvery),
	}
	timeout := orDefault(cfg.LockTimeout, defaultLockTimeout)
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{
		Timeout: timeout,
		// The hash map freelist stays fast when ban storms and pruning
		// fragment the file; the array one degrades (bbolt's docs).
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open ban store %s: %w (waited %s): is another gatehouse running with the same state_dir?", cfg.Path, ErrLocked, timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open ban store %s: %w", cfg.Path, err)
	}
	s.db = db
	if err := db.Update(initSchema); err != nil {
		// The schema error is the one to report; closing a database we
		// only read cannot lose anything.
		_ = db.Close()
		return nil, fmt.Errorf("open ban store %s: %w", cfg.Path, err)
	}
	return s, nil
}

// orDefault returns v, or def when v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// initSchema creates the buckets of a new file, or checks the schema
// version of an existing one.
func initSchema(tx *bolt.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		// A new file, or a bbolt file that is not ours: refuse to write
		// our buckets into someone else's database.
		var foreign []string
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			foreign = append(foreign, strconv.Quote(string(name)))
			return nil
		}); err != nil {
			return err
		}
		if len(foreign) > 0 {
			return fmt.Errorf("not a gatehouse ban store: no %q bucket, but buckets %v", bucketMeta, foreign)
		}
		m, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return fmt.Errorf("create %q bucket: %w", bucketMeta, err)
		}
		if err := m.Put([]byte(keySchema), []byte(strconv.Itoa(schemaVersion))); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
	} else {
		raw := meta.Get([]byte(keySchema))
		v, err := strconv.Atoi(string(raw))
		if err != nil || v < 1 {
			return fmt.Errorf("schema version %q in the %q bucket is not a positive integer", raw, bucketMeta)
		}
		if v > schemaVersion {
			return fmt.Errorf("schema version %d: %w (this one reads up to version %d); upgrade gatehouse, or move the file away to start without the saved bans", v, ErrNewerSchema, schemaVersion)
		}
		// Older versions would be migrated here; version 1 is the first.
	}
	for _, name := range []string{bucketBans, bucketHistory} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("create %q bucket: %w", name, err)
		}
	}
	return nil
}

// Close closes the database, waiting for transactions in flight. Stop
// Run first: it fails once the database is closed. Close is idempotent.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close ban store %s: %w", s.path, err)
	}
	return nil
}

// Load returns the bans still active at now and the ban history records
// (each a Ban with Prefix, Jail, Count, Until and Created: the client's
// last ban by that jail), in key order. It deletes, in the same
// transaction, the bans that ended at or before now, the history that
// ended more than StoreConfig.Forget before now, and records it cannot
// read (each logged at warn). Feed active to BanList.Ban, and both
// active and history to Jails.RestoreHistory, before starting Run (see
// the package documentation).
func (s *Store) Load(now time.Time) (active, history []rules.Ban, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		bb, hb := tx.Bucket([]byte(bucketBans)), tx.Bucket([]byte(bucketHistory))
		// Sized up front: growing slices of 100,000 Bans by appending
		// cost more than decoding them.
		active = make([]rules.Ban, 0, bb.Stats().KeyN)
		history = make([]rules.Ban, 0, hb.Stats().KeyN)
		var drop [][]byte
		if err := bb.ForEach(func(k, v []byte) error {
			b, err := decodeBan(k, v)
			switch {
			case err != nil:
				s.log.Warn("dropping unreadable ban record", "key", hex.EncodeToString(k), "err", err)
				drop = append(drop, bytes.Clone(k))
			case !b.Until.After(now):
				drop = append(drop, bytes.Clone(k))
			default:
				active = append(active, b)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := deleteKeys(bb, drop); err != nil {
			return err
		}
		drop = drop[:0]
		if err := hb.ForEach(func(k, v []byte) error {
			h, err := decodeHistory(k, v)
			switch {
			case err != nil:
				s.log.Warn("dropping unreadable ban history record", "key", hex.EncodeToString(k), "err", err)
				drop = append(drop, bytes.Clone(k))
			case s.forgotten(h.Until, now):
				drop = append(drop, bytes.Clone(k))
			default:
				history = append(history, h)
			}
			return nil
		}); err != nil {
			return err
		}
		return deleteKeys(hb, drop)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load bans from %s: %w", s.path, err)
	}
	return active, history, nil
}

// forgotten reports whether history of a ban that ended at until is
// past the forget window at now; the same comparison as the jails'.
func (s *Store) forgotten(until, now time.Time) bool {
	return now.Sub(until) > s.forget
}

// Put stores b, replacing the ban of the same prefix, and records it in
// the ban history when it was decided by a jail (Jail set, Count at
// least 1). The prefix is stored as BanList stores it: masked, an
// IPv4-mapped prefix folded to IPv4, its length kept. Put is durable
// when it returns: bbolt has written and fsynced the transaction, so a
// ban the admin API acknowledges after Put survives kill -9 and, on a
// disk that honours fsync, a power loss.
func (s *Store) Put(b rules.Ban) error { return s.put(b, false) }

// put is Put and, with queued, PutQueued: the ban, its history and, with
// queued, its outbox entry, in one transaction.
func (s *Store) put(b rules.Ban, queued bool) error {
	op := "store ban"
	if queued {
		op = "store and queue ban"
	}
	p, ok := rules.CanonicalPrefix(b.Prefix)
	if !ok {
		return fmt.Errorf("%s %s: invalid prefix", op, b.Prefix)
	}
	b.Prefix = p
	v, err := encodeBan(b)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, p, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte(bucketBans)).Put(appendPrefixKey(nil, p), v); err != nil {
			return err
		}
		if err := putHistory(tx.Bucket([]byte(bucketHistory)), b); err != nil || !queued {
			return err
		}
		return queue(tx, p, OutboxEntry{Ban: b, At: b.Created})
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, p, err)
	}
	return nil
}

// Delete removes the ban of exactly prefix p (masked and folded as Put
// does), as BanList.Unban does; deleting a prefix that is not stored is
// not an error. The history is kept: an unbanned client who offends again
// continues its increment sequence, as in fail2ban. Delete is durable
// when it returns.
func (s *Store) Delete(p netip.Prefix) error { return s.delete(p, false, time.Time{}) }

// delete is Delete and, with queued, DeleteQueued: the removal and, with
// queued, the unban's outbox entry made at at, in one transaction.
func (s *Store) delete(p netip.Prefix, queued bool, at time.Time) error {
	op := "delete ban"
	if queued {
		op = "delete and queue unban"
	}
	c, ok := rules.CanonicalPrefix(p)
	if !ok {
		return fmt.Errorf("%s %s: invalid prefix", op, p)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte(bucketBans)).Delete(appendPrefixKey(nil, c)); err != nil || !queued {
			return err
		}
		return queue(tx, c, OutboxEntry{Unban: true, At: at})
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, c, err)
	}
	return nil
}

// Run keeps the store equal to the ban list that sub belongs to until
// ctx is done. It first resynchronises (sub.Resync, then makes the bans
// bucket equal to the snapshot), then writes the changes of sub.C: each
// transaction takes every change queued at that moment (up to 8192), so
// a ban storm costs one fsync per batch, not one per ban. When sub
// overflows, or a write fails (the failure is logged, retried with
// backoff), it resynchronises from a fresh snapshot. Every
// StoreConfig.PruneEvery it deletes expired bans and forgotten history.
//
// Crash semantics: a ban decided by a jail is durable once the batch
// holding it commits, normally milliseconds after BanList.Ban returned;
// a kill -9 in between loses it (the kernel firewall entry, if any,
// still expires on its own). A ban whose caller needs it durable before
// answering (the admin API) is written with Put.
//
// When ctx is done, Run writes what is still queued on sub.C (or
// resynchronises if it was behind) and returns nil, or the error of that
// final write. Stop the request path first, so that the final write sees
// the last bans. It returns an error early only if the database is
// closed under it or sub is closed. Run does not close sub.
//
// Start Run only after the bans returned by Load are back in the ban
// list: its first resynchronisation deletes from the file every ban the
// list does not hold.
func (s *Store) Run(ctx context.Context, sub *rules.Subscription) error {
	prune := time.NewTicker(s.pruneEvery)
	defer prune.Stop()
	var (
		dirty   = true // the file may differ from the list: resync
		initial = true
		backoff time.Duration
		retry   *time.Timer
		retryC  <-chan time.Time // non-nil while waiting to retry
		batch   []rules.Change
	)
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		if dirty && retryC == nil {
			if err := s.resync(sub.Resync(), initial); err != nil {
				if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
					return fmt.Errorf("ban store %s: %w", s.path, err)
				}
				backoff = min(max(2*backoff, retryMin), retryMax)
				s.log.Warn("ban store resync failed, will retry", "err", err, "retry_seconds", backoff.Seconds())
				retry = time.NewTimer(backoff)
				retryC = retry.C
			} else {
				dirty, initial, backoff = false, false, 0
			}
		}
		select {
		case <-ctx.Done():
			return s.flush(sub, dirty, batch[:0])
		case c, ok := <-sub.C:
			if !ok {
				return fmt.Errorf("ban store %s: %w", s.path, errClosedFeed)
			}
			batch = gather(sub, append(batch[:0], c))
			if dirty {
				// Waiting to retry a resync, which covers these changes:
				// its snapshot is taken after them.
				continue
			}
			if err := s.apply(batch); err != nil {
				if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
					return fmt.Errorf("ban store %s: %w", s.path, err)
				}
				s.log.Warn("ban store write failed, will resync", "err", err, "changes", len(batch))
				dirty = true
			}
		case <-sub.Overflow():
			s.log.Info("ban store fell behind the ban list, resyncing")
			dirty = true
		case <-retryC:
			retryC = nil
		case <-prune.C:
			if err := s.prune(s.now()); err != nil {
				if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
					return fmt.Errorf("ban store %s: %w", s.path, err)
				}
				s.log.Warn("ban store prune failed", "err", err)
			}
		}
	}
}

// gather appends to batch the changes queued on sub.C, without waiting,
// up to maxBatch in all.
func gather(sub *rules.Subscription, batch []rules.Change) []rules.Change {
	for len(batch) < maxBatch {
		select {
		case c, ok := <-sub.C:
			if !ok {
				return batch // Run sees the closed channel next
			}
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

// flush is Run's last write: the changes still queued, or a resync if
// the store is behind.
func (s *Store) flush(sub *rules.Subscription, dirty bool, batch []rules.Change) error {
	select {
	case <-sub.Overflow():
		dirty = true
	default:
	}
	if dirty {
		if err := s.resync(sub.Resync(), false); err != nil {
			return fmt.Errorf("final ban store resync: %w", err)
		}
		return nil
	}
	for {
		batch = gather(sub, batch[:0])
		if len(batch) == 0 {
			return nil
		}
		if err := s.apply(batch); err != nil {
			return fmt.Errorf("final ban store write: %w", err)
		}
	}
}

// apply writes changes in order in one transaction.
func (s *Store) apply(changes []rules.Change) error {
	start := time.Now()
	err := s.db.Update(func(tx *bolt.Tx) error {
		bb, hb := tx.Bucket([]byte(bucketBans)), tx.Bucket([]byte(bucketHistory))
		for _, c := range changes {
			p, ok := rules.CanonicalPrefix(c.Ban.Prefix)
			if !ok {
				continue // BanList publishes valid prefixes only
			}
			// bbolt keeps keys and values until the transaction ends, so
			// each gets its own slice.
			k := appendPrefixKey(nil, p)
			switch c.Op {
			case rules.Added:
				b := c.Ban
				b.Prefix = p
				v, err := encodeBan(b)
				if err != nil {
					s.log.Warn("ban not stored: cannot encode it", "prefix", p, "err", err)
					continue
				}
				if err := bb.Put(k, v); err != nil {
					return err
				}
				if err := putHistory(hb, b); err != nil {
					return err
				}
			case rules.Removed:
				if err := bb.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("ban store batch written", "changes", len(changes), "seconds", time.Since(start).Seconds())
	}
	return nil
}

// resync makes the bans bucket equal to snap, a BanList snapshot, and
// records snap's jail bans in the history, in one transaction. Records
// that are already equal are not rewritten.
func (s *Store) resync(snap []rules.Ban, initial bool) error {
	type rec struct {
		k, v []byte
		b    rules.Ban
	}
	want := make([]rec, 0, len(snap))
	for _, b := range snap {
		p, ok := rules.CanonicalPrefix(b.Prefix)
		if !ok {
			continue
		}
		b.Prefix = p
		v, err := encodeBan(b)
		if err != nil {
			s.log.Warn("ban not stored: cannot encode it", "prefix", p, "err", err)
			continue
		}
		want = append(want, rec{appendPrefixKey(nil, p), v, b})
	}
	slices.SortStableFunc(want, func(a, b rec) int { return bytes.Compare(a.k, b.k) })
	// A snapshot holds each prefix once; keep the last if not.
	uniq := want[:0]
	for i, r := range want {
		if i+1 < len(want) && bytes.Equal(want[i+1].k, r.k) {
			continue
		}
		uniq = append(uniq, r)
	}
	want = uniq
	var puts, dels int
	err := s.db.Update(func(tx *bolt.Tx) error {
		bb, hb := tx.Bucket([]byte(bucketBans)), tx.Bucket([]byte(bucketHistory))
		var put []int
		var del [][]byte
		i := 0
		if err := bb.ForEach(func(k, v []byte) error {
			for i < len(want) && bytes.Compare(want[i].k, k) < 0 {
				put = append(put, i)
				i++
			}
			if i < len(want) && bytes.Equal(want[i].k, k) {
				if !bytes.Equal(want[i].v, v) {
					put = append(put, i)
				}
				i++
				return nil
			}
			del = append(del, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		for ; i < len(want); i++ {
			put = append(put, i)
		}
		if err := deleteKeys(bb, del); err != nil {
			return err
		}
		for _, j := range put {
			if err := bb.Put(want[j].k, want[j].v); err != nil {
				return err
			}
		}
		for _, r := range want {
			if err := putHistory(hb, r.b); err != nil {
				return err
			}
		}
		puts, dels = len(put), len(del)
		return nil
	})
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if initial {
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, "ban store resynced", "bans", len(want), "written", puts, "deleted", dels)
	return nil
}

// prune deletes the bans that ended at or before now, the history
// records past the forget window and, when more than maxHistory remain,
// the records whose ban ended first. It reads in a read-only transaction,
// so that Put is not held up by the scan, and deletes in a short write
// transaction that checks each record again.
func (s *Store) prune(now time.Time) error {
	var bans, hist [][]byte
	var keep []int64 // Until of the history records kept, Unix ns
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte(bucketBans)).ForEach(func(k, v []byte) error {
			if b, err := decodeBan(k, v); err == nil && !b.Until.After(now) {
				bans = append(bans, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketHistory)).ForEach(func(k, v []byte) error {
			h, err := decodeHistory(k, v)
			switch {
			case err != nil:
			case s.forgotten(h.Until, now):
				hist = append(hist, bytes.Clone(k))
			default:
				keep = append(keep, h.Until.UnixNano())
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("prune ban store: %w", err)
	}
	// Over the cap, also forget the records that ended at or before
	// cutoff: the oldest excess ones (ties may take a few more).
	cutoff := int64(math.MinInt64)
	if excess := len(keep) - s.maxHistory; excess > 0 {
		slices.Sort(keep)
		cutoff = keep[excess-1]
	}
	if len(bans) == 0 && len(hist) == 0 && cutoff == math.MinInt64 {
		return nil
	}
	var nb, nh int
	err = s.db.Update(func(tx *bolt.Tx) error {
		bb, hb := tx.Bucket([]byte(bucketBans)), tx.Bucket([]byte(bucketHistory))
		for _, k := range bans {
			if b, err := decodeBan(k, bb.Get(k)); err == nil && !b.Until.After(now) {
				if err := bb.Delete(k); err != nil {
					return err
				}
				nb++
			}
		}
		for _, k := range hist {
			if h, err := decodeHistory(k, hb.Get(k)); err == nil && s.forgotten(h.Until, now) {
				if err := hb.Delete(k); err != nil {
					return err
				}
				nh++
			}
		}
		if cutoff == math.MinInt64 {
			return nil
		}
		var old [][]byte
		if err := hb.ForEach(func(k, v []byte) error {
			if h, err := decodeHistory(k, v); err == nil && h.Until.UnixNano() <= cutoff {
				old = append(old, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		nh += len(old)
		return deleteKeys(hb, old)
	})
	if err != nil {
		return fmt.Errorf("prune ban store: %w", err)
	}
	s.log.Debug("ban store pruned", "bans", nb, "history", nh)
	return nil
}

func deleteKeys(b *bolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
