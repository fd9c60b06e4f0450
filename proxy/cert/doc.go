// Package certstore holds certmagic storage for a fleet: Redis, so that
// every node shares ACME accounts, certificates, keys and challenge
// tokens and one node at a time obtains or renews a certificate, with a
// local file mirror that keeps a restarted node serving while Redis is
// down. Package proxy chooses it for fleet.certificates; without a fleet,
// certmagic's own FileStorage in state_dir/certs is used. Redis is safe
// for concurrent use.
package certstore
