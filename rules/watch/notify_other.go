//go:build !linux

package watch

import (
	"errors"
	"fmt"
)

// dirWatcher is inotify's place where there is none: FileSource polls.
type dirWatcher struct{}

func newDirWatcher([]string) (*dirWatcher, error) {
	return nil, fmt.Errorf("inotify: %w", errors.ErrUnsupported)
}

func (*dirWatcher) Add([]string)       {}
func (*dirWatcher) C() <-chan struct{} { return nil }
func (*dirWatcher) Close()             {}
