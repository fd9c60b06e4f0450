package middleware

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"gatehouse/rules"
)

// LimitConfig configures one named rate limit (limits.rates.NAME): a
// Limiter.
type LimitConfig struct {
	// Name is the limit's name, in the RateLimit headers, the log and the
	// offence. Required.
	Name string
	// Rate is the sustained rate in requests per second. Required (> 0).
	Rate float64
	// Window and Quota are the rate as written, Quota requests per Window
	// seconds (1 for "r/s", 60 for "r/m"): the RateLimit-Policy header
	// advertises them, and the limiter counts in nginx's units from them
	// (Quota×1000/Window thousandths of a request per second, rounded
	// down as nginx rounds "r/m"). Zero Window: derived from Rate.
	Window int
	Quota  float64
	// Burst is how many requests over Rate a key may hold before
	// requests are refused. Default 0.
	Burst int
	// Delay is how many of those are answered at once; the rest wait
	// until the rate lets them through. Default 0: every request over
	// Rate waits. NoDelay answers the whole burst at once.
	Delay   int
	NoDelay bool
	// Key is what is counted: "client" (default), "client+host", or
	// "header:NAME" (requests without the header count by client).
	Key string
	// Status answers a refused request. Default 429.
	Status int
	// Jail receives an offence per refused request. "": none.
	Jail string
	// Allow lists clients never limited (the config's allow).
	Allow []netip.Prefix
	// IPv6Prefix is the length by which IPv6 clients share a key.
	// Default 64.
	IPv6Prefix int
	// Capacity bounds the keys tracked (limits.tracked_clients); the
	// least recently seen is forgotten first (CLOCK, rules.ClientTable).
	// Default 100,000.
	Capacity int
	// Shared, when set, makes the limit hold across the fleet: each
	// request is counted there, and by this node's own table only while
	// the fleet cannot answer. nil: per node.
	Shared SharedLimit
}

// SharedLimit is the fleet's side of a limit with shared: true (the
// fleet's Redis, rules/fleet). middleware defines it because it must
// not import the fleet.
type SharedLimit interface {
	// TakeShared counts one request of key (the same string on every
	// node) with nginx's limit_req arithmetic in the fleet's units: rate
	// in thousandths of a request per second, burst and delay in
	// thousandths of a request. It returns whether the request may pass
	// and how long it waits first, or, refused, how long until a request
	// would pass. An error means the fleet could not answer; the
	// caller counts the request locally. It may block for a round trip
	// to the fleet, at most until ctx is done.
	TakeShared(ctx context.Context, key string, rate, burst, delay int64) (ok bool, wait time.Duration, err error)
}

// Key kinds of a Limiter.
const (
	limitKeyClient = iota
	limitKeyClientHost
	limitKeyHeader
)

// maxLimitsChain is how many limits one host or route applies at most
// (a bit each in takeAll's skip set).
const maxLimitsChain = 64

// Limiter is one named rate limit with nginx's limit_req arithmetic
// (ngx_http_limit_req_module.c), per key: an excess in thousandths of a
// request and the time of the last request counted, in milliseconds. A
// request at time now finds excess' = max(excess - rate×elapsed + 1000, 0)
// and is refused when excess' > burst; a refused request changes
// nothing. A passing request stores excess' (and now as last, unless no
// millisecond passed) and is answered at once when excess' ≤ delay, else
// after (excess' - delay)/rate. A key seen for the first time passes
// with excess 0. All of it in integers, truncated where nginx truncates,
// so that gatehouse and nginx answer the same requests the same way.
//
// It is not golang.org/x/time/rate: that token bucket is continuous
// and starts full, so it refuses and admits different requests than
// nginx at the edges of a burst. Configs imported from nginx keep
// their meaning only with nginx's own algorithm, and the oracle test
// compares the two request by request.
//
// Keys live in a rules.ClientTable bounded by Capacity. nginx forgets a
// key lazily (an idle, drained key, when a new key needs its memory);
// here a key is forgotten only when the table is full, the least
// recently seen first. A forgotten key starts again at excess 0, as in
// nginx. Safe for concurrent use.
type Limiter struct {
	name   string
	status int
	jail   string
	allow  []netip.Prefix
	shared SharedLimit
	policy []string // RateLimit-Policy value
	sfName string   // the name as a structured-field string
	t      *limitTable
}

