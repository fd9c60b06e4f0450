// Package store keeps gatehouse's bans and ban history across restarts,
// in an embedded bbolt database (go.etcd.io/bbolt), normally bans.db in
// state_dir: each node's own journal of its ban list.
//
// It owns the file and its format, nothing else: the ban list
// (rules.BanList) is the truth while gatehouse runs, and the jails
// (rules.Jails) decide bans. The store follows the ban list through its
// change feed (Run), writes the admin API's manual bans and unbans
// synchronously (Put, Delete), and hands both back at start (Load). It
// does not enforce bans, nor share them between nodes (rules/fleet).
//
// # Startup and shutdown
//
// The order matters, because Run's first step makes the file equal to the
// ban list:
//
//	st, err := store.Open(store.StoreConfig{Path: filepath.Join(stateDir, "bans.db")}, log)
//	active, history, err := st.Load(time.Now())
//	for _, b := range active {
//		if _, err := bans.Ban(b); err != nil { // e.g. now on the allow list
//			log.Warn("saved ban not restored", "prefix", b.Prefix, "err", err)
//		}
//	}
//	for _, h := range slices.Concat(history, active) {
//		jails.RestoreHistory(h) // repeat offenders keep their place in the increment
//	}
//	sub := bans.Subscribe(4096)
//	g.Go(func() error { defer sub.Close(); return st.Run(ctx, sub) })
//	// ... serve; on shutdown: stop the listeners, cancel ctx, g.Wait(), then
//	st.Close()
//
// The admin API bans with bans.Ban and then st.Put(stored), unbans with
// bans.Unban and then st.Delete, and answers after those return.
//
// # Crash semantics
//
//   - Put and Delete commit (bbolt writes and fsyncs) before they return:
//     an acknowledged manual ban or unban survives kill -9 and, on a disk
//     that honours fsync, a power loss.
//   - A ban decided by a jail reaches the file with the next batch of
//     Run, normally milliseconds after it was made (one transaction for
//     whatever is queued, so a storm of bans is a few fsyncs). A crash in
//     between loses it; the kernel firewall entry, if there is one, still
//     expires by itself, and the client is banned again if it comes back.
//   - If Run falls behind (its subscription overflows) or a write fails,
//     it resynchronises from a snapshot of the ban list: the file is
//     right again after that one transaction. History of bans made and
//     lifted while it was behind is not recorded.
//   - Expired bans stay in the file until Load, the next batch that
//     removes them or the next prune; Load never returns them.
//   - A bbolt file is never torn by a crash: a transaction is either
//     committed or not there.
//   - Ordering: Put and Delete must be called in the order of the
//     BanList calls they mirror. If an unban's Delete overtook the Put
//     of the ban it lifts, the file would keep the ban until its end.
//
// # File format (schema version 1)
//
// Three buckets:
//
//   - "meta": key "schema", the schema version in decimal ("1"). Open
//     refuses a file whose version is newer than it knows (ErrNewerSchema)
//     and a bbolt file without this bucket that has other buckets.
//   - "bans": one record per banned prefix. Key: a family byte (4 or 6),
//     the masked address (4 or 16 bytes, network order), the prefix
//     length (one byte); IPv4-mapped prefixes are folded to IPv4, and a
//     /24 stays a /24. Value: the record version (1); Until and Created
//     as big-endian int64 Unix nanoseconds (to the nanosecond within the
//     years 1678-2262, like BanList; the zero time as the minimum
//     int64); Count as a big-endian uint32; one byte of jail name length
//     and the jail name ("" for a manual ban); the rest is the reason.
//   - "history": a client's last ban by each jail, so that fail2ban's
//     bantime increment continues across restarts. Key: the prefix key
//     followed by the jail name. Value: the first 21 bytes of a ban value
//     (version 1, Until, Created, Count). Records whose ban ended more
//     than StoreConfig.Forget ago are pruned, and at most
//     StoreConfig.MaxHistory are kept.
//
// Binary rather than JSON because of the volumes: a ban storm writes,
// and a start reads, up to a million records. A jail ban takes about 130
// bytes of file and its history record about 100 (bbolt leaves pages
// half full); bbolt reuses freed pages but never shrinks the file.
//
// A record that cannot be read is logged and dropped by Load; a record
// version other than 1 counts as unreadable, since the schema version
// gates format changes.
//
// A Store is safe for concurrent use; it has one Run at a time. Writers
// (Put, Delete, Run's batches) are serialised by bbolt.
package store
