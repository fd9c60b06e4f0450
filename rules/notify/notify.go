package notify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/rules"
)

// Config configures a Notifier. At least one of Webhook and Email must be
// set.
type Config struct {
	// Webhook is the URL that receives a JSON POST per message; it must
	// be http:// or https://. "": no webhook. The URL is treated as a
	// secret (webhook URLs often carry a token in their path): logs and
	// errors name only its host.
	Webhook string
	// Email configures e-mail delivery. nil: no e-mail.
	Email *EmailConfig
	// MinInterval is the least time between two messages on one channel:
	// a ban arriving while the channel is quiet is sent at once, later
	// ones wait for the interval to pass and go out together as one
	// digest. Zero: 1 minute.
	MinInterval time.Duration
	// MaxPerDigest is how many bans one message lists; the rest are
	// counted ("omitted"). Zero: 100.
	MaxPerDigest int
	// Retries is how many times a failed delivery is retried: network
	// errors, timeouts, HTTP 5xx, 408 and 429, and SMTP 4xx replies are;
	// other failures are not. Zero: 3; negative: no retries.
	Retries int
	// Backoff is the wait before the first retry; it doubles for each
	// further one (1s, 2s, 4s by default). Zero: 1 second.
	Backoff time.Duration
	// Timeout bounds each delivery attempt: connecting, TLS, and the whole
	// HTTP exchange or SMTP session. Zero: 10 seconds.
	Timeout time.Duration
	// Node names this gatehouse in messages (the "node" JSON field, the
	// e-mail text and its EHLO greeting). "": the host name.
	Node string
	// NoteLines is how many request lines Note keeps per client address
	// (the most recent ones). Zero: 5.
	NoteLines int
	// NoteIPs is how many client addresses Note keeps lines for; the
	// least recently noted address is forgotten first. Zero: 1000.
	NoteIPs int
	// Log receives delivery failures (warn while retrying, error when
	// giving up) and successes (debug). nil: discard.
	Log *slog.Logger
	// HTTPClient posts the webhook. nil: a client of the Notifier's own
	// with Timeout, no proxy from the environment and no redirects
	// followed (a 3xx answer is a failure that is not retried).
	HTTPClient *http.Client
	// Now is the clock used for rate limiting and message dates. nil:
	// time.Now.
	Now func() time.Time
}

// EmailConfig configures delivery by e-mail. Messages are plain text,
// submitted over SMTP with STARTTLS: a server that does not offer it is
// refused, and credentials are only ever sent over TLS, unless Insecure
// is set.
type EmailConfig struct {
	// SMTP is the submission server, "host:port" (usually port 587).
	SMTP string
	// From is the sender address, in the header and the envelope.
	From string
	// To lists the recipients; at least one.
	To []string
	// Username and Password authenticate with AUTH PLAIN after STARTTLS.
	// Username "": no authentication. They are never logged.
	Username, Password string
	// RootCAs verifies the server's certificate, whose name must match
	// the host of SMTP. nil: the system roots.
	RootCAs *x509.CertPool
	// Insecure allows a server that does not offer STARTTLS: the message
	// then travels in clear text (STARTTLS is still used when offered).
	// Even then, net/smtp sends credentials in clear text only to a
	// server on localhost, 127.0.0.1 or ::1. Meant for a local MTA and
	// for tests; false in production.
	Insecure bool
}

const (
	defaultMinInterval  = time.Minute
	defaultMaxPerDigest = 100
	defaultRetries      = 3
	defaultBackoff      = time.Second
	defaultTimeout      = 10 * time.Second
	defaultNoteLines    = 5
	defaultNoteIPs      = 1000
)

// Notifier sends ban notifications. Create it with New, run its loop
// with Run, and feed it request context with Note. Safe for concurrent
// use; Run may only run once at a time.
type Notifier struct {
	now          func() time.Time
	log          *slog.Logger
	node         string
	minInterval  time.Duration
	maxPerDigest int
	retries      int
	backoff      time.Duration
	timeout      time.Duration
	senders      []sender
	closeIdle    func() // closes the idle connections of the client New made; nil if none
	recent       *recentLines
	running      atomic.Bool
}

