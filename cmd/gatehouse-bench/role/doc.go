// Package role holds the small programs gatehouse-bench runs as
// processes of their own, so each can be pinned to cores and measured
// apart: the upstream app (Upstream), the bare Go reverse proxy (Bare),
// the probe scanner (Scanner, whose JSON summary is ScanReport) and a
// one-shot HTTP check (Get). Each is a subcommand of gatehouse-bench,
// started from its own executable, and returns when its flags say it is
// done or on SIGTERM.
package role
