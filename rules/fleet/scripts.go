package fleet

import "github.com/redis/go-redis/v9"

// The Lua scripts below are the only writers of the shared ban state.
// Each runs atomically in Redis, takes its time from Redis's TIME, and
// is idempotent and commutative per prefix: a ban or unban of a prefix
// is applied only if its revision (rev, µs on Redis's clock, then the
// node name) is newer than what is stored, so replays change nothing and
// any order of delivery ends in the state of the newest change. An unban
// beats a ban of the same revision. An unban leaves a tombstone, kept
// until the later of the lifted ban's end and rev + the tombstone
// retention, so that a ban older than the unban, pushed late by a node
// that was cut off, stays lifted.
//
// Lua numbers are doubles: times are microseconds (exact until 2255),
// and numbers go back into strings with %.0f, never tostring.

// luaCommon parses the stored values; it is prepended to each script.
const luaCommon = `
local function banrec(v)
  local u, r, n = string.match(v, '^(%d+)|(%d+)|%d+|([^|]*)|')
  return tonumber(u), tonumber(r), n
end
local function tombrec(v)
  local r, k, n = string.match(v, '^(%d+)|(%d+)|(.*)$')
  return tonumber(r), tonumber(k), n
end
local function fmt(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
`

// applyScript applies a batch of bans and unbans pushed by one node.
//
// A ban whose revision is within the tolerance of the stored ban's is
// the same ban pushed again by a node that received it (its revision
// seen through two clock offsets), and is not applied.
//
//	KEYS: bans, bans:exp, unbans, unbans:exp, changes
//	ARGV: stream MAXLEN, tombstone retention (µs), revision tolerance
//	      (µs), then 4 per change:
//	      "b", prefix, rev, ban value   or   "u", prefix, rev, node
//
// It returns how many changes it applied (the others were stale).
var applyScript = redis.NewScript(luaCommon + `
local maxlen, keep, tol = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local applied = 0
for i = 4, #ARGV, 4 do
  local op, p, rev, val = ARGV[i], ARGV[i+1], tonumber(ARGV[i+2]), ARGV[i+3]
  local cur = redis.call('HGET', KEYS[1], p)
  local tomb = redis.call('HGET', KEYS[3], p)
  if op == 'b' then
    local u, r, n = banrec(val)
    local ok = u ~= nil and r == rev and u > now
    if ok and tomb then
      local tr = tombrec(tomb)
      if tr and tr >= r then ok = false end
    end
    if ok and cur then
      local _, cr, cn = banrec(cur)
      if cr and (cr > r or (cr == r and cn >= n) or r - cr <= tol) then ok = false end
    end
    if ok then
      redis.call('HSET', KEYS[1], p, val)
      redis.call('ZADD', KEYS[2], fmt(u), p)
      if tomb then
        redis.call('HDEL', KEYS[3], p)
        redis.call('ZREM', KEYS[4], p)
      end
      redis.call('XADD', KEYS[5], 'MAXLEN', '~', maxlen, '*', 'o', 'b', 'p', p, 'v', val)
      applied = applied + 1
    end
  elseif op == 'u' then
    local ok = rev ~= nil
    local k = (rev or 0) + keep
    if ok and cur then
      local cu, cr = banrec(cur)
      if cr and cr > rev then ok = false end
      if cu and cu > k then k = cu end
    end
    if ok and tomb then
      local tr = tombrec(tomb)
      if tr and tr >= rev then ok = false end
    end
    if ok then
      local tv = fmt(rev) .. '|' .. fmt(k) .. '|' .. val
      if cur then
        redis.call('HDEL', KEYS[1], p)
        redis.call('ZREM', KEYS[2], p)
      end
      redis.call('HSET', KEYS[3], p, tv)
      redis.call('ZADD', KEYS[4], fmt(k), p)
      redis.call('XADD', KEYS[5], 'MAXLEN', '~', maxlen, '*', 'o', 'u', 'p', p, 'v', tv)
      applied = applied + 1
    end
  end
end
return applied
`)

