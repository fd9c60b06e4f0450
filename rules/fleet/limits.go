package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Shared rate limits (limits.rates.NAME.shared): every node counts the
// requests of a shared limit in Redis, with the same nginx limit_req
// arithmetic as a node's own limiter (middleware.Limiter), so that the
// limit holds once across the fleet and a node that falls back to its
// own table while Redis is down applies the same rule.
//
// Requests are coalesced: one loop sends what queued up while its
// previous call was in flight as one call of the limit script, so a
// node makes one Redis call per batch of requests, not per request, and
// a lone request waits for one round trip only.

const (
	// limitBatch is how many requests one call of the limit script
	// counts at most.
	limitBatch = 256
	// limitQueue bounds the requests waiting for a call; past it they
	// are counted locally.
	limitQueue = 4096
	// limitTimeout bounds one call: a request waits no longer for Redis
	// before it is counted locally.
	limitTimeout = 500 * time.Millisecond
	// limitRetry is how long shared limits count locally after a failed
	// call before one request tries Redis again.
	limitRetry = time.Second
)

// errLimitsDown is TakeShared's answer while Redis is unreachable.
var errLimitsDown = errors.New("fleet: redis unreachable, shared limit counted locally")

// errLimitsBusy is TakeShared's answer when the queue is full.
var errLimitsBusy = errors.New("fleet: shared limit queue full, counted locally")

// limitScript counts a batch of requests against shared limits, each
// with nginx's limit_req arithmetic (ngx_http_limit_req_module.c, as
// middleware.Limiter does it): per key an excess in thousandths of a
// request and the time of the last request, in ms on Redis's clock. A
// request finds excess' = max(excess - rate×elapsed/1000 + 1000, 0),
// truncated as nginx truncates, and is refused when excess' > burst,
// counting nothing; else excess' is stored (the time only when a ms
// passed), and the request waits (excess' - delay)/rate ms when
// excess' > delay. A key expires the moment it has drained to 0, so an
// expired key and a drained one answer alike. Requests for one key in a
// batch are counted in order.
//
//	KEYS: one per request, {gh}:lim:NAME:KEY
//	ARGV: 3 per request: rate (thousandths of a request per second),
//	      burst and delay (thousandths of a request)
//
// It returns 2 integers per request: 1 passed or 0 refused, then the ms
// the request waits (passed) or until a request would pass (refused).
var limitScript = redis.NewScript(limitClock + limitBody)

// limitClock sets now, in ms on Redis's clock.
const limitClock = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// limitBody is the limit script after the clock.
const limitBody = `
local function fmt(x) return string.format('%.0f', x) end
local out = {}
for i = 1, #KEYS do
  local rate, burst, delay = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local excess, elapsed, e0, last = 0, -1, 0, now
  local v = redis.call('GET', KEYS[i])
  if v then
    local e, l = string.match(v, '^(%d+)|(%d+)$')
    if e then
      e0, last = tonumber(e), tonumber(l)
      local ms = now - last
      if ms < -60000 then ms = 1 elseif ms < 0 then ms = 0 end
      elapsed = ms
      if ms <= math.floor((e0 + 1000) * 1000 / rate) then
        excess = e0 - math.floor(rate * ms / 1000) + 1000
        if excess < 0 then excess = 0 end
      end
      if ms ~= 0 then last = now end
    end
  end
  if excess > burst then
    local r = math.floor(((e0 + 1000 - burst) * 1000 + rate - 1) / rate) - elapsed
    if r < 1 then r = 1 end
    out[#out+1] = 0
    out[#out+1] = r
  else
    redis.call('SET', KEYS[i], fmt(excess) .. '|' .. fmt(last), 'PX', fmt(math.floor((excess + 1000) * 1000 / rate) + 1))
    local d = 0
    if excess > delay then d = math.floor((excess - delay) * 1000 / rate) end
    out[#out+1] = 1
    out[#out+1] = d
  end
end
return out
`

// Limit is one named limit shared by the fleet: middleware.SharedLimit
// for the limit's middleware.Limiter. Safe for concurrent use.
type Limit struct {
	f      *Fleet
	prefix string // {gh}:lim:NAME:
}

// Limit returns the fleet's side of the shared limit name. Its requests
// are counted by Run's limit loop.
func (f *Fleet) Limit(name string) *Limit {
	return &Limit{f: f, prefix: f.k.tag + "lim:" + name + ":"}
}