// sender is one delivery channel. Implemented by webhook and mailer.
type sender interface {
	// name is the channel's log name: "webhook" or "email".
	name() string
	// send makes one delivery attempt of m, bounded by ctx. An error
	// that retrying cannot fix is a *permanentError.
	send(ctx context.Context, m *message) error
}

// permanentError marks a delivery failure that is not retried.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// New validates cfg, applies its defaults and returns a Notifier. It
// opens no connection. All problems are reported together.
func New(cfg Config) (*Notifier, error) {
	var errs []error
	if cfg.Webhook == "" && cfg.Email == nil {
		errs = append(errs, errors.New("neither webhook nor email is configured"))
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"min interval", cfg.MinInterval}, {"backoff", cfg.Backoff}, {"timeout", cfg.Timeout}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"max per digest", cfg.MaxPerDigest}, {"note lines", cfg.NoteLines}, {"note ips", cfg.NoteIPs}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d is negative", f.name, f.v))
		}
	}

	n := &Notifier{
		now:          cfg.Now,
		log:          cfg.Log,
		node:         cfg.Node,
		minInterval:  orDefault(cfg.MinInterval, defaultMinInterval),
		maxPerDigest: orDefault(cfg.MaxPerDigest, defaultMaxPerDigest),
		retries:      orDefault(cfg.Retries, defaultRetries),
		backoff:      orDefault(cfg.Backoff, defaultBackoff),
		timeout:      orDefault(cfg.Timeout, defaultTimeout),
	}
	if n.retries < 0 {
		n.retries = 0
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("component", "notify")
	if n.node == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "gatehouse"
		}
		n.node = h
	}
	if recent, err := newRecentLines(orDefault(cfg.NoteIPs, defaultNoteIPs), orDefault(cfg.NoteLines, defaultNoteLines)); err != nil {
		errs = append(errs, err) // a negative NoteIPs, reported above too
	} else {
		n.recent = recent
	}

	if cfg.Webhook != "" {
		client := cfg.HTTPClient
		if client == nil {
			client, n.closeIdle = newHTTPClient(n.timeout)
		}
		w, err := newWebhook(cfg.Webhook, client)
		if err != nil {
			errs = append(errs, err)
		} else {
			n.senders = append(n.senders, w)
		}
	}
	if cfg.Email != nil {
		m, err := newMailer(*cfg.Email, n.node, n.timeout)
		if err != nil {
			errs = append(errs, err)
		} else {
			n.senders = append(n.senders, m)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("configure notifications: %w", errors.Join(errs...))
	}
	return n, nil
}

// orDefault returns v, or def when v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Note records request lines (for example "GET /wp-login.php HTTP/1.1")
// that matched a rule for the client ip, so that a later message about a
// ban covering ip can show them. Call it before reporting the offence:
// the lines are taken when the ban reaches the notifier. It keeps the
// last Config.NoteLines lines of the last Config.NoteIPs addresses.
// Lines are made printable (control and format characters and invalid
// UTF-8 escaped) and cut to 512 bytes, marked as cut. Note on a nil Notifier
// does nothing, so callers may hold nil when notifications are off.
func (n *Notifier) Note(ip netip.Addr, lines ...string) {
	if n == nil {
		return
	}
	n.recent.add(ip, lines)
}

// entry is one ban in a message, with the request lines noted for it.
type entry struct {
	ban      rules.Ban
	requests []string
}

// message is what one delivery sends.
type message struct {
	time      time.Time
	node      string
	bans      []entry
	omitted   int  // bans not listed
	coalesced bool // the notifier fell behind and resynchronised: bans may be missing
}

// total is how many bans the message is about.
func (m *message) total() int { return len(m.bans) + m.omitted }

// batch is what a channel will send next.
type batch struct {
	bans      []entry
	index     map[netip.Prefix]int // position in bans, so a re-ban replaces its entry
	omitted   int
	coalesced bool
}

func (b *batch) empty() bool { return len(b.bans) == 0 && b.omitted == 0 && !b.coalesced }

