package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"

	"gatehouse/rules"
)

// The fleet journal (rules/fleet) lives in two more buckets of the same
// file, created on first use, so a node's ban, its history and the note
// that the fleet must hear of it are written in one transaction:
//
//   - "outbox": bans and unbans made on this node that the fleet has not
//     acknowledged yet. Key: the prefix key (as in "bans"), so a newer
//     change of a prefix replaces an older one still waiting: ban and
//     unban resolve last-writer-wins in the fleet, so only the newest
//     matters. Value: the op byte (1 ban, 2 unban), At as big-endian
//     Unix nanoseconds, and for a ban the ban value as in "bans".
//   - "fleet": key "cursor", the fleet's epoch and the ID of the last
//     change-stream entry this node applied, "epoch\x00id".
const (
	bucketOutbox = "outbox"
	bucketFleet  = "fleet"
	keyCursor    = "cursor"

	outboxBan   = 1
	outboxUnban = 2
	outboxHead  = 1 + 8
)

// OutboxEntry is a ban or unban made on this node and waiting to be
// pushed to the fleet.
type OutboxEntry struct {
	// Unban is set for an unban, whose Ban holds only the Prefix.
	Unban bool
	// Ban is the ban (for an unban: its prefix).
	Ban rules.Ban
	// At is when the change was made, on this node's clock: the ban's
	// Created, or the time of the unban. The fleet orders a ban and an
	// unban of one prefix by it.
	At time.Time

	v []byte // the stored value, for Dequeue's compare-and-delete
}

// Cursor is where a node stands in the fleet's change stream.
type Cursor struct {
	// Epoch identifies the fleet's data set: a Redis that lost its data
	// gets a new one.
	Epoch string
	// StreamID is the ID of the last change-stream entry applied.
	StreamID string
}

func encodeOutbox(e OutboxEntry) ([]byte, error) {
	op := byte(outboxBan)
	if e.Unban {
		op = outboxUnban
	}
	v := binary.BigEndian.AppendUint64([]byte{op}, uint64(timeNano(e.At)))
	if e.Unban {
		return v, nil
	}
	b, err := encodeBan(e.Ban)
	if err != nil {
		return nil, err
	}
	return append(v, b...), nil
}

func decodeOutbox(k, v []byte) (OutboxEntry, error) {
	p, rest, err := parsePrefixKey(k)
	if err != nil {
		return OutboxEntry{}, err
	}
	if len(rest) != 0 || len(v) < outboxHead {
		return OutboxEntry{}, fmt.Errorf("outbox record of %s: malformed", p)
	}
	e := OutboxEntry{At: nanoTime(int64(binary.BigEndian.Uint64(v[1:9]))), v: v}
	switch v[0] {
	case outboxUnban:
		if len(v) != outboxHead {
			return OutboxEntry{}, fmt.Errorf("outbox unban of %s: %d bytes after the header", p, len(v)-outboxHead)
		}
		e.Unban, e.Ban = true, rules.Ban{Prefix: p}
	case outboxBan:
		b, err := decodeBan(k, v[outboxHead:])
		if err != nil {
			return OutboxEntry{}, fmt.Errorf("outbox %w", err)
		}
		e.Ban = b
	default:
		return OutboxEntry{}, fmt.Errorf("outbox record of %s: op %d", p, v[0])
	}
	return e, nil
}

// queue writes e into the outbox bucket of tx.
func queue(tx *bolt.Tx, p netip.Prefix, e OutboxEntry) error {
	ob, err := tx.CreateBucketIfNotExists([]byte(bucketOutbox))
	if err != nil {
		return err
	}
	e.Ban.Prefix = p
	v, err := encodeOutbox(e)
	if err != nil {
		return err
	}
	k := appendPrefixKey(nil, p)
	// The outbox is last-writer-wins too: a snapshot queued late must
	// not replace a newer unban waiting there.
	if old := ob.Get(k); len(old) >= outboxHead && int64(binary.BigEndian.Uint64(old[1:9])) > timeNano(e.At) {
		return nil
	}
	return ob.Put(k, v)
}

// PutQueued is Put and Queue of the ban in one transaction: the ban is
// stored, recorded in the history, and waits in the outbox for the
// fleet. It is durable when it returns.
func (s *Store) PutQueued(b rules.Ban) error { return s.put(b, true) }

