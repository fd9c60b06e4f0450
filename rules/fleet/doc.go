// Package fleet shares bans, unbans and the offences of shared jails
// between the gatehouse nodes of a fleet through one Redis (fleet: in
// the config). Without a fleet block nothing here runs.
//
// It owns the Redis side of the ban state and the sync worker. It does
// not own the ban list (rules.BanList: each node's truth while it runs),
// the jails' local counting (rules.Jails), the journal file
// (rules/store: the outbox and the stream cursor live in bans.db), the
// kernel (rules/firewall follows the ban list, so received bans reach
// the kernel sets with their remaining time as timeout like any other),
// nor the certificates (proxy's certmagic storage).
//
// # Data flow
//
// Outbound: a ban or unban made here is written locally first and never
// waits for Redis. The admin API writes it to the ban list and, in one
// bbolt transaction, to the store and the outbox (store.PutQueued,
// store.DeleteQueued), then calls Kick; the push loop drains the outbox
// with the apply script, one call per 512 changes, and removes what
// Redis took. Bans decided by local jails come through the ban list's
// change feed and are pushed at once while Redis answers, or queued in
// the outbox while it does not; one lost to a crash before its push is
// pushed at the next start, with every ban the store kept.
//
// Inbound: the follower reads the change stream with a blocking XREAD
// on a connection of its own, from the stream ID saved in the store
// (once a second at most; replays change nothing). It does a full
// resync (push the outbox and every local ban, then HSCAN the bans and
// tombstones) when there is no cursor, when the stream was trimmed past
// the cursor, or when the fleet's epoch (a random key created with SET
// NX) changed, which is how a Redis that restarted empty is detected.
// Received bans go onto the ban list with Until on this node's clock;
// the ban list's feed then carries them to the store and the kernel.
//
// Shared jails: rules.Jails hands offences of the shared jails to
// ShareOffence, which queues them without blocking; a loop counts them
// in batches with the offend script, which keeps each client's recent
// offences in Redis and decides the ban in the same atomic call. While
// Redis is unreachable, or when the queue is full, offences are counted
// locally.
//
// Shared rate limits: a middleware.Limiter with shared: true asks its
// Limit (TakeShared) to count each request; one loop sends the requests
// that queued while its previous call was in flight as one call of the
// limit script, which applies nginx's limit_req arithmetic on Redis's
// clock. While Redis fails, each request is counted by the node's own
// limiter instead, and one request a second tries Redis again.
//
// # Keys (all under the hash tag {prefix})
//
//	{gh}:bans         hash   prefix → "until|rev|count|node|len:jail|reason"
//	{gh}:bans:exp     zset   prefix by until
//	{gh}:unbans       hash   prefix → "rev|keep|node" (tombstones)
//	{gh}:unbans:exp   zset   prefix by keep
//	{gh}:changes      stream o=b|u, p=prefix, v=value; XADD MAXLEN ~ StreamMax
//	{gh}:epoch        string random ID of the data set
//	{gh}:nodes        hash   node → JSON heartbeat (NodeStatus)
//	{gh}:off:J:P      zset   recent offences of client P against jail J
//	{gh}:hist:J:P     string "until|count": P's last ban by J
//	{gh}:lim:N:K      string "excess|last": key K of shared rate limit N
//
// Times are microseconds on Redis's clock (TIME): every node tracks the
// offset of its clock to Redis's and converts, so skewed node clocks do
// not shorten or lengthen bans. Ban and unban of one prefix resolve
// last-writer-wins on the revision (when the change was made), in the
// Lua scripts (see scripts.go), so replays and reorderings are harmless.
//
// # Failure semantics
//
// Redis down: bans, unbans and the admin API keep working; changes wait
// in the outbox, which is durable for manual changes when the admin API
// answers and within a batch for jail bans; the follower reconnects with
// backoff, and every session that starts after a restart pushes the
// whole ban list (Redis keeps what is newer). A Redis that restarts empty gets every node's live bans back
// (each node pushes its ban list on a resync) and the unbans still in
// outboxes; tombstones it lost cannot stop a node from pushing back a
// ban that was lifted before the restart and whose unban had already
// been pushed: that ban is lifted again only by a new unban.
//
// A Fleet is safe for concurrent use; Run is its one long-lived loop.
package fleet