// limitReq is one request waiting for the limit loop.
type limitReq struct {
	key                string
	rate, burst, delay int64
	res                chan limitRes // buffered: the loop never blocks on it
}

type limitRes struct {
	ok   bool
	wait time.Duration
	err  error
}

// TakeShared counts one request of key against the limit in Redis (see
// limitScript for the arithmetic and units). It returns an error, and
// the caller counts the request locally, while Redis is unreachable
// (for limitRetry after each failed call, when one request tries
// again), when the queue is full, or when ctx ends first.
func (l *Limit) TakeShared(ctx context.Context, key string, rate, burst, delay int64) (bool, time.Duration, error) {
	f := l.f
	if !f.limitsTry() {
		return false, 0, errLimitsDown
	}
	rate = max(rate, 1)
	req := &limitReq{key: l.prefix + key, rate: rate, burst: burst, delay: min(delay, maxLuaInt), res: make(chan limitRes, 1)}
	select {
	case f.limitq <- req:
	default:
		return false, 0, errLimitsBusy
	}
	select {
	case r := <-req.res:
		return r.ok, r.wait, r.err
	case <-ctx.Done():
		return false, 0, ctx.Err()
	}
}

// maxLuaInt is the largest integer a Lua number holds exactly: nodelay's
// delay is capped to it.
const maxLuaInt = 1 << 53

// limitState is the shared limits' view of Redis: up, or down until a
// retry time.
type limitState struct {
	down    atomic.Bool
	retryAt atomic.Int64 // Unix ns: the next request may try Redis
}

// limitsTry reports whether a request may ask Redis: always while it is
// up; while it is down, one request per limitRetry.
func (f *Fleet) limitsTry() bool {
	if !f.lim.down.Load() {
		return true
	}
	now := f.now().UnixNano()
	at := f.lim.retryAt.Load()
	return now >= at && f.lim.retryAt.CompareAndSwap(at, now+int64(limitRetry))
}

// limitsUp records the outcome of a call, logging each change once.
func (f *Fleet) limitsUp(err error) {
	if err == nil {
		if f.lim.down.Swap(false) {
			f.log.Info("redis reachable: shared rate limits counted in the fleet")
		}
		return
	}
	f.lim.retryAt.Store(f.now().Add(limitRetry).UnixNano())
	if !f.lim.down.Swap(true) {
		f.log.Warn("redis unreachable: shared rate limits count on each node", "error", err)
	}
}

// limitLoop counts queued requests of shared limits in batches, one
// script call each, until ctx is done; a request still queued then is
// answered with ctx's error (and counted locally by its caller).
func (f *Fleet) limitLoop(ctx context.Context) {
	batch := make([]*limitReq, 0, limitBatch)
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case r := <-f.limitq:
					r.res <- limitRes{err: ctx.Err()}
				default:
					return
				}
			}
		case r := <-f.limitq:
			batch = append(batch[:0], r)
		}
		for more := true; more && len(batch) < limitBatch; {
			select {
			case r := <-f.limitq:
				batch = append(batch, r)
			default:
				more = false
			}
		}
		err := f.countLimits(ctx, batch)
		f.limitsUp(err)
		if err != nil {
			for _, r := range batch {
				r.res <- limitRes{err: err}
			}
		}
		clear(batch)
	}
}

// countLimits runs the limit script on batch and answers each request.
func (f *Fleet) countLimits(ctx context.Context, batch []*limitReq) error {
	keys := make([]string, len(batch))
	args := make([]any, 0, 3*len(batch))
	for i, r := range batch {
		keys[i] = r.key
		args = append(args, r.rate, r.burst, r.delay)
	}
	ctx, cancel := context.WithTimeout(ctx, limitTimeout)
	defer cancel()
	res, err := limitScript.Run(ctx, f.rdb, keys, args...).Int64Slice()
	if err != nil {
		return fmt.Errorf("count %d requests of shared limits in redis: %w", len(batch), err)
	}
	if len(res) != 2*len(batch) {
		return fmt.Errorf("count shared limits: redis answered %d values for %d requests", len(res), len(batch))
	}
	for i, r := range batch {
		r.res <- limitRes{ok: res[2*i] == 1, wait: time.Duration(res[2*i+1]) * time.Millisecond}
	}
	return nil
}
