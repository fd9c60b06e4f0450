package notify

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// maxNoteLen bounds one noted request line, in bytes, before the
// truncation mark.
const maxNoteLen = 512

// truncMark ends a noted line that was cut, so a reader knows it was.
const truncMark = "…[truncated]"

// recentLines keeps the last request lines noted per client address: at most
// lines lines for each of at most ips addresses, the least recently noted
// address evicted first. Safe for concurrent use: one mutex guards the
// LRU (golang-lru's simplelru, which has no lock of its own), the line
// sequence and the rings, which are changed in place.
type recentLines struct {
	mu    sync.Mutex
	lines int
	seq   uint64                                // orders lines across addresses
	lru   *simplelru.LRU[netip.Addr, *noteRing] // at most ips addresses
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

// newRecentLines returns notes for at most ips addresses of at most lines
// lines each; both must be positive.
func newRecentLines(ips, lines int) (*recentLines, error) {
	l, err := simplelru.NewLRU[netip.Addr, *noteRing](ips, nil)
	if err != nil {
		return nil, fmt.Errorf("recent request lines: %w", err)
	}
	return &recentLines{lines: lines, lru: l}, nil
}

// add records lines for ip. An invalid ip is ignored; an IPv4-mapped one
// is kept as IPv4, as the ban list keys it.
func (ns *recentLines) add(ip netip.Addr, lines []string) {
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
	r, ok := ns.lru.Get(ip) // marks ip most recently used
	if !ok {
		r = &noteRing{ip: ip, lines: make([]noteLine, 0, ns.lines)}
		ns.lru.Add(ip, r) // evicts the least recently noted address when full
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
func (ns *recentLines) get(p netip.Prefix) []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	var found []noteLine
	if p.IsSingleIP() {
		// Peek: reading a client's lines for a message is not a new note.
		if r, ok := ns.lru.Peek(p.Addr()); ok {
			found = r.ordered(nil)
		}
	} else {
		for _, r := range ns.lru.Values() {
			if p.Contains(r.ip) {
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
