//go:build unix

package logsink

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// HandOver gives the open log files this process owns (those it created
// as root) to uid:gid, for a process about to switch to that user: after
// the switch, Reopen (SIGHUP, logrotate, reload) must still be allowed
// to open them. Files owned by someone else (logrotate's create user)
// are left alone.
func (ss *Set) HandOver(uid, gid int) error {
	var errs []error
	for _, ls := range ss.all() {
		ls.mu.Lock()
		if f := ls.file; f != nil {
			fi, err := f.Stat()
			if err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == os.Geteuid() {
					err = f.Chown(uid, gid)
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ls.path, err))
			}
		}
		ls.mu.Unlock()
	}
	return errors.Join(errs...)
}
