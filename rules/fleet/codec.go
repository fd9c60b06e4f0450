package fleet

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// keys are the Redis keys of one fleet. All of them carry the prefix as a
// hash tag ("{gh}:bans"), so they live in one slot and the Lua scripts
// may touch them together on Redis Cluster too.
type keys struct {
	tag    string // "{gh}:"
	bans   string // hash: prefix → ban value
	exp    string // sorted set: prefix by ban end (µs)
	unbans string // hash: prefix → tombstone value
	unexp  string // sorted set: prefix by tombstone end (µs)
	stream string // change stream, capped with MAXLEN ~
	epoch  string // random ID of the data set
	nodes  string // hash: node → JSON heartbeat
}

func newKeys(prefix string) keys {
	t := "{" + prefix + "}:"
	return keys{
		tag:    t,
		bans:   t + "bans",
		exp:    t + "bans:exp",
		unbans: t + "unbans",
		unexp:  t + "unbans:exp",
		stream: t + "changes",
		epoch:  t + "epoch",
		nodes:  t + "nodes",
	}
}

// offences is the sorted set of a client's recent offences against jail.
func (k keys) offences(jail, client string) string { return k.tag + "off:" + jail + ":" + client }

// history holds a client's last ban by jail: "until|count".
func (k keys) history(jail, client string) string { return k.tag + "hist:" + jail + ":" + client }

// banValue is a ban as the fleet stores it, times in microseconds on
// Redis's clock. Its text form, which the Lua scripts read too, is
//
//	until|rev|count|node|len:jail|reason
//
// where rev is when the ban was made (its revision: a ban and an unban of
// one prefix resolve last-writer-wins on it), len is the jail name's
// length in bytes (so a jail may hold any byte), and the reason is the
// rest. Node names hold no "|".
type banValue struct {
	Until  int64
	Rev    int64
	Count  int
	Node   string
	Jail   string
	Reason string
}

func (v banValue) String() string {
	var b strings.Builder
	b.Grow(48 + len(v.Node) + len(v.Jail) + len(v.Reason))
	b.WriteString(strconv.FormatInt(v.Until, 10))
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(v.Rev, 10))
	b.WriteByte('|')
	b.WriteString(strconv.Itoa(v.Count))
	b.WriteByte('|')
	b.WriteString(v.Node)
	b.WriteByte('|')
	b.WriteString(strconv.Itoa(len(v.Jail)))
	b.WriteByte(':')
	b.WriteString(v.Jail)
	b.WriteByte('|')
	b.WriteString(v.Reason)
	return b.String()
}

var errValue = errors.New("malformed fleet value")

// parseBanValue parses the text form of a ban value.
func parseBanValue(s string) (banValue, error) {
	var v banValue
	var err error
	fields := make([]string, 0, 4)
	rest := s
	for range 4 {
		f, r, ok := strings.Cut(rest, "|")
		if !ok {
			return banValue{}, fmt.Errorf("ban value %q: %w: too few fields", s, errValue)
		}
		fields, rest = append(fields, f), r
	}
	if v.Until, err = parseMicros(fields[0]); err != nil {
		return banValue{}, fmt.Errorf("ban value %q: until: %w", s, err)
	}
	if v.Rev, err = parseMicros(fields[1]); err != nil {
		return banValue{}, fmt.Errorf("ban value %q: rev: %w", s, err)
	}
	c, err := strconv.ParseUint(fields[2], 10, 16)
	if err != nil || !digits(fields[2]) {
		return banValue{}, fmt.Errorf("ban value %q: %w: count %q", s, errValue, fields[2])
	}
	v.Count = int(c)
	v.Node = fields[3]
	n, jr, ok := strings.Cut(rest, ":")
	ln, err := strconv.ParseUint(n, 10, 8)
	if !ok || err != nil || !digits(n) || int(ln) >= len(jr) || jr[ln] != '|' {
		return banValue{}, fmt.Errorf("ban value %q: %w: jail", s, errValue)
	}
	v.Jail, v.Reason = jr[:ln], jr[ln+1:]
	return v, nil
}

// tombValue is an unban as the fleet keeps it: its revision, until when
// the tombstone is kept, and the node that made it. Text form:
// "rev|keep|node".
type tombValue struct {
	Rev  int64
	Keep int64
	Node string
}

func (t tombValue) String() string {
	return strconv.FormatInt(t.Rev, 10) + "|" + strconv.FormatInt(t.Keep, 10) + "|" + t.Node
}

func parseTombValue(s string) (tombValue, error) {
	r, rest, ok1 := strings.Cut(s, "|")
	k, node, ok2 := strings.Cut(rest, "|")
	if !ok1 || !ok2 {
		return tombValue{}, fmt.Errorf("tombstone %q: %w", s, errValue)
	}
	var t tombValue
	var err error
	if t.Rev, err = parseMicros(r); err != nil {
		return tombValue{}, fmt.Errorf("tombstone %q: rev: %w", s, err)
	}
	if t.Keep, err = parseMicros(k); err != nil {
		return tombValue{}, fmt.Errorf("tombstone %q: keep: %w", s, err)
	}
	t.Node = node
	return t, nil
}

// maxMicros bounds times: Lua numbers are doubles, exact up to 2^53 µs
// (the year 2255).
const maxMicros = 1 << 53

// parseMicros parses a non-negative decimal count of microseconds that
// a Lua double holds exactly.
func parseMicros(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || !digits(s) || n > maxMicros {
		return 0, fmt.Errorf("%w: %q is not a time in microseconds", errValue, s)
	}
	return n, nil
}

// digits reports whether s is a non-empty run of ASCII digits without a
// superfluous leading zero, so that each number has one text form.
func digits(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseClient parses a prefix as the fleet writes it (netip.Prefix's
// String of a masked prefix, IPv4 not mapped) and refuses any other form.
func parseClient(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Masked() != p || p.Addr().Is4In6() || p.String() != s {
		return netip.Prefix{}, fmt.Errorf("%w: %q is not a masked prefix", errValue, s)
	}
	return p, nil
}

// compareIDs compares two stream IDs ("ms-seq"); a malformed ID sorts first.
func compareIDs(a, b string) int {
	am, as := splitID(a)
	bm, bs := splitID(b)
	switch {
	case am != bm:
		return cmpU(am, bm)
	default:
		return cmpU(as, bs)
	}
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func splitID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}