// limitTable is the state of a Limiter that a reload keeps when the
// arithmetic and the key are the same (NewLimiter's kept).
type limitTable struct {
	rate     int64 // thousandths of a request per second (nginx's ctx->rate)
	burst    int64 // thousandths of a request
	delay    int64 // thousandths of a request; math.MaxInt64: nodelay
	kind     int
	header   string // canonical header name of a header key
	v6bits   int
	capacity int
	seedA    maphash.Seed
	seedB    maphash.Seed
	states   *rules.ClientTable[limitState]
}

// limitState is one key's state, nginx's ngx_http_limit_req_node_t.
type limitState struct {
	excess int64 // thousandths of a request
	seen   int64 // last + 1, Unix ms; 0: never counted
}

// NewLimiter returns the limiter for cfg. kept is the previous
// generation's limiter of the same name, or nil: its table of keys is
// reused when the rate, burst, delay, key, IPv6 prefix and capacity are
// unchanged, so that a reload gives nobody a fresh burst.
func NewLimiter(cfg LimitConfig, kept *Limiter) (*Limiter, error) {
	t, err := newLimitTable(cfg)
	if err != nil {
		return nil, err
	}
	if kept != nil && kept.t.same(t) {
		t = kept.t
	} else {
		t.seedA, t.seedB = maphash.MakeSeed(), maphash.MakeSeed()
		if t.states, err = rules.NewClientTable[limitState](t.capacity, t.v6bits); err != nil {
			return nil, fmt.Errorf("limit %q: %w", cfg.Name, err)
		}
	}
	if cfg.Status == 0 {
		cfg.Status = http.StatusTooManyRequests
	}
	if cfg.Status < 400 || cfg.Status > 599 {
		return nil, fmt.Errorf("limit %q: status %d is not 400-599", cfg.Name, cfg.Status)
	}
	window, quota := cfg.Window, cfg.Quota
	if window <= 0 {
		window, quota = rateWindow(cfg.Rate)
	}
	sf := sfString(cfg.Name)
	policy := sf + ";q=" + strconv.FormatInt(int64(math.Round(quota)), 10) + ";w=" + strconv.Itoa(window)
	if cfg.Burst > 0 {
		policy += ";gatehouse-burst=" + strconv.Itoa(cfg.Burst)
	}
	return &Limiter{
		name: cfg.Name, status: cfg.Status, jail: cfg.Jail, allow: cfg.Allow, shared: cfg.Shared,
		policy: []string{policy}, sfName: sf, t: t,
	}, nil
}

// newLimitTable validates cfg and returns its table settings, without
// the table.
func newLimitTable(cfg LimitConfig) (*limitTable, error) {
	var problems []string
	if cfg.Name == "" {
		problems = append(problems, "no name")
	}
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 0) {
		problems = append(problems, fmt.Sprintf("rate %v must be greater than 0", cfg.Rate))
	}
	if cfg.Burst < 0 || cfg.Delay < 0 {
		problems = append(problems, "burst and delay must not be negative")
	}
	t := &limitTable{
		burst: int64(cfg.Burst) * 1000, delay: int64(cfg.Delay) * 1000,
		v6bits: cfg.IPv6Prefix, capacity: cfg.Capacity,
	}
	if cfg.NoDelay {
		t.delay = math.MaxInt64
	}
	if t.v6bits == 0 {
		t.v6bits = 64
	}
	if t.capacity <= 0 {
		t.capacity = 100_000
	}
	switch {
	case cfg.Key == "" || cfg.Key == "client":
		t.kind = limitKeyClient
	case cfg.Key == "client+host":
		t.kind = limitKeyClientHost
	case strings.HasPrefix(cfg.Key, "header:") && validHeaderName(cfg.Key[len("header:"):]):
		t.kind, t.header = limitKeyHeader, textproto.CanonicalMIMEHeaderKey(cfg.Key[len("header:"):])
	default:
		problems = append(problems, fmt.Sprintf("key %q is not client, client+host or header:NAME", cfg.Key))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("limit %q: %s", cfg.Name, strings.Join(problems, "; "))
	}
	t.rate = nginxRate(cfg.Rate, cfg.Window, cfg.Quota)
	return t, nil
}

// same reports whether t and u count alike, so u may take t's keys.
func (t *limitTable) same(u *limitTable) bool {
	return t.rate == u.rate && t.burst == u.burst && t.delay == u.delay && t.kind == u.kind &&
		t.header == u.header && t.v6bits == u.v6bits && t.capacity == u.capacity
}