// offendScript counts a batch of offences against shared jails and
// decides the bans they lead to, with fail2ban's semantics as
// rules.Jails implements them: the offence that makes MaxRetry within
// FindTime (ends included) of one client bans it; the n-th ban within
// the jail's forget window lasts BanTime × Factor^(n-1), at most Max; a
// client serving a ban is not counted. Because counting and deciding are
// one atomic call, offences arriving together from several nodes make
// one ban and one increment step.
//
// A client's offences are a sorted set by time, members "node:seq" so a
// retried batch counts nothing twice, trimmed to the newest MaxRetry and
// expiring after FindTime; its last ban by the jail is "until|count",
// expiring after the ban plus Forget.
//
//	KEYS: bans, bans:exp, unbans, unbans:exp, changes, then per offence
//	      its offences set and its history key
//	ARGV: stream MAXLEN, node, number of jails, then 7 per jail: name,
//	      maxretry, findtime, bantime (µs), factor (0: none), max,
//	      forget (µs); then 5 per offence: jail index (from 1), prefix,
//	      time (µs), member, reason
//
// It returns the bans it made as prefix, value pairs.
var offendScript = redis.NewScript(luaCommon + `
local maxlen, node, nj = ARGV[1], ARGV[2], tonumber(ARGV[3])
local jails = {}
local a = 4
for j = 1, nj do
  jails[j] = {name = ARGV[a], maxretry = tonumber(ARGV[a+1]), findtime = tonumber(ARGV[a+2]),
    bantime = tonumber(ARGV[a+3]), factor = tonumber(ARGV[a+4]), max = tonumber(ARGV[a+5]),
    forget = tonumber(ARGV[a+6])}
  a = a + 7
end
local out = {}
local function offend(jl, p, atstr, member, reason, off, hist)
  local at = tonumber(atstr)
  local cur = redis.call('HGET', KEYS[1], p)
  if cur then
    local cu = banrec(cur)
    if cu and cu > at then return end
  end
  redis.call('ZADD', off, atstr, member)
  local n = redis.call('ZCARD', off)
  if n > jl.maxretry then
    redis.call('ZREMRANGEBYRANK', off, 0, n - jl.maxretry - 1)
    n = jl.maxretry
  end
  local ttl = math.floor(jl.findtime / 1000) + 1000
  if n < jl.maxretry then
    redis.call('PEXPIRE', off, ttl)
    return
  end
  local first = redis.call('ZRANGE', off, 0, 0, 'WITHSCORES')
  local last = redis.call('ZRANGE', off, -1, -1, 'WITHSCORES')
  if tonumber(last[2]) - tonumber(first[2]) > jl.findtime then
    redis.call('PEXPIRE', off, ttl)
    return
  end
  local tomb = redis.call('HGET', KEYS[3], p)
  if tomb then
    local tr = tombrec(tomb)
    if tr and tr >= at then return end
  end
  redis.call('DEL', off)
  local count = 0
  local h = redis.call('GET', hist)
  if h then
    local lu, c = string.match(h, '^(%d+)|(%d+)$')
    if lu and at - tonumber(lu) <= jl.forget then count = tonumber(c) end
  end
  if count < 65535 then count = count + 1 end
  local d = jl.bantime
  if jl.factor > 0 and count > 1 then
    d = jl.bantime * (jl.factor ^ (count - 1))
    if d > jl.max then d = jl.max end
  end
  local u = fmt(at + math.floor(d))
  local val = u .. '|' .. atstr .. '|' .. count .. '|' .. node .. '|' .. string.len(jl.name) .. ':' .. jl.name .. '|' .. reason
  redis.call('HSET', KEYS[1], p, val)
  redis.call('ZADD', KEYS[2], u, p)
  if tomb then
    redis.call('HDEL', KEYS[3], p)
    redis.call('ZREM', KEYS[4], p)
  end
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', maxlen, '*', 'o', 'b', 'p', p, 'v', val)
  redis.call('SET', hist, u .. '|' .. count, 'PX', fmt(math.floor((d + jl.forget) / 1000) + 1000))
  out[#out+1] = p
  out[#out+1] = val
end
local k = 6
while a + 4 <= #ARGV do
  offend(jails[tonumber(ARGV[a])], ARGV[a+1], ARGV[a+2], ARGV[a+3], ARGV[a+4], KEYS[k], KEYS[k+1])
  a = a + 5
  k = k + 2
end
return out
`)

// pruneScript deletes bans that ended and tombstones past their
// retention, at most ARGV[1] of each; any node may run it, and running
// it twice changes nothing. Expiries are not streamed: every node ends
// a ban at its Until by itself.
//
//	KEYS: bans, bans:exp, unbans, unbans:exp
var pruneScript = redis.NewScript(luaCommon + `
local n = 0
for _, pair in ipairs({{KEYS[1], KEYS[2]}, {KEYS[3], KEYS[4]}}) do
  local gone = redis.call('ZRANGEBYSCORE', pair[2], '-inf', fmt(now), 'LIMIT', 0, tonumber(ARGV[1]))
  for _, p in ipairs(gone) do
    redis.call('HDEL', pair[1], p)
    redis.call('ZREM', pair[2], p)
  end
  n = n + #gone
end
return n
`)
