// Package configs holds gatehouse's example configs and the embedded demo
// default. It has no logic: only the embedded files.
package configs

import _ "embed"

// Default is configs/default.yaml, the demo config `gatehouse serve` runs
// when it is given no config file. The demo app's address replaces the
// DemoUpstream placeholder in it.
//
//go:embed default.yaml
var Default []byte

// Placeholders in Default, replaced when the demo starts.
const (
	// DemoUpstream stands for the built-in demo app's URL.
	DemoUpstream = "${DEMO_UPSTREAM}"
	// DemoHtpasswd stands for the demo staging host's htpasswd file.
	DemoHtpasswd = "${DEMO_HTPASSWD}"
	// DemoUser is the user in that file.
	DemoUser = "demo"
	// DemoToken stands for the demo admin token's sha256: reference; the
	// token itself is made at start.
	DemoToken = "${DEMO_TOKEN}"
)
