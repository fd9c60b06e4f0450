package cert

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
)

// RedisConfig configures a Redis.
type RedisConfig struct {
	// Redis is the fleet's Redis. Required.
	Redis *redis.Client
	// Prefix is the fleet's key prefix; keys are "{prefix}:certs...".
	// Zero: "gh".
	Prefix string
	// Mirror, when set, receives a copy of every value stored or loaded,
	// and answers reads while Redis is unreachable, so that a node
	// restarted during an outage still serves its certificates.
	Mirror *certmagic.FileStorage
	// Lease is how long a lock lives unless its holder renews it; the
	// holder renews it every third of that. Zero: 30 seconds.
	Lease time.Duration
	// Poll is how often Lock retries a lock held by another. Zero: 1
	// second.
	Poll time.Duration
	// Log receives mirror failures. nil: discard.
	Log *slog.Logger
}

// Redis is a certmagic.Storage, Locker and TryLocker over
// Redis, for the nodes of a fleet to share ACME accounts, certificates,
// keys and challenge tokens (so any node can answer the CA), and to
// agree on who obtains or renews a certificate.
//
// Layout under the fleet's hash tag:
//
//	{gh}:certs         hash  key → value
//	{gh}:certs:mtime   hash  key → modification time, Unix ns
//	{gh}:certs:index   zset  every key, score 0, for prefix listing (ZRANGEBYLEX)
//	{gh}:certs:lock:N  string the holder's random token, PX the lease
//
// Keys are certmagic's slash-separated paths; a "directory" is a prefix
// of keys ending in "/", as in certmagic's FileStorage, whose behaviour
// this one follows. Reads go to the one Redis it is configured with (the
// primary); writes are atomic (MULTI or a Lua script).
//
// Locks: a lock is taken with SET NX PX lease and a random token, renewed
// every lease/3 while held, and released with a compare-and-delete, so
// only its holder can release it; a holder that dies stops renewing and
// the lock is free one lease later. Lock honours context cancellation.
//
// It is safe for concurrent use.
type Redis struct {
	rdb    *redis.Client
	data   string
	mtime  string
	index  string
	lockNS string
	mirror *certmagic.FileStorage
	lease  time.Duration
	poll   time.Duration
	log    *slog.Logger

	mu   sync.Mutex
	held map[string]*certLock
}

// certLock is a lock this storage holds: its token and its renewer.
type certLock struct {
	token string
	stop  chan struct{}
	done  chan struct{}
}

// certmagic finds TryLocker through a type assertion: checked here.
var (
	_ certmagic.Storage   = (*Redis)(nil)
	_ certmagic.TryLocker = (*Redis)(nil)
	_ io.Closer           = (*Redis)(nil)
)

// NewRedis returns the storage cfg describes. It contacts nobody until
// used.
func NewRedis(cfg RedisConfig) *Redis {
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = "gh"
	}
	t := "{" + prefix + "}:certs"
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Redis{
		rdb: cfg.Redis, data: t, mtime: t + ":mtime", index: t + ":index", lockNS: t + ":lock:",
		mirror: cfg.Mirror, lease: cfg.Lease, poll: cfg.Poll, log: log, held: map[string]*certLock{},
	}
	if s.lease <= 0 {
		s.lease = 30 * time.Second
	}
	if s.poll <= 0 {
		s.poll = time.Second
	}
	return s
}

func (s *Redis) String() string { return "redis:" + s.data }

// Close closes the Redis client; the gateway calls it at shutdown.
func (s *Redis) Close() error { return s.rdb.Close() }

// unreachable reports whether err is a failure to talk to Redis, after
// which reads fall back to the mirror; not a missing key or a refusal.
func unreachable(err error) bool {
	return err != nil && !errors.Is(err, redis.Nil) && !errors.Is(err, fs.ErrNotExist) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// Store puts value at key, and in the mirror.
func (s *Redis) Store(ctx context.Context, key string, value []byte) error {
	key = cleanKey(key)
	if key == "" {
		return errors.New("certificate storage: empty key")
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.data, key, value)
		p.HSet(ctx, s.mtime, key, time.Now().UnixNano())
		p.ZAdd(ctx, s.index, redis.Z{Member: key})
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %s in redis: %w", key, err)
	}
	s.mirrorStore(ctx, key, value)
	return nil
}