// nginxRate is the rate in nginx's unit, thousandths of a request per
// second: N×1000 for "Nr/s", N×1000/60 rounded down for "Nr/m"
// (limit_req_zone's rate * 1000 / scale), at least 1.
func nginxRate(perSecond float64, window int, quota float64) int64 {
	var r int64
	if window > 0 && quota >= 1 {
		r = int64(math.Round(quota)) * 1000 / int64(window)
	} else {
		r = int64(math.Min(perSecond*1000, 1e12))
	}
	return max(r, 1)
}

// rateWindow writes a rate in requests per second as a quota per
// window: per second when that is a whole number, else per minute.
func rateWindow(perSecond float64) (int, float64) {
	if perSecond >= 1 && perSecond == math.Trunc(perSecond) {
		return 1, perSecond
	}
	return 60, perSecond * 60
}

// validHeaderName reports whether s is a non-empty HTTP token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// sfString writes s as a structured-field String (RFC 8941 §3.3.3):
// quoted, with \ and " escaped; bytes outside printable ASCII become ?.
func sfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := range len(s) {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Name returns the limit's name.
func (l *Limiter) Name() string { return l.name }

// Len returns how many keys l tracks.
func (l *Limiter) Len() int { return l.t.states.Len() }

// Key returns the key l counts a request by: the client's (its IPv6
// prefix for IPv6), the client's and host's, or the header value's
// (header "" counts by client). client must be valid. It allocates
// nothing.
func (l *Limiter) Key(client netip.Addr, host, header string) rules.TableKey {
	t := l.t
	k := t.states.Key(client)
	switch {
	case t.kind == limitKeyClientHost:
		return rules.HashKey(t.seedA, t.seedB, k, host)
	case t.kind == limitKeyHeader && header != "":
		// A header value's key is a keyed hash, so no value can be
		// chosen to take a client's key (requests without the header).
		return rules.HashKey(t.seedA, t.seedB, rules.TableKey{}, header)
	}
	return k
}

// requestKey is Key for r, whose scope names the client.
func (l *Limiter) requestKey(r *http.Request, s *Scope) rules.TableKey {
	switch l.t.kind {
	case limitKeyClientHost:
		return l.Key(s.ClientIP, requestHost(s), "")
	case limitKeyHeader:
		return l.Key(s.ClientIP, "", headerKey(r.Header[l.t.header]))
	}
	return l.Key(s.ClientIP, "", "")
}

// headerKey is the value a header key counts: the header's one value,
// or "" (count by client) when it is missing or sent more than once —
// an upstream may believe another of several values than the first.
func headerKey(vs []string) string {
	if len(vs) == 1 {
		return vs[0]
	}
	return ""
}

// requestHost is the host a client+host key counts: the configured host
// that matched (one for every name of a wildcard host, so that varying
// the subdomain gets no fresh burst), else the request's host.
func requestHost(s *Scope) string {
	if s.Host != "" {
		return s.Host
	}
	return s.RequestHost
}

// sharedKey is the key of r in the fleet: the same on every node, and
// without the header's value itself (an API key is a credential), which
// only its SHA-256 stands for.
func (l *Limiter) sharedKey(r *http.Request, s *Scope) string {
	ip := s.ClientIP.Unmap().WithZone("")
	client := netip.PrefixFrom(ip, 32)
	if ip.Is6() {
		client, _ = ip.Prefix(l.t.v6bits)
	}
	switch l.t.kind {
	case limitKeyClientHost:
		return client.String() + "|" + requestHost(s)
	case limitKeyHeader:
		if v := headerKey(r.Header[l.t.header]); v != "" {
			sum := sha256.Sum256([]byte(v))
			return "k:" + hex.EncodeToString(sum[:16])
		}
	}
	return client.String()
}

// Take counts one request of key k at now on this node's table, as
// nginx's limit_req does for a location with this one limit: ok false
// (refused: nothing is counted) with wait the time until a request
// would pass, or ok true with wait the time the request waits before it
// is served (0: at once). It is pure arithmetic on the table, for
// `rules test` to replay a log with the log's times.
func (l *Limiter) Take(k rules.TableKey, now time.Time) (ok bool, wait time.Duration) {
	ok, ms := l.t.take(k, now.UnixMilli())
	return ok, time.Duration(ms) * time.Millisecond
}

// TakeAll counts one request at now against limits ls in order, with
// keys[i] the key of ls[i], as nginx does for a location with several
// limit_req: the first limit that refuses refuses the request and none
// is counted; else every limit counts it, and it waits the longest of
// their delays. It returns the index of the refusing limit (-1: none)
// and the wait (until a request would pass, when refused).
func TakeAll(ls []*Limiter, keys []rules.TableKey, now time.Time) (refused int, wait time.Duration) {
	if len(ls) > maxLimitsChain {
		ls = ls[:maxLimitsChain]
	}
	i, ms := takeAll(ls, keys, 0, now.UnixMilli())
	return i, time.Duration(ms) * time.Millisecond
}

// takeAll is TakeAll on Unix ms, skipping the limits whose bit is set in
// skip (allowed clients).
func takeAll(ls []*Limiter, keys []rules.TableKey, skip uint64, now int64) (int, int64) {
	last := -1
	for i := len(ls) - 1; i >= 0; i-- {
		if skip&(1<<i) == 0 {
			last = i
			break
		}
	}
	if last < 0 {
		return -1, 0
	}
	// nginx looks every limit up in order and counts nothing until the
	// last one, which it counts in the same step.
	for i := range last {
		if skip&(1<<i) != 0 {
			continue
		}
		if ok, retry := ls[i].t.check(keys[i], now); !ok {
			return i, retry
		}
	}
	ok, wait := ls[last].t.take(keys[last], now)
	if !ok {
		return last, wait
	}
	// Then it counts the others (ngx_http_limit_req_account) without
	// checking them again, and the request waits the longest delay.
	for i := last - 1; i >= 0; i-- {
		if skip&(1<<i) == 0 {
			wait = max(wait, ls[i].t.account(keys[i], now))
		}
	}
	return -1, wait
}

// take checks and counts one request of k at now (Unix ms) under one
// shard lock: refused, the ms until a request would pass; passed, the
// ms it waits.
func (t *limitTable) take(k rules.TableKey, now int64) (ok bool, ms int64) {
	ok = t.states.UpdateKey(k, func(s *limitState, _ bool) bool {
		excess, elapsed := t.excessAt(s, now)
		if excess > t.burst {
			ms = t.retry(s, elapsed)
			return false
		}
		s.store(excess, elapsed, now)
		ms = t.delayOf(excess)
		return true
	})
	return ok, ms
}

// check is nginx's lookup of a limit that is not the last: whether the
// request would pass, and if not the ms until one would, counting
// nothing.
func (t *limitTable) check(k rules.TableKey, now int64) (ok bool, ms int64) {
	ok = t.states.UpdateKey(k, func(s *limitState, _ bool) bool {
		if excess, elapsed := t.excessAt(s, now); excess > t.burst {
			ms = t.retry(s, elapsed)
			return false
		}
		return true
	})
	return ok, ms
}

// account counts a request of k at now that the checks let pass, and
// returns its delay in ms.
func (t *limitTable) account(k rules.TableKey, now int64) (ms int64) {
	t.states.UpdateKey(k, func(s *limitState, _ bool) bool {
		excess, elapsed := t.excessAt(s, now)
		s.store(excess, elapsed, now)
		ms = t.delayOf(excess)
		return true
	})
	return ms
}

// excessAt is nginx's arithmetic for a request at now (Unix ms): the
// excess the key would hold, and the ms elapsed since its last request
// (-1 for a key never counted, which nginx starts at excess 0). A clock
// that went back is taken as no time passing, or, more than a minute
// back, as one ms.
func (t *limitTable) excessAt(s *limitState, now int64) (excess, elapsed int64) {
	if s.seen == 0 {
		return 0, -1
	}
	ms := now - (s.seen - 1)
	switch {
	case ms < -60000:
		ms = 1
	case ms < 0:
		ms = 0
	}
	// Past full drain the excess is 0; checked first so that rate×ms
	// cannot overflow after a long idle time.
	if ms > (s.excess+1000)*1000/t.rate {
		return 0, ms
	}
	return max(s.excess-t.rate*ms/1000+1000, 0), ms
}

// store keeps excess; the time moves on only when a millisecond passed,
// as nginx keeps lr->last.
func (s *limitState) store(excess, elapsed, now int64) {
	s.excess = excess
	if elapsed != 0 {
		s.seen = now + 1
	}
}

// delayOf is nginx's delay for a request that leaves excess: none up
// to the delay, else (excess - delay)/rate, in whole ms.
func (t *limitTable) delayOf(excess int64) int64 {
	if excess <= t.delay {
		return 0
	}
	return (excess - t.delay) * 1000 / t.rate
}

// retry is the ms until a request of s, refused elapsed ms after its
// last one, would pass: the first whole ms at which nginx's truncated
// drain, rate×ms/1000, reaches excess + 1000 - burst.
func (t *limitTable) retry(s *limitState, elapsed int64) int64 {
	need := s.excess + 1000 - t.burst
	return max((need*1000+t.rate-1)/t.rate-elapsed, 1)
}

// Limit applies the named limits ls of a host or route, in order, with
// nginx's semantics for several limit_req in one location (TakeAll). A
// refused request is answered with its limit's status, Retry-After, and
// the RateLimit-Policy and RateLimit headers of
// draft-ietf-httpapi-ratelimit-headers-11 (sent on refusals only: a
// passing request stays free of allocations, and an upstream that
// advertises its own quota keeps its headers); it is an offence "limit"
// in the scope, reported to the limit's jail when it has one. A delayed
// request waits, then is served; a client that leaves while it waits is
// not served (logged 499). It needs the Scope's client IP; a request
// without one passes.
//
// Shared limits are counted in the fleet, one at a time in order, and
// counted here while the fleet cannot answer; with shared limits in the
// list, a limit before the one that refuses has counted the request.
func Limit(ls []*Limiter, jails *rules.Jails, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	if len(ls) == 0 {
		return nil, errors.New("limit: no limits")
	}
	if len(ls) > maxLimitsChain {
		return nil, fmt.Errorf("limit: %d limits, at most %d", len(ls), maxLimitsChain)
	}
	anyShared := false
	for _, l := range ls {
		if l == nil {
			return nil, errors.New("limit: nil limiter")
		}
		if l.jail != "" && jails == nil {
			return nil, fmt.Errorf("limit %q: jail %q but no jails", l.name, l.jail)
		}
		anyShared = anyShared || l.shared != nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ls = append([]*Limiter(nil), ls...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := ScopeFrom(r)
			if !s.ClientIP.IsValid() {
				next.ServeHTTP(w, r)
				return
			}
			var refused int
			var wait time.Duration
			if anyShared {
				refused, wait = takeShared(r, s, ls)
			} else {
				var buf [4]rules.TableKey
				keys := buf[:0]
				if len(ls) > len(buf) {
					keys = make([]rules.TableKey, 0, len(ls))
				}
				var skip uint64
				for i, l := range ls {
					var k rules.TableKey
					if allowed(l.allow, s.ClientIP) {
						skip |= 1 << i
					} else {
						k = l.requestKey(r, s)
					}
					keys = append(keys, k)
				}
				var ms int64
				refused, ms = takeAll(ls, keys, skip, time.Now().UnixMilli())
				wait = time.Duration(ms) * time.Millisecond
			}
			if refused >= 0 {
				ls[refused].refuse(w, r, s, wait, jails, log)
				return
			}
			if wait > 0 && !rules.Sleep(r.Context(), wait) {
				if log.Enabled(r.Context(), slog.LevelDebug) {
					log.Debug("client left while its request waited", "client_ip", s.ClientIP, "wait_seconds", wait.Seconds())
				}
				w.WriteHeader(499)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

// takeShared is the decision for a list with shared limits: each limit
// in order, in the fleet when it is shared and the fleet answers, else
// here; the first refusal stops.
func takeShared(r *http.Request, s *Scope, ls []*Limiter) (int, time.Duration) {
	var wait time.Duration
	for i, l := range ls {
		if allowed(l.allow, s.ClientIP) {
			continue
		}
		if l.shared != nil {
			t := l.t
			ok, d, err := l.shared.TakeShared(r.Context(), l.sharedKey(r, s), t.rate, t.burst, t.delay)
			if err == nil {
				if !ok {
					return i, d
				}
				wait = max(wait, d)
				continue
			}
		}
		ok, d := l.Take(l.requestKey(r, s), time.Now())
		if !ok {
			return i, d
		}
		wait = max(wait, d)
	}
	return -1, wait
}

// refuse answers a request l refused; retry is when a request would
// pass.
func (l *Limiter) refuse(w http.ResponseWriter, r *http.Request, s *Scope, retry time.Duration, jails *rules.Jails, log *slog.Logger) {
	s.Offence = "limit"
	if l.jail != "" {
		jails.Report(l.jail, s.ClientIP, "limit")
	}
	if log.Enabled(r.Context(), slog.LevelDebug) {
		log.Debug("rate limited", "client_ip", s.ClientIP, "limit", l.name, "retry_seconds", retry.Seconds())
	}
	secs := strconv.FormatInt(max(1, int64((retry+time.Second-1)/time.Second)), 10)
	h := w.Header()
	h["Retry-After"] = []string{secs}
	h["Ratelimit-Policy"] = l.policy
	h["Ratelimit"] = []string{l.sfName + ";r=0;t=" + secs}
	PlainStatus(w, l.status)
}
