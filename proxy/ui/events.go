package ui

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"gatehouse/rules"
)

// Event stream timing.
const (
	eventTick      = time.Second      // how often the stream looks for news
	statsEvery     = 2                // ticks between stats events
	topEvery       = 10               // ticks between top events
	recheckEvery   = 10               // ticks between session checks
	eventWriteWait = 10 * time.Second // a browser that reads no event for this long is dropped
	maxOffenceSend = 50               // offences per tick at most
	banEventBuffer = 256              // ban changes queued for one stream
)

// banEvent is the ban event's payload.
type banEvent struct {
	Op  string `json:"op"` // "added" or "removed"
	Ban banRow `json:"ban"`
}

// topEvent is the top event's payload.
type topEvent struct {
	Paths []TopEntry `json:"paths"`
	Nets  []TopEntry `json:"nets"`
}

// events streams the updates of the page that opened it, as Server-Sent
// Events: stats (overview), ban (bans page: every change of the ban
// list), offence and top (offences page), resync (bans changed faster
// than a stream carries: reload), signedout (the session ended). The
// stream ends when the browser leaves, its session ends, or the gateway
// shuts down.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.signedIn(r); !ok {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	select {
	case h.streams <- struct{}{}:
		defer func() { <-h.streams }()
	default:
		http.Error(w, "too many open dashboards", http.StatusServiceUnavailable)
		return
	}
	q := r.URL.Query()
	page := q.Get("page")
	seq, _ := strconv.ParseUint(q.Get("since"), 10, 64) // 0 on error: recent offences

	// Subscribed before the stream opens: a change made once the browser
	// sees the stream is on it.
	var sub *rules.Subscription
	var changes <-chan rules.Change
	var overflow <-chan struct{}
	subscribe := func() {
		sub = h.cfg.Bans.Subscribe(banEventBuffer)
		changes, overflow = sub.C, sub.Overflow()
	}
	if page == "bans" {
		subscribe()
		defer func() { sub.Close() }()
	}
	rc := http.NewResponseController(w)
	// The admin server has no write timeout; leave none behind for the
	// connection's next request.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		// An error only means the browser is gone or stalled.
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteWait))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	send := func(event string, payload any) bool {
		data, err := json.Marshal(payload)
		if err != nil {
			h.cfg.Log.Error("encode dashboard event", "event", event, "error", err)
			return false
		}
		b := make([]byte, 0, len(event)+len(data)+16)
		b = append(b, "event: "...)
		b = append(b, event...)
		b = append(b, "\ndata: "...)
		b = append(b, data...)
		b = append(b, "\n\n"...)
		return write(b)
	}
	if !write([]byte("retry: 3000\n\n")) {
		return
	}

	if page == "overview" && !send("stats", h.overviewData(r.Context())) {
		return
	}

	tick := time.NewTicker(eventTick)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-r.Context().Done():
			return
		case <-h.cfg.Stats.Done():
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			if !send("ban", banEvent{Op: c.Op.String(), Ban: newBanRow(c.Ban, h.now())}) {
				return
			}
			continue
		case <-overflow:
			// A fresh subscription, not Resync: a snapshot of a million
			// bans is the page's business, not the stream's.
			sub.Close()
			subscribe()
			if !send("resync", struct{}{}) {
				return
			}
			continue
		case <-tick.C:
		}
		if n%recheckEvery == 0 {
			if _, ok := h.signedIn(r); !ok {
				send("signedout", struct{}{})
				return
			}
		}
		switch page {
		case "overview":
			if n%statsEvery == 0 && !send("stats", h.overviewData(r.Context())) {
				return
			}
		case "offences":
			latest, newest := h.cfg.Stats.Latest(seq, maxOffenceSend)
			seq = newest
			for i := len(latest) - 1; i >= 0; i-- { // oldest first: the page prepends
				if !send("offence", newOffenceRow(latest[i])) {
					return
				}
			}
			if n%topEvery == 0 {
				var te topEvent
				te.Paths, te.Nets = h.cfg.Stats.Top(h.now(), topShown)
				if !send("top", te) {
					return
				}
			}
		}
	}
}
