package notify

import (
	"container/list"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// maxNoteLen bounds one noted request line, in bytes, before the
// truncation mark.
const maxNoteLen = 512

// truncMark ends a noted line that was cut, so a reader knows it was.
const truncMark = "…[truncated]"

// notes keeps the last request lines noted per client address: at most
// lines lines for each of at most ips addresses, the least recently noted
// address evicted first. Safe for concurrent use.
type notes struct {
	mu    sync.Mutex
	ips   int
	lines int
	seq   uint64                       // orders lines across addresses
	m     map[netip.Addr]*list.Element // Value is *noteRing
	lru   list.List                    // front: most recently noted
}

// noteRing is the recent lines of one address, oldest first once full
// wraps: lines[next] is the oldest.
type noteRing struct {
	ip    netip.Addr
	lines []noteLine
	next  int
}

type noteLine struct {
	seq  uint64
	text string
}

func newNotes(ips, lines int) *notes {
	return &notes{ips: ips, lines: lines, m: make(map[netip.Addr]*list.Element)}
}

// add records lines for ip. An invalid ip is ignored; an IPv4-mapped one
// is kept as IPv4, as the ban list keys it.
func (ns *notes) add(ip netip.Addr, lines []string) {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || len(lines) == 0 {
		return
	}
	if len(lines) > ns.lines {
		lines = lines[len(lines)-ns.lines:]
	}
	clean := make([]string, len(lines))
	for i, l := range lines {
		clean[i] = printable(l, maxNoteLen)
	}

	ns.mu.Lock()
	defer ns.mu.Unlock()
	var r *noteRing
	if el, ok := ns.m[ip]; ok {
		ns.lru.MoveToFront(el)
		r = el.Value.(*noteRing)
	} else {
		if ns.lru.Len() >= ns.ips {
			old := ns.lru.Back()
			ns.lru.Remove(old)
			delete(ns.m, old.Value.(*noteRing).ip)
		}
		r = &noteRing{ip: ip, lines: make([]noteLine, 0, ns.lines)}
		ns.m[ip] = ns.lru.PushFront(r)
	}
	for _, l := range clean {
		ns.seq++
		nl := noteLine{seq: ns.seq, text: l}
		if len(r.lines) < ns.lines {
			r.lines = append(r.lines, nl)
			continue
		}
		r.lines[r.next] = nl
		r.next = (r.next + 1) % len(r.lines)
	}
}

// get returns the last lines noted for the addresses in p, oldest first,
// or nil. For a prefix of more than one address (an IPv6 /64 ban) it
// merges the lines of every noted address inside it.
func (ns *notes) get(p netip.Prefix) []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	var found []noteLine
	if p.IsSingleIP() {
		if el, ok := ns.m[p.Addr()]; ok {
			found = el.Value.(*noteRing).ordered(nil)
		}
	} else {
		for el := ns.lru.Front(); el != nil; el = el.Next() {
			if r := el.Value.(*noteRing); p.Contains(r.ip) {
				found = r.ordered(found)
			}
		}
		slices.SortFunc(found, func(a, b noteLine) int {
			switch {
			case a.seq < b.seq:
				return -1
			case a.seq > b.seq:
				return 1
			}
			return 0
		})
		if len(found) > ns.lines {
			found = found[len(found)-ns.lines:]
		}
	}
	if len(found) == 0 {
		return nil
	}
	out := make([]string, len(found))
	for i, l := range found {
		out[i] = l.text
	}
	return out
}

// ordered appends r's lines to dst, oldest first.
func (r *noteRing) ordered(dst []noteLine) []noteLine {
	dst = append(dst, r.lines[r.next:]...)
	return append(dst, r.lines[:r.next]...)
}

// printable makes s safe to show in a mail or a terminal: invalid UTF-8
// bytes become \xNN, control and format characters (CR, LF, ESC, bidi
// overrides, zero-width characters) become \u{NNNN} escapes, and the
// result is cut to at most limit bytes at a character boundary, followed
// by truncMark. Client-sent text is never shown raw.
func printable(s string, limit int) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.In(r, unicode.Cc, unicode.Cf) {
			clean = false
			break
		}
	}
	if clean && len(s) <= limit {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && size <= 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case unicode.In(r, unicode.Cc, unicode.Cf):
			piece = fmt.Sprintf(`\u{%04x}`, r)
		default:
			piece = s[i : i+size]
		}
		if b.Len()+len(piece) > limit {
			b.WriteString(truncMark)
			return b.String()
		}
		b.WriteString(piece)
		i += size
	}
	return b.String()
}