// DeleteQueued is Delete of prefix p and the queueing of its unban, made
// at at, in one transaction. It is durable when it returns.
func (s *Store) DeleteQueued(p netip.Prefix, at time.Time) error { return s.delete(p, true, at) }

// Queue adds entries to the outbox in one transaction, each replacing
// the entry of the same prefix. Entries with an invalid prefix or a ban
// that cannot be encoded are refused before anything is written.
func (s *Store) Queue(entries []OutboxEntry) error {
	type rec struct {
		p netip.Prefix
		e OutboxEntry
	}
	recs := make([]rec, 0, len(entries))
	for _, e := range entries {
		p, ok := rules.CanonicalPrefix(e.Ban.Prefix)
		if !ok {
			return fmt.Errorf("queue %s: invalid prefix", e.Ban.Prefix)
		}
		if _, err := encodeOutbox(e); err != nil {
			return fmt.Errorf("queue %s: %w", p, err)
		}
		recs = append(recs, rec{p, e})
	}
	if len(recs) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, r := range recs {
			if err := queue(tx, r.p, r.e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue %d fleet changes: %w", len(recs), err)
	}
	return nil
}

// Outbox returns up to max entries of the outbox (max < 1: all), in key
// order, and how many it holds in all. Unreadable records are dropped
// (and logged).
func (s *Store) Outbox(max int) ([]OutboxEntry, int, error) {
	var out []OutboxEntry
	var bad [][]byte
	total := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		ob := tx.Bucket([]byte(bucketOutbox))
		if ob == nil {
			return nil
		}
		total = ob.Stats().KeyN
		c := ob.Cursor()
		for k, v := c.First(); k != nil && (max < 1 || len(out) < max); k, v = c.Next() {
			e, err := decodeOutbox(k, v)
			if err != nil {
				s.log.Warn("dropping unreadable outbox record", "err", err)
				bad = append(bad, bytes.Clone(k))
				continue
			}
			e.v = bytes.Clone(v)
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read outbox of %s: %w", s.path, err)
	}
	if len(bad) > 0 {
		err = s.db.Update(func(tx *bolt.Tx) error { return deleteKeys(tx.Bucket([]byte(bucketOutbox)), bad) })
		if err != nil {
			return nil, 0, fmt.Errorf("drop unreadable outbox records of %s: %w", s.path, err)
		}
		total -= len(bad)
	}
	return out, total, nil
}

// Dequeue removes entries, as returned by Outbox, that the fleet has
// acknowledged; an entry replaced since (a newer change of its prefix)
// stays.
func (s *Store) Dequeue(entries []OutboxEntry) error {
	if len(entries) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket([]byte(bucketOutbox))
		if ob == nil {
			return nil
		}
		for _, e := range entries {
			p, ok := rules.CanonicalPrefix(e.Ban.Prefix)
			if !ok {
				continue
			}
			k := appendPrefixKey(nil, p)
			if v := ob.Get(k); v != nil && bytes.Equal(v, e.v) {
				if err := ob.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dequeue %d fleet changes: %w", len(entries), err)
	}
	return nil
}

// Cursor returns the saved fleet cursor; the zero Cursor if none was saved.
func (s *Store) Cursor() (Cursor, error) {
	var c Cursor
	err := s.db.View(func(tx *bolt.Tx) error {
		fb := tx.Bucket([]byte(bucketFleet))
		if fb == nil {
			return nil
		}
		v := fb.Get([]byte(keyCursor))
		if v == nil {
			return nil
		}
		epoch, id, ok := bytes.Cut(v, []byte{0})
		if !ok {
			return errors.New("malformed cursor record")
		}
		c = Cursor{Epoch: string(epoch), StreamID: string(id)}
		return nil
	})
	if err != nil {
		return Cursor{}, fmt.Errorf("read fleet cursor of %s: %w", s.path, err)
	}
	return c, nil
}

// SetCursor saves c, durably.
func (s *Store) SetCursor(c Cursor) error {
	if bytes.IndexByte([]byte(c.Epoch), 0) >= 0 {
		return fmt.Errorf("save fleet cursor: epoch %q holds a NUL byte", c.Epoch)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		fb, err := tx.CreateBucketIfNotExists([]byte(bucketFleet))
		if err != nil {
			return err
		}
		return fb.Put([]byte(keyCursor), []byte(c.Epoch+"\x00"+c.StreamID))
	})
	if err != nil {
		return fmt.Errorf("save fleet cursor to %s: %w", s.path, err)
	}
	return nil
}
