//go:build !linux

package proxy

import (
	"errors"
	"fmt"
)

// dropExecutablePages is Linux only (/proc/self/maps, madvise).
func dropExecutablePages() error {
	return fmt.Errorf("drop executable pages: %w", errors.ErrUnsupported)
}
