//go:build !linux

package firewall

import (
	"errors"
	"fmt"
)

// New returns an error wrapping errors.ErrUnsupported and ErrUnavailable:
// the kernel firewall backends exist on Linux only.
func New(cfg Config) (Backend, error) {
	return nil, fmt.Errorf("firewall backend %q: kernel firewall needs Linux: %w (%w)", cfg.Backend, errors.ErrUnsupported, ErrUnavailable)
}
