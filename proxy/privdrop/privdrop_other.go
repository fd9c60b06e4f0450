//go:build !linux

package privdrop

import (
	"errors"
	"fmt"
)

// Switch is Linux only: capabilities and the per-thread credential
// change it relies on are Linux's.
func Switch(Credential, []Capability) error {
	return fmt.Errorf("serve --user: %w", errors.ErrUnsupported)
}

// Writable is not checked where Switch is unsupported.
func Writable(string) bool { return true }
