//go:build !linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// attackMain: the attack scenario needs Linux network namespaces and
// kernel ban sets.
func attackMain(context.Context, []string, io.Writer, io.Writer) error {
	return fmt.Errorf("attack: network namespaces: %w", errors.ErrUnsupported)
}
