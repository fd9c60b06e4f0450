//go:build !linux

package proxy

import (
	"errors"
	"fmt"
)

// switchUser is Linux only: capabilities and the per-thread credential
// change it relies on are Linux's.
func switchUser(Credential, []capability) error {
	return fmt.Errorf("serve --user: %w", errors.ErrUnsupported)
}

// writable is not checked where switchUser is unsupported.
func writable(string) bool { return true }
