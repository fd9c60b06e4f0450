package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/rules"
)

// waitLimit bounds every wait in these tests; none is expected to come
// near it.
const waitLimit = 10 * time.Second

// fakeClock is Config.Now for tests: it only moves when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logRecorder is a slog handler that keeps the text of every record and
// sends each record's message on a channel, so tests can wait for "the
// notifier gave up" instead of sleeping.
type logRecorder struct {
	h    slog.Handler
	msgs chan string
	buf  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogRecorder() *logRecorder {
	buf := &lockedBuffer{}
	return &logRecorder{
		h:    slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
		msgs: make(chan string, 1024),
		buf:  buf,
	}
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(ctx context.Context, rec slog.Record) error {
	err := r.h.Handle(ctx, rec)
	select {
	case r.msgs <- rec.Message:
	default: // a test reading more than 1024 messages would fail by timing out
	}
	return err
}

func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{h: r.h.WithAttrs(as), msgs: r.msgs, buf: r.buf}
}

func (r *logRecorder) WithGroup(name string) slog.Handler {
	return &logRecorder{h: r.h.WithGroup(name), msgs: r.msgs, buf: r.buf}
}

func (r *logRecorder) logger() *slog.Logger { return slog.New(r) }

// wait reads log messages until one equals msg.
func (r *logRecorder) wait(t *testing.T, msg string) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		select {
		case m := <-r.msgs:
			if m == msg {
				return
			}
		case <-deadline.C:
			t.Fatalf("no log message %q within %s; log:\n%s", msg, waitLimit, r.buf)
		}
	}
}

// post is one request a receiver got.
type post struct {
	method, contentType, userAgent string
	body                           []byte
	payload                        webhookPayload
}

// receiver is a loopback webhook endpoint. Each request is answered with
// the next status from statuses (200 once they are used up) and then
// reported on posts.
type receiver struct {
	srv   *httptest.Server
	posts chan post
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{posts: make(chan post, 256)}
	var mu sync.Mutex
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		p := post{method: req.Method, contentType: req.Header.Get("Content-Type"), userAgent: req.Header.Get("User-Agent"), body: body}
		// A body that is not the payload shows up as a zero payload, and
		// the test's field checks fail.
		_ = json.Unmarshal(body, &p.payload)
		mu.Lock()
		status := http.StatusOK
		if len(statuses) > 0 {
			status, statuses = statuses[0], statuses[1:]
		}
		mu.Unlock()
		w.WriteHeader(status)
		r.posts <- p
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next waits for the next request.
func (r *receiver) next(t *testing.T) post {
	t.Helper()
	select {
	case p := <-r.posts:
		return p
	case <-time.After(waitLimit):
		t.Fatalf("no webhook request within %s", waitLimit)
		return post{}
	}
}

// rest returns the requests received and not yet read; call it once
// Run has returned, when no more can come.
func (r *receiver) rest() []post {
	var ps []post
	for {
		select {
		case p := <-r.posts:
			ps = append(ps, p)
		default:
			return ps
		}
	}
}

// started is a Notifier running on a fresh ban list.
type started struct {
	bans   *rules.BanList
	sub    *rules.Subscription
	n      *Notifier
	cancel context.CancelFunc
	errc   chan error
}

// start builds a Notifier from cfg and runs it on a new ban list whose
// subscription has room for buf changes (0: the default).
func start(t *testing.T, cfg Config, buf int) *started {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s := &started{bans: rules.NewBanList(rules.BanListConfig{}), n: n, errc: make(chan error, 1)}
	s.sub = s.bans.Subscribe(buf)
	t.Cleanup(s.sub.Close)
	ctx, cancel := context.WithCancel(t.Context())
	s.cancel = cancel
	go func() { s.errc <- n.Run(ctx, s.sub) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels Run and waits for it to return; after that no message
// can be sent. It may be called more than once.
func (s *started) stop(t *testing.T) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.errc:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Run did not return within %s of cancellation", waitLimit)
	}
}

// ban bans ip (an address or a prefix) for an hour by jail "probes" and
// returns the ban as stored. Until is in real time, as BanList reads the
// real clock.
func (s *started) ban(t *testing.T, ip string, count int) rules.Ban {
	t.Helper()
	var p netip.Prefix
	var err error
	if strings.Contains(ip, "/") {
		p, err = netip.ParsePrefix(ip)
	} else {
		var a netip.Addr
		a, err = netip.ParseAddr(ip)
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if err != nil {
		t.Fatalf("parse %q: %v", ip, err)
	}
	created := time.Now().UTC().Truncate(time.Second)
	b, err := s.bans.Ban(rules.Ban{Prefix: p, Jail: "probes", Reason: "probe", Until: created.Add(time.Hour), Count: count, Created: created})
	if err != nil {
		t.Fatalf("Ban(%s): %v", p, err)
	}
	return b
}
