// Package intel holds what gatehouse knows about where a connection comes
// from, as address prefix lists: blocklist feeds (FireHOL netsets,
// Spamhaus DROP, CrowdSec decisions, local files) and the published
// ranges of the CDNs that may sit in front of gatehouse (Cloudflare,
// Fastly, CloudFront).
//
// Data flows one way: bytes from a URL, a file or a snapshot embedded in
// the binary are parsed (Parse, bounded in bytes and prefixes) into
// prefixes; NewSet folds them into an immutable Set of sorted disjoint
// ranges; NewIndex merges several sets into one Index for the request
// path, where one binary search says which feed lists an address. A
// Source owns one list's life: it loads the last good copy, refreshes it
// with conditional GETs (or re-reads a file when it changes), keeps the
// last good set when a download or parse fails, and hands each new Set to
// its caller.
//
// intel is a pure library: it imports neither middleware nor proxy, and
// it never touches the kernel (rules/firewall gets a Set's prefixes
// through Set.Prefixes). Set, Index and Provider values are immutable and
// safe for concurrent use; their lookups do not allocate. A Source is safe
// for concurrent use; only one Run may be active at a time.
package intel
