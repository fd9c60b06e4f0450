package filter

import "time"

// Bounds of the per-connection memory, fail2ban's mlfidCache
// (Utils.Cache(maxCount=100, maxTime=5*60) in filter.py).
const (
	streamConns  = 100
	streamMaxAge = 5 * time.Minute
)

// Stream judges the lines of one log source in order. It remembers, per
// connection (<F-MLFID>), what earlier lines said, as fail2ban does: a
// helper line (<F-NOFAIL>) names the address, a later failure of the same
// connection without an address is blamed on it, and a success
// (<F-MLFGAINED>) or disconnect (<F-MLFFORGET>) settles the connection.
// It also carries the last timestamp to lines that have none. At most 100
// connections are remembered, and none longer than 5 minutes of log time
// after the line that began it: a line of a connection begun 5 minutes or
// more before its own timestamp finds nothing remembered, so a process id
// the system hands out again hours later does not inherit the address of
// its earlier connection. fail2ban's cache expires so by the wall clock;
// here the lines' own times decide, so that reading a log late or again
// judges it alike. A connection begun on a line without a time expires
// only when 100 newer ones push it out.
//
// A Stream is not safe for concurrent use; use one per source.
type Stream struct {
	f        *Filter
	conns    map[string]*failData
	lastDate time.Time
}

// NewStream returns a Stream over f with no remembered connections.
func (f *Filter) NewStream() *Stream {
	return &Stream{f: f, conns: make(map[string]*failData)}
}

// Match judges the next line of the source, taking its time from the line.
func (s *Stream) Match(line string) Result { return s.f.match(line, time.Time{}, s) }

// MatchAt judges the next line of the source whose time is known from
// elsewhere (the journal's __REALTIME_TIMESTAMP).
func (s *Stream) MatchAt(line string, t time.Time) Result { return s.f.match(line, t, s) }

// merge is fail2ban's Filter._mergeFailure: it folds the match fd into what
// the connection mlfid said before and decides whether the result is still
// only a helper (nofail). s may be nil (no memory).
func (s *Stream) merge(mlfid string, fd *failData, forget bool) *failData {
	const (
		fNoFail = 1 << iota
		fForget
		fWasNoFail
		fGained
	)
	var fl int
	if fd.gained {
		fl |= fGained | fNoFail
		fd.nofail = true
	} else if fd.nofail {
		fl |= fNoFail
	}
	if forget {
		fl |= fForget
	}
	var users []string
	var cached *failData
	if s != nil {
		cached = s.conns[mlfid]
		if cached != nil && expired(cached, fd.seen) {
			delete(s.conns, mlfid)
			cached = nil
		}
	}
	if cached != nil {
		g := cached
		users = g.addUser(fd.user)
		if g.nofail {
			g.nofail = false
			fl |= fWasNoFail
		}
		if g.gained {
			g.gained = false
			fl |= fWasNoFail
		}
		if fl&fGained != 0 {
			g.pending = false
		}
		g.update(fd)
		fd = g
		if fl&fForget != 0 {
			delete(s.conns, mlfid)
		}
	} else if fl&fForget == 0 {
		users = fd.addUser(fd.user)
		if s != nil {
			s.put(mlfid, fd)
		}
	}
	pending := fd.pending
	fd.pending = false
	if pending || len(users) > 1 {
		// Failures were pending, or the connection tried several users: a
		// helper line turns into a failure so that a success for one user
		// cannot hide attempts on others.
		fd.nofail = false
		fd.gained = false
	}
	return fd
}

func (d *failData) addUser(u string) []string {
	if u == "" {
		return d.users
	}
	for _, x := range d.users {
		if x == u {
			return d.users
		}
	}
	d.users = append(d.users, u)
	return d.users
}

// update copies into d what the newer match n captured.
func (d *failData) update(n *failData) {
	if n.has4 {
		d.ip4, d.has4 = n.ip4, true
	}
	if n.has6 {
		d.ip6, d.has6 = n.ip6, true
	}
	if n.hasDNS {
		d.dns, d.hasDNS = n.dns, true
	}
	if n.hasFID {
		d.fid, d.hasFID = n.fid, true
	}
	if n.hasUser {
		d.user, d.hasUser = n.user, true
	}
	if n.nofail {
		d.nofail = true
	}
	if n.gained {
		d.gained = true
	}
	if !n.seen.IsZero() {
		d.seen = n.seen
	}
}

// expired reports whether the connection c, read again on a line of time
// t, is past streamMaxAge. A zero time on either side never expires.
func expired(c *failData, t time.Time) bool {
	return !t.IsZero() && !c.born.IsZero() && t.Sub(c.born) >= streamMaxAge
}

// put remembers a connection, first dropping expired connections and, if
// still full, the oldest one.
func (s *Stream) put(mlfid string, fd *failData) {
	fd.born = fd.seen
	if len(s.conns) >= streamConns {
		var oldest string
		var ot time.Time
		for k, v := range s.conns {
			if expired(v, fd.born) {
				delete(s.conns, k)
				continue
			}
			if oldest == "" || v.born.Before(ot) {
				oldest, ot = k, v.born
			}
		}
		if len(s.conns) >= streamConns {
			delete(s.conns, oldest)
		}
	}
	s.conns[mlfid] = fd
}
