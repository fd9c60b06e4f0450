// Package admin is the admin listener (admin.listen): /healthz and
// /readyz, the Prometheus exposition on /metrics, the token-authenticated
// JSON API (/v1/bans, /v1/sign/s3, /v1/sign/cloudfront, /v1/sign/link)
// and the dashboard of package proxy/ui under /ui/ — all behind one
// Host, lockout and cross-origin rule (gate.go) and one audit line per
// API call.
//
// It does not know the server that runs it: package proxy passes the ban
// list, the metrics registry, the dashboard's sources and a Current func
// that returns what the running config built (tokens, jails, signers),
// read on every request so a reload takes effect at once. Manual bans
// and unbans go through one code path for the API and the dashboard's
// forms (manualBan, manualUnban) and are saved through Config.SaveBan and
// Config.DeleteBan before the API answers.
//
// It takes plain values, never the config file's types: package proxy
// maps admin.tokens to Token and the signer config to the signers of a
// Signing (proxy.NewSigning), which is also what `gatehouse sign -c FILE`
// uses, so the command line and the API sign alike. Errors reach clients as
// {"error": "...", "field": "..."}. Admin and Signing are safe for
// concurrent use.
package admin