func (s *Redis) mirrorStore(ctx context.Context, key string, value []byte) {
	if s.mirror == nil {
		return
	}
	if old, err := s.mirror.Load(ctx, key); err == nil && bytes.Equal(old, value) {
		return
	}
	if err := s.mirror.Store(ctx, key, value); err != nil {
		s.log.Warn("certificate mirror not written", "key", key, "error", err)
	}
}

// Load returns the value at key, or an error wrapping fs.ErrNotExist.
// While Redis is unreachable it answers from the mirror.
func (s *Redis) Load(ctx context.Context, key string) ([]byte, error) {
	key = cleanKey(key)
	v, err := s.rdb.HGet(ctx, s.data, key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, fmt.Errorf("load %s: %w", key, fs.ErrNotExist)
	case unreachable(err) && s.mirror != nil:
		s.log.Debug("redis unreachable: certificate read from the mirror", "key", key, "error", err)
		return s.mirror.Load(ctx, key)
	case err != nil:
		return nil, fmt.Errorf("load %s from redis: %w", key, err)
	}
	s.mirrorStore(ctx, key, v)
	return v, nil
}

// deleteScript deletes a key and every key under it ("key/..."):
// KEYS data, mtime, index; ARGV key.
var deleteScript = redis.NewScript(`
local k = ARGV[1]
local gone = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. k .. '/', '(' .. k .. '0')
table.insert(gone, k)
for _, key in ipairs(gone) do
  redis.call('HDEL', KEYS[1], key)
  redis.call('HDEL', KEYS[2], key)
  redis.call('ZREM', KEYS[3], key)
end
return #gone
`)

// Delete deletes key and every key under it, in Redis and the mirror.
func (s *Redis) Delete(ctx context.Context, key string) error {
	key = cleanKey(key)
	if err := deleteScript.Run(ctx, s.rdb, []string{s.data, s.mtime, s.index}, key).Err(); err != nil {
		return fmt.Errorf("delete %s in redis: %w", key, err)
	}
	if s.mirror != nil {
		if err := s.mirror.Delete(ctx, key); err != nil {
			s.log.Warn("certificate mirror not deleted", "key", key, "error", err)
		}
	}
	return nil
}

// under returns the keys strictly under dir ("" is the root), sorted.
func (s *Redis) under(ctx context.Context, dir string) ([]string, error) {
	lo, hi := "-", "+"
	if dir != "" {
		lo, hi = "["+dir+"/", "("+dir+"0"
	}
	return s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.index, Start: lo, Stop: hi, ByLex: true}).Result()
}

// Exists reports whether key is a key or a directory of keys.
func (s *Redis) Exists(ctx context.Context, key string) bool {
	key = cleanKey(key)
	ok, err := s.rdb.HExists(ctx, s.data, key).Result()
	if unreachable(err) && s.mirror != nil {
		return s.mirror.Exists(ctx, key)
	}
	if err != nil || ok {
		return ok
	}
	keys, err := s.under(ctx, key)
	return err == nil && len(keys) > 0
}

