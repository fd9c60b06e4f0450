package rules

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// stateMagic starts what AppendState writes; the digit is its version.
const stateMagic = "GHJAILS2"

// AppendState appends to dst the per-client state of every counting jail
// (each tracked client's offence times within FindTime and its ban
// history), for RestoreState after a restart: offences counted before it
// keep counting, so a client cannot reset its count by getting the
// gateway restarted. Jails shared fleet-wide are counted in the fleet
// and left out. It takes each shard's lock in turn, never two at once;
// offences reported meanwhile may or may not be in it. now drops offence
// times already outside FindTime.
func (j *Jails) AppendState(dst []byte, now time.Time) []byte {
	dst = append(dst, stateMagic...)
	dst = binary.AppendUvarint(dst, uint64(j.v6bits))
	names := slices.Sorted(maps.Keys(j.jails))
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	nowNs := unixNano(now)
	for _, name := range names {
		jl := j.jails[name]
		dst = binary.AppendUvarint(dst, uint64(len(name)))
		dst = append(dst, name...)
		if jl.shared {
			dst = append(dst, 0, 0, 0, 0) // no clients
			continue
		}
		// The count is patched in once the shards have been walked.
		at := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		var times []int64
		n := uint32(0)
		for si := range jl.clients.shards {
			sh := &jl.clients.shards[si]
			sh.mu.Lock()
			for i, slot := range sh.slots {
				st := slot.state
				ring := sh.lanes[i*jl.ring : (i+1)*jl.ring]
				times = times[:0]
				for k := range int(st.n) {
					if t := ring[(int(st.head)+k)%len(ring)]; nowNs-t <= jl.findTime {
						times = append(times, t)
					}
				}
				if len(times) == 0 && (st.lastUntil == 0 || nowNs-st.lastUntil > jl.forget) {
					continue
				}
				dst = binary.BigEndian.AppendUint64(dst, slot.key.hi)
				dst = binary.BigEndian.AppendUint64(dst, slot.key.lo)
				dst = binary.AppendVarint(dst, st.lastUntil)
				dst = binary.AppendUvarint(dst, uint64(st.bans))
				dst = binary.AppendUvarint(dst, uint64(len(times)))
				for _, t := range times {
					dst = binary.AppendVarint(dst, t)
				}
				n++
			}
			sh.mu.Unlock()
		}
		binary.BigEndian.PutUint32(dst[at:], n)
	}
	return dst
}

// RestoreState merges what AppendState saved into j, before j counts
// anything: each client's offence times and ban history go to the jail
// of the same name, as HandOver carries them across a reload (jails no
// longer configured are dropped, allowed clients too, IPv6 clients only
// when ipv6_prefix is unchanged). It returns how many clients it took.
// An escalating jail counts the offence times it takes towards their
// networks again (see Escalate): the networks' own counts are not
// saved, since the clients' offences make them up.
// Data it cannot read is an error and j is left as it was: the whole
// state is read before any of it is taken.
func (j *Jails) RestoreState(data []byte) (int, error) {
	type record struct {
		jl   *jail
		k    clientKey
		st   offenceState
		ring []int64
	}
	r := stateReader{b: data}
	if string(r.bytes(len(stateMagic))) != stateMagic {
		return 0, errors.New("jail state: not a jail state file (or a newer version)")
	}
	v6bits := int(r.uvarint())
	njails := r.uvarint()
	var recs []record
	for range njails {
		if r.err != nil {
			break
		}
		jl := j.jails[string(r.bytes(int(r.uvarint())))]
		n := r.uint32()
		for range n {
			k := clientKey{r.uint64(), r.uint64()}
			st := offenceState{lastUntil: r.varint(), bans: uint16(min(r.uvarint(), 1<<16-1))}
			nt := r.uvarint()
			if r.err != nil || nt > maxMaxRetry {
				r.fail()
				break
			}
			ring := make([]int64, nt)
			for i := range ring {
				ring[i] = r.varint()
			}
			ip := wordsAddr(k.hi, k.lo).Unmap()
			if r.err != nil || jl == nil || jl.shared || ip.Is6() && v6bits != j.v6bits || j.allowed(ip) {
				continue
			}
			st.n = uint16(nt)
			recs = append(recs, record{jl, k, st, ring})
		}
	}
	if r.err != nil {
		return 0, fmt.Errorf("jail state: %w", r.err)
	}
	var scratch []int64
	var offences []netOffence
	for _, rec := range recs {
		scratch = rec.jl.adopt(rec.k, rec.st, rec.ring, scratch)
		if x := rec.jl.esc; x != nil && x.offences != 0 {
			for _, t := range rec.ring {
				offences = append(offences, netOffence{rec.jl, rec.k, t})
			}
		}
	}
	j.restoreNetworkOffences(offences)
	return len(recs), nil
}

// stateReader reads AppendState's encoding; the first fault sticks.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) fail() {
	if r.err == nil {
		r.err = errors.New("truncated or corrupt")
	}
	r.b = nil
}

func (r *stateReader) bytes(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *stateReader) uint64() uint64 {
	b := r.bytes(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (r *stateReader) uint32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *stateReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}