func (b *batch) add(e entry, limit int) {
	if i, ok := b.index[e.ban.Prefix]; ok {
		if e.requests == nil {
			e.requests = b.bans[i].requests
		}
		b.bans[i] = e
		return
	}
	if len(b.bans) >= limit {
		b.omitted++
		return
	}
	if b.index == nil {
		b.index = make(map[netip.Prefix]int)
	}
	b.index[e.ban.Prefix] = len(b.bans)
	b.bans = append(b.bans, e)
}

// drop removes the entry of prefix p, if one waits.
func (b *batch) drop(p netip.Prefix) {
	i, ok := b.index[p]
	if !ok {
		return
	}
	b.bans = slices.Delete(b.bans, i, i+1)
	delete(b.index, p)
	for j := i; j < len(b.bans); j++ {
		b.index[b.bans[j].ban.Prefix] = j
	}
}

// outbox is one channel's state in Run; owned by Run's goroutine.
type outbox struct {
	s       sender
	pending batch
	last    time.Time // when the last message was handed over; zero: none yet
	busy    bool      // a delivery is in flight
}

// waiting reports whether o has something to send and no delivery in
// flight, and when it may send it.
func (o *outbox) waiting(interval time.Duration) (due time.Time, ok bool) {
	if o.busy || o.pending.empty() {
		return time.Time{}, false
	}
	return o.last.Add(interval), true
}

// ready reports whether o may send now: it is waiting, and it has sent
// nothing yet or its last message is at least interval old.
func (o *outbox) ready(now time.Time, interval time.Duration) bool {
	due, ok := o.waiting(interval)
	return ok && (o.last.IsZero() || !now.Before(due))
}

// Run consumes sub until ctx is done or sub is closed, and sends a
// message for every Added change (Removed changes are ignored, but a ban
// an escalated ban replaced, Change.By, leaves the message it waits for:
// the network's ban stands for it). On each
// channel the first ban is sent at once and later ones are gathered
// until Config.MinInterval has passed since the last message, then sent
// as one digest that lists Config.MaxPerDigest bans and counts the rest;
// a second ban of a prefix already waiting replaces its entry. Changes
// already queued on sub when a message is due go into that message.
//
// When sub overflows, Run calls Resync, drops the snapshot (it does not
// resend the active bans) and marks the next message of each channel as
// coalesced: the bans lost in between are not listed.
//
// Deliveries run in goroutines of Run's own, at most one per channel, so
// a slow server delays neither the other channel nor the consumption of
// sub. When ctx is done, Run stops retrying, waits for the deliveries in
// flight, sends what is still waiting at once with one attempt each
// (bounded by Config.Timeout), and returns nil. Run starts from the
// feed as it is; the caller need not call Resync first, since the bans
// active before Run are not news. Run returns an error if sub is nil or
// another Run is running.
func (n *Notifier) Run(ctx context.Context, sub *rules.Subscription) error {
	if sub == nil {
		return errors.New("run notifier: nil subscription")
	}
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("run notifier: already running")
	}
	defer n.running.Store(false)
	if n.closeIdle != nil {
		defer n.closeIdle()
	}

	r := &run{n: n, sub: sub, done: make(chan *outbox, len(n.senders))}
	for _, s := range n.senders {
		r.boxes = append(r.boxes, &outbox{s: s})
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		now := n.now()
		if r.anyDue(now) {
			if !r.drain() {
				return r.finish(ctx)
			}
			r.startDue(ctx, now)
		}
		if next, ok := r.nextDue(); ok {
			timer.Reset(max(next.Sub(now), 0))
		} else {
			timer.Stop()
		}
		select {
		case c, ok := <-sub.C:
			if !ok {
				return r.finish(ctx)
			}
			r.add(c)
		case <-sub.Overflow():
			r.resync()
		case o := <-r.done:
			o.busy = false
		case <-timer.C:
		case <-ctx.Done():
			r.drain()
			return r.finish(ctx)
		}
	}
}

// run is the state of one Run.
type run struct {
	n     *Notifier
	sub   *rules.Subscription
	boxes []*outbox
	done  chan *outbox // a finished delivery returns its outbox; room for one per box
	wg    sync.WaitGroup
}