// List returns the keys under dir: its children, or with recursive every
// key and directory below it, as FileStorage does. A dir that is neither
// a key nor a directory is an error wrapping fs.ErrNotExist.
func (s *Redis) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	dir = cleanKey(dir)
	keys, err := s.under(ctx, dir)
	if unreachable(err) && s.mirror != nil {
		return s.mirror.List(ctx, dir, recursive)
	}
	if err != nil {
		return nil, fmt.Errorf("list %s in redis: %w", dir, err)
	}
	if len(keys) == 0 {
		if dir != "" {
			if ok, err := s.rdb.HExists(ctx, s.data, dir).Result(); err == nil && ok {
				return nil, nil
			}
		}
		return nil, fmt.Errorf("list %s: %w", dir, fs.ErrNotExist)
	}
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	base := dir
	if base != "" {
		base += "/"
	}
	for _, k := range keys {
		rest := strings.TrimPrefix(k, base)
		parts := strings.Split(rest, "/")
		if !recursive {
			add(base + parts[0])
			continue
		}
		for i := range parts {
			add(base + strings.Join(parts[:i+1], "/"))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Stat returns what is known of key: a key's size and modification time,
// or a directory (IsTerminal false, the newest modification below it).
func (s *Redis) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	key = cleanKey(key)
	pipe := s.rdb.Pipeline()
	size := pipe.HStrLen(ctx, s.data, key)
	exists := pipe.HExists(ctx, s.data, key)
	mt := pipe.HGet(ctx, s.mtime, key)
	_, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		if unreachable(err) && s.mirror != nil {
			return s.mirror.Stat(ctx, key)
		}
		return certmagic.KeyInfo{}, fmt.Errorf("stat %s in redis: %w", key, err)
	}
	if exists.Val() {
		ns, _ := strconv.ParseInt(mt.Val(), 10, 64)
		return certmagic.KeyInfo{Key: key, Modified: time.Unix(0, ns), Size: size.Val(), IsTerminal: true}, nil
	}
	keys, err := s.under(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("stat %s in redis: %w", key, err)
	}
	if len(keys) == 0 {
		return certmagic.KeyInfo{}, fmt.Errorf("stat %s: %w", key, fs.ErrNotExist)
	}
	var newest int64
	for _, t := range s.rdb.HMGet(ctx, s.mtime, keys...).Val() {
		if str, ok := t.(string); ok {
			if ns, err := strconv.ParseInt(str, 10, 64); err == nil && ns > newest {
				newest = ns
			}
		}
	}
	return certmagic.KeyInfo{Key: key, Modified: time.Unix(0, newest), IsTerminal: false}, nil
}

// cleanKey makes keys canonical as FileStorage's file names are: no
// leading, trailing or doubled slashes.
func cleanKey(k string) string {
	k = strings.Trim(path.Clean("/"+k), "/")
	return k
}

// renewScript extends a lock's lease if the caller still holds it.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes a lock if the caller holds it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// TryLock takes the lock name if it is free and reports whether it did.
func (s *Redis) TryLock(ctx context.Context, name string) (bool, error) {
	token := rand.Text()
	ok, err := s.rdb.SetNX(ctx, s.lockNS+name, token, s.lease).Result()
	if err != nil {
		return false, fmt.Errorf("lock %s in redis: %w", name, err)
	}
	if !ok {
		return false, nil
	}
	l := &certLock{token: token, stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	if old := s.held[name]; old != nil {
		// The same process takes a lock it holds only after its lease
		// ran out: stop renewing the old one.
		close(old.stop)
	}
	s.held[name] = l
	s.mu.Unlock()
	go s.renew(name, l)
	return true, nil
}

// renew extends l's lease every third of it until Unlock stops it or
// the lock is lost.
func (s *Redis) renew(name string, l *certLock) {
	defer close(l.done)
	t := time.NewTicker(s.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.lease/3)
		n, err := renewScript.Run(ctx, s.rdb, []string{s.lockNS + name}, l.token, s.lease.Milliseconds()).Int()
		cancel()
		switch {
		case err != nil:
			s.log.Warn("certificate lock lease not renewed; retrying", "lock", name, "error", err)
		case n == 0:
			s.log.Warn("certificate lock lost: its lease ran out", "lock", name)
			return
		}
	}
}

// Lock takes the lock name, waiting while another holds it, until ctx
// is done.
func (s *Redis) Lock(ctx context.Context, name string) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
		ok, err := s.TryLock(ctx, name)
		if err != nil && ctx.Err() != nil {
			// The client's deadline, taken from ctx, ran out mid-command:
			// that is ctx's deadline, not a Redis failure.
			return fmt.Errorf("lock %s: %w", name, ctx.Err())
		}
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		t.Reset(s.poll)
	}
}

// Unlock releases the lock name if this storage holds it; it fails if
// the lock's lease ran out and someone else holds it now.
func (s *Redis) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	l := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if l == nil {
		return fmt.Errorf("unlock %s: not held here", name)
	}
	close(l.stop)
	<-l.done
	n, err := releaseScript.Run(ctx, s.rdb, []string{s.lockNS + name}, l.token).Int()
	if err != nil {
		return fmt.Errorf("unlock %s in redis: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("unlock %s: the lease had run out", name)
	}
	return nil
}
