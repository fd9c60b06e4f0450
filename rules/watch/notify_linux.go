//go:build linux

package watch

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// dirWatcher wakes Run when something changes in the watched
// directories (inotify). It carries no event details: Run re-examines
// everything on a wake-up, so coalesced or lost events cost nothing.
type dirWatcher struct {
	f  *os.File // the inotify descriptor, in the runtime poller
	c  chan struct{}
	wg sync.WaitGroup

	mu      sync.Mutex
	watched map[string]bool
}

const dirEvents = unix.IN_CREATE | unix.IN_MODIFY | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB

func newDirWatcher(dirs []string) (*dirWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &dirWatcher{f: os.NewFile(uintptr(fd), "inotify"), c: make(chan struct{}, 1), watched: map[string]bool{}}
	w.Add(dirs)
	w.wg.Go(w.loop)
	return w, nil
}

// Add watches the directories not watched yet that exist now.
func (w *dirWatcher) Add(dirs []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range dirs {
		if w.watched[d] {
			continue
		}
		rc, err := w.f.SyscallConn()
		if err != nil {
			return
		}
		var werr error
		_ = rc.Control(func(fd uintptr) { // Control fails only on a closed file
			_, werr = unix.InotifyAddWatch(int(fd), d, dirEvents)
		})
		if werr == nil {
			w.watched[d] = true
		}
	}
}

func (w *dirWatcher) loop() {
	buf := make([]byte, 64<<10)
	for {
		_, err := w.f.Read(buf)
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		select {
		case w.c <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// C delivers wake-ups.
func (w *dirWatcher) C() <-chan struct{} { return w.c }

// Close stops the watcher and waits for its goroutine.
func (w *dirWatcher) Close() {
	_ = w.f.Close() // unblocks Read with os.ErrClosed
	w.wg.Wait()
}
