package fleet

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/middleware"
	"gatehouse/rules/fleet/fleettest"
)

// TestLimitScriptMatchesLimiter runs the limit script with the clock
// taken from the call (the rest of the script as it ships) against
// middleware.Limiter on the same times: the fleet and a node that falls
// back to itself must answer every request alike.
func TestLimitScriptMatchesLimiter(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	rdb := r.Client(t)
	script := redis.NewScript("local now = tonumber(ARGV[#ARGV])\n" + limitBody)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(18, 3))
	client := netip.MustParseAddr("192.0.2.1")
	for round := range 40 {
		cfg := middleware.LimitConfig{Name: "l", Burst: rng.IntN(5), Delay: rng.IntN(3), NoDelay: rng.IntN(3) == 0}
		if rng.IntN(2) == 0 {
			cfg.Window, cfg.Quota = 1, float64(1+rng.IntN(20))
		} else {
			cfg.Window, cfg.Quota = 60, float64(1+rng.IntN(120))
		}
		cfg.Rate = cfg.Quota / float64(cfg.Window)
		l, err := middleware.NewLimiter(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		rate := int64(cfg.Quota) * 1000 / int64(cfg.Window)
		burst, delay := int64(cfg.Burst)*1000, int64(cfg.Delay)*1000
		if cfg.NoDelay {
			delay = maxLuaInt
		}
		key := "{t}:lim:" + strconv.Itoa(round)
		now := int64(1_700_000_000_000)
		for step := range 60 {
			switch rng.IntN(10) {
			case 0:
				now -= int64(rng.IntN(90000))
			case 1, 2, 3:
			default:
				now += int64(rng.IntN(900))
			}
			res, err := script.Run(ctx, rdb, []string{key}, rate, burst, delay, now).Int64Slice()
			if err != nil {
				t.Fatal(err)
			}
			ok, wait := l.Take(l.Key(client, "", ""), time.UnixMilli(now))
			if (res[0] == 1) != ok || time.Duration(res[1])*time.Millisecond != wait {
				t.Fatalf("round %d step %d (%+v, t=%d): script = %v, Limiter = %v, %v", round, step, cfg, now, res, ok, wait)
			}
		}
	}
}

// TestSharedLimitAcrossNodes pins that a shared limit holds once across
// nodes: 3 nodes, 20 concurrent requests each, burst 5 nodelay at 1 r/m
// (nothing drains during the test): exactly 6 pass in total.
func TestSharedLimitAcrossNodes(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	var nodes []*node
	for i := range 3 {
		n := newNode(t, r, "n"+strconv.Itoa(i), "", nil)
		n.run()
		nodes = append(nodes, n)
	}
	rate, burst := int64(1000/60), int64(5000)
	var passed, refused atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for _, n := range nodes {
		lim := n.f.Limit("login")
		for range 20 {
			wg.Go(func() {
				ok, wait, err := lim.TakeShared(t.Context(), "192.0.2.7", rate, burst, maxLuaInt)
				switch {
				case err != nil:
					errs <- err
				case ok && wait == 0:
					passed.Add(1)
				case !ok && wait > 0:
					refused.Add(1)
				default:
					errs <- &waitError{ok, wait}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if passed.Load() != 6 || refused.Load() != 54 {
		t.Errorf("passed %d, refused %d; want 6 and 54 (burst 5 + 1, once for the fleet)", passed.Load(), refused.Load())
	}
	// The key drains away: it expires once its excess is 0.
	ttl := r.Do(t, "PTTL", "{gh}:lim:login:192.0.2.7").(int64)
	if ttl <= 0 || ttl > (5000+1000)*1000/rate+1 {
		t.Errorf("PTTL = %d ms, want (0, %d]", ttl, (5000+1000)*1000/rate+1)
	}
}

type waitError struct {
	ok   bool
	wait time.Duration
}

func (e *waitError) Error() string {
	return "TakeShared = " + strconv.FormatBool(e.ok) + ", " + e.wait.String() + ": want passed at once or refused with a wait"
}

// TestSharedLimitBatches pins that concurrent requests share calls:
// 200 requests from 200 goroutines take far fewer than 200 script calls.
func TestSharedLimitBatches(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	n := newNode(t, r, "n0", "", nil)
	n.run()
	lim := n.f.Limit("api")
	// Warm up: the script is loaded and the connection open.
	if _, _, err := lim.TakeShared(t.Context(), "warm", 1000, 0, 0); err != nil {
		t.Fatal(err)
	}
	before := scriptCalls(t, r)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 200 {
		wg.Go(func() {
			<-start
			if _, _, err := lim.TakeShared(t.Context(), "c"+strconv.Itoa(i), 1000, 0, 0); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if calls := scriptCalls(t, r) - before; calls >= 100 {
		t.Errorf("200 concurrent requests took %d script calls, want them batched (< 100)", calls)
	} else {
		t.Logf("200 concurrent requests: %d script calls", calls)
	}
}

// scriptCalls returns how many EVALSHA and EVAL calls the server ran.
func scriptCalls(t *testing.T, r *fleettest.Redis) int64 {
	t.Helper()
	info := r.Do(t, "INFO", "commandstats").(string)
	var n int64
	for _, cmd := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
		if i := strings.Index(info, cmd); i >= 0 {
			j := i + len(cmd)
			k := j
			for k < len(info) && info[k] >= '0' && info[k] <= '9' {
				k++
			}
			v, _ := strconv.ParseInt(info[j:k], 10, 64)
			n += v
		}
	}
	return n
}

// TestSharedLimitRedisDown pins the fallback: with Redis gone a request
// is turned back at once (the caller counts it locally), and once Redis
// is back the limit is counted there again.
func TestSharedLimitRedisDown(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	n := newNode(t, r, "n0", "", nil)
	n.run()
	lim := n.f.Limit("api")
	if _, _, err := lim.TakeShared(t.Context(), "a", 1000, 0, 0); err != nil {
		t.Fatalf("with Redis up: %v", err)
	}
	r.Kill()
	if _, _, err := lim.TakeShared(t.Context(), "a", 1000, 0, 0); err == nil {
		t.Fatal("with Redis killed: no error")
	}
	start := time.Now()
	if _, _, err := lim.TakeShared(t.Context(), "a", 1000, 0, 0); err != errLimitsDown {
		t.Errorf("while down: %v, want errLimitsDown", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("while down a request waited %v for Redis", d)
	}
	r.Restart()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	waitFor(t, 10*time.Second, "shared limits counted in Redis again", func() bool {
		_, _, err := lim.TakeShared(ctx, "b", 1000, 0, 0)
		return err == nil
	})
}
