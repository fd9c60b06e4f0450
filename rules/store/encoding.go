package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"

	"gatehouse/rules"
)

// This file holds the on-disk form of bans and history entries and of
// their prefix keys; store.go holds what is done with them.

// A ban value (version 1) is a fixed header and two strings:
//
//	[0]      version, 1
//	[1:9]    Until, big-endian Unix nanoseconds (int64)
//	[9:17]   Created, the same
//	[17:21]  Count, big-endian uint32
//	[21]     length of Jail, n
//	[22:22+n] Jail
//	[22+n:]  Reason
//
// A history value (version 1) is the first 21 bytes of that. Binary
// rather than JSON: a ban storm writes and a start reads up to a million
// of them, and JSON made the file twice as large and Load four times as
// slow.
const (
	banHeaderLen = 1 + 8 + 8 + 4
	historyLen   = banHeaderLen
	maxJailLen   = math.MaxUint8
)

// appendHeader appends the version, Until, Created and Count of b.
func appendHeader(dst []byte, version byte, b rules.Ban) []byte {
	dst = append(dst, version)
	dst = binary.BigEndian.AppendUint64(dst, uint64(timeNano(b.Until)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(timeNano(b.Created)))
	return binary.BigEndian.AppendUint32(dst, uint32(min(max(b.Count, 0), math.MaxInt32)))
}

// readHeader fills Until, Created and Count of b from a value whose
// version and length the caller checked. It reports false for a Count
// that encodeBan cannot have written.
func readHeader(v []byte, b *rules.Ban) bool {
	b.Until = nanoTime(int64(binary.BigEndian.Uint64(v[1:])))
	b.Created = nanoTime(int64(binary.BigEndian.Uint64(v[9:])))
	n := binary.BigEndian.Uint32(v[17:])
	b.Count = int(n)
	return n <= math.MaxInt32
}

func encodeBan(b rules.Ban) ([]byte, error) {
	if len(b.Jail) > maxJailLen {
		return nil, fmt.Errorf("jail name of %d bytes is longer than %d", len(b.Jail), maxJailLen)
	}
	v := make([]byte, 0, banHeaderLen+1+len(b.Jail)+len(b.Reason))
	v = appendHeader(v, banVersion, b)
	v = append(v, byte(len(b.Jail)))
	v = append(v, b.Jail...)
	return append(v, b.Reason...), nil
}

func decodeBan(k, v []byte) (rules.Ban, error) {
	p, rest, err := parsePrefixKey(k)
	if err != nil {
		return rules.Ban{}, err
	}
	if len(rest) != 0 {
		return rules.Ban{}, fmt.Errorf("ban key %s: %d bytes after the prefix", hex.EncodeToString(k), len(rest))
	}
	if len(v) < banHeaderLen+1 || v[0] != banVersion || len(v) < banHeaderLen+1+int(v[banHeaderLen]) {
		return rules.Ban{}, fmt.Errorf("ban of %s: not a version %d record", p, banVersion)
	}
	b := rules.Ban{Prefix: p}
	if !readHeader(v, &b) {
		return rules.Ban{}, fmt.Errorf("ban of %s: count %d out of range", p, uint32(b.Count))
	}
	n := int(v[banHeaderLen])
	b.Jail = string(v[banHeaderLen+1 : banHeaderLen+1+n])
	b.Reason = string(v[banHeaderLen+1+n:])
	return b, nil
}

// encodeHistory returns the history value of b.
func encodeHistory(b rules.Ban) []byte {
	return appendHeader(make([]byte, 0, historyLen), historyVersion, b)
}

func decodeHistory(k, v []byte) (rules.Ban, error) {
	p, jail, err := parsePrefixKey(k)
	if err != nil {
		return rules.Ban{}, err
	}
	if len(jail) == 0 {
		return rules.Ban{}, fmt.Errorf("history of %s: no jail in the key", p)
	}
	if len(v) != historyLen || v[0] != historyVersion {
		return rules.Ban{}, fmt.Errorf("history of %s in jail %q: not a version %d record", p, jail, historyVersion)
	}
	h := rules.Ban{Prefix: p, Jail: string(jail)}
	if !readHeader(v, &h) {
		return rules.Ban{}, fmt.Errorf("history of %s in jail %q: count %d out of range", p, jail, uint32(h.Count))
	}
	return h, nil
}

// putHistory records b as its client's last ban by its jail, unless b is
// not a jail ban or the record holds a ban made after it.
func putHistory(hb *bolt.Bucket, b rules.Ban) error {
	if b.Jail == "" || b.Count < 1 {
		return nil
	}
	k := append(appendPrefixKey(nil, b.Prefix), b.Jail...)
	v := encodeHistory(b)
	if old := hb.Get(k); old != nil {
		if bytes.Equal(old, v) {
			return nil
		}
		if h, err := decodeHistory(k, old); err == nil && h.Created.After(b.Created) {
			return nil // a resync replaying an older ban
		}
	}
	return hb.Put(k, v)
}

// Key of a prefix: family (4 or 6), the masked address (4 or 16 bytes),
// the prefix length. Keys sort IPv4 first, then by address and length.
const (
	family4 = 4
	family6 = 6
)

func appendPrefixKey(dst []byte, p netip.Prefix) []byte {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		dst = append(append(dst, family4), b[:]...)
	} else {
		b := a.As16()
		dst = append(append(dst, family6), b[:]...)
	}
	return append(dst, byte(p.Bits()))
}

// parsePrefixKey returns the prefix a key starts with and the rest of it.
func parsePrefixKey(k []byte) (netip.Prefix, []byte, error) {
	var a netip.Addr
	var n int
	switch {
	case len(k) >= 1+4+1 && k[0] == family4:
		a, n = netip.AddrFrom4([4]byte(k[1:5])), 5
	case len(k) >= 1+16+1 && k[0] == family6:
		a, n = netip.AddrFrom16([16]byte(k[1:17])), 17
	default:
		return netip.Prefix{}, nil, fmt.Errorf("key %s: not a prefix key", hex.EncodeToString(k))
	}
	p := netip.PrefixFrom(a, int(k[n]))
	if !p.IsValid() || p.Masked() != p {
		return netip.Prefix{}, nil, fmt.Errorf("key %s: not a masked prefix", hex.EncodeToString(k))
	}
	return p, k[n+1:], nil
}

// timeNano is t as Unix nanoseconds, saturated outside the years
// 1678-2262 as BanList keeps times; the zero time is math.MinInt64, which
// nanoTime turns back into the zero time.
func timeNano(t time.Time) int64 {
	switch {
	case t.IsZero(), !t.After(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// nanoTime is the inverse of timeNano, in UTC.
func nanoTime(ns int64) time.Time {
	if ns == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
