//go:build !unix

package logsink

import (
	"errors"
	"fmt"
)

// HandOver is unsupported off Unix, where there is no user to switch to.
func (ss *Set) HandOver(uid, gid int) error {
	return fmt.Errorf("hand access logs to another user: %w", errors.ErrUnsupported)
}