func (r *run) add(c rules.Change) {
	if c.Op == rules.Removed && c.By.IsValid() {
		// Replaced by the escalated ban of its network, which came just
		// before: the message names the network instead.
		for _, o := range r.boxes {
			o.pending.drop(c.Ban.Prefix)
		}
		return
	}
	if c.Op != rules.Added {
		return
	}
	e := entry{ban: c.Ban, requests: r.n.recent.get(c.Ban.Prefix)}
	for _, o := range r.boxes {
		o.pending.add(e, r.n.maxPerDigest)
	}
}

func (r *run) resync() {
	// The snapshot is all active bans; listing them would flood the
	// operator with bans already reported. Saying that some were missed
	// is what we can honestly do.
	_ = r.sub.Resync()
	for _, o := range r.boxes {
		o.pending.coalesced = true
	}
	r.n.log.Warn("notifier fell behind the ban list; next message marks bans as coalesced")
}

// drain takes the changes already queued on the subscription (at most
// its capacity, as publishers keep adding) and a pending overflow, so a
// message about to be sent includes them. It reports false if the
// subscription was closed.
func (r *run) drain() bool {
queued:
	for range cap(r.sub.C) {
		select {
		case c, ok := <-r.sub.C:
			if !ok {
				return false
			}
			r.add(c)
		default:
			break queued
		}
	}
	select {
	case <-r.sub.Overflow():
		r.resync()
	default:
	}
	return true
}

func (r *run) anyDue(now time.Time) bool {
	for _, o := range r.boxes {
		if o.ready(now, r.n.minInterval) {
			return true
		}
	}
	return false
}

func (r *run) startDue(ctx context.Context, now time.Time) {
	for _, o := range r.boxes {
		if o.ready(now, r.n.minInterval) {
			m := r.n.message(&o.pending, now)
			o.pending = batch{}
			o.last, o.busy = now, true
			r.wg.Go(func() {
				r.n.deliver(ctx, o.s, m)
				r.done <- o
			})
		}
	}
}

// nextDue returns the earliest time a waiting channel may send.
func (r *run) nextDue() (time.Time, bool) {
	var next time.Time
	for _, o := range r.boxes {
		if due, ok := o.waiting(r.n.minInterval); ok && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	return next, !next.IsZero()
}

// finish waits for the deliveries in flight, then sends what is waiting
// at once, and returns nil.
func (r *run) finish(ctx context.Context) error {
	r.wg.Wait()
	now := r.n.now()
	for _, o := range r.boxes {
		if o.pending.empty() {
			continue
		}
		m := r.n.message(&o.pending, now)
		o.pending = batch{}
		r.wg.Go(func() { r.n.deliver(ctx, o.s, m) })
	}
	r.wg.Wait()
	return nil
}

func (n *Notifier) message(b *batch, now time.Time) *message {
	return &message{time: now, node: n.node, bans: b.bans, omitted: b.omitted, coalesced: b.coalesced}
}

// deliver sends m on s, retrying transient failures with exponential
// backoff until Retries are spent or ctx is done. Each attempt has its
// own Timeout and is not cut short by ctx, so a message being sent at
// shutdown gets its chance. Failures are logged here.
func (n *Notifier) deliver(ctx context.Context, s sender, m *message) {
	wait := n.backoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.timeout)
		err := s.send(actx, m)
		cancel()
		if err == nil {
			n.log.Debug("notification sent", "channel", s.name(), "bans", m.total(), "attempts", attempt)
			return
		}
		var perm *permanentError
		if errors.As(err, &perm) || attempt > n.retries || ctx.Err() != nil {
			n.log.Error("notification failed", "channel", s.name(), "bans", m.total(), "attempts", attempt, "error", err)
			return
		}
		n.log.Warn("notification attempt failed", "channel", s.name(), "bans", m.total(), "attempt", attempt,
			"retry_in_seconds", wait.Seconds(), "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			n.log.Error("notification failed", "channel", s.name(), "bans", m.total(), "attempts", attempt, "error", err)
			return
		case <-t.C:
		}
		wait *= 2
	}
}

// banDuration is how long b lasts in whole seconds, counted from when it
// was made (from now for a ban without Created).
func banDuration(b rules.Ban, now time.Time) time.Duration {
	from := b.Created
	if from.IsZero() {
		from = now
	}
	return b.Until.Sub(from).Round(time.Second)
}
