//go:build linux

package privdrop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// Switch makes every thread of the process c (setgroups, setgid,
// setuid) and leaves it exactly the capabilities in kept, in the
// permitted, effective, inheritable, ambient and bounding sets, with
// no_new_privs set. It needs root (CAP_SETUID, CAP_SETGID,
// CAP_SETPCAP). libcap's psx mechanism applies each change to all OS
// threads at once: the kernel changes credentials per thread, and a Go
// program runs on many. The result is read back from every thread's
// /proc status before Switch returns nil.
func Switch(c Credential, kept []Capability) error {
	var keep []cap.Value
	var mask uint64
	for _, k := range kept {
		keep = append(keep, cap.Value(k))
		mask |= 1 << k
	}
	// Groups first: setgroups and setgid need CAP_SETGID, which the
	// capability step below removes.
	if err := cap.SetGroups(c.GID, c.Groups...); err != nil {
		return fmt.Errorf("set gid %d and groups %v: %w", c.GID, c.Groups, err)
	}
	// SetUID keeps the permitted set across the change (PR_SET_KEEPCAPS);
	// the kernel clears the effective and ambient sets.
	if err := cap.SetUID(c.UID); err != nil {
		return fmt.Errorf("set uid %d: %w", c.UID, err)
	}
	// Bounding, inheritable and ambient sets, while CAP_SETPCAP is still
	// permitted. A kept capability must be ambient for the firewall tools
	// gatehouse runs (ipset, iptables) to hold it: a non-root program gets
	// no capability from exec otherwise.
	iab := cap.NewIAB()
	for v := range cap.MaxBits() {
		if !slices.Contains(keep, v) {
			if err := iab.SetVector(cap.Bound, true, v); err != nil {
				return fmt.Errorf("Capability bounding set: %w", err)
			}
		}
	}
	if err := iab.SetVector(cap.Amb, true, keep...); err != nil {
		return fmt.Errorf("ambient capabilities: %w", err)
	}
	if err := iab.SetProc(); err != nil {
		return fmt.Errorf("set bounding, inheritable and ambient capabilities to %q: %w", iab, err)
	}
	set := cap.NewSet()
	for _, f := range []cap.Flag{cap.Permitted, cap.Effective, cap.Inheritable} {
		if err := set.SetFlag(f, true, keep...); err != nil {
			return fmt.Errorf("Capability set: %w", err)
		}
	}
	if err := set.SetProc(); err != nil {
		return fmt.Errorf("set capabilities to %q: %w", set, err)
	}
	if _, err := cap.Prctlw(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return checkThreads(c, mask)
}

// checkThreads reads the status of every thread of the process and
// checks that each runs as c with exactly the capabilities in mask.
func checkThreads(c Credential, mask uint64) error {
	paths, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(paths) == 0 {
		return fmt.Errorf("check the switch: no thread status in /proc/self/task (%v)", err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread has exited
		}
		if err != nil {
			return fmt.Errorf("check the switch: %w", err)
		}
		st, err := parseProcStatus(string(data))
		if err != nil {
			return fmt.Errorf("check the switch: %s: %w", p, err)
		}
		if err := checkSwitched(st, c, mask); err != nil {
			return fmt.Errorf("check the switch: thread %s: %w", filepath.Base(filepath.Dir(p)), err)
		}
	}
	return nil
}

// Writable reports whether the real user may write in dir.
func Writable(dir string) bool {
	return unix.Access(dir, unix.W_OK) == nil
}

// procStatus is what /proc/PID/status (or /proc/PID/task/TID/status)
// says about a thread's identity and privilege.
type procStatus struct {
	// UID and GID are the real, effective, saved and file system IDs.
	UID, GID [4]int
	// Groups are the supplementary groups, as listed.
	Groups []int
	// The capability sets, as bit masks (bit n is capability n).
	CapInh, CapPrm, CapEff, CapBnd, CapAmb uint64
	// NoNewPrivs is the no_new_privs bit.
	NoNewPrivs bool
}

// parseProcStatus reads the identity and capability lines of a
// proc_pid_status(5) file. Every one of them must be present once.
func parseProcStatus(data string) (procStatus, error) {
	var st procStatus
	seen := map[string]bool{}
	for line := range strings.Lines(data) {
		key, val, ok := strings.Cut(strings.TrimRight(line, "\n"), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Uid":
			st.UID, err = parseIDs4(val)
		case "Gid":
			st.GID, err = parseIDs4(val)
		case "Groups":
			st.Groups, err = parseIDs(val)
		case "CapInh":
			st.CapInh, err = parseCapMask(val)
		case "CapPrm":
			st.CapPrm, err = parseCapMask(val)
		case "CapEff":
			st.CapEff, err = parseCapMask(val)
		case "CapBnd":
			st.CapBnd, err = parseCapMask(val)
		case "CapAmb":
			st.CapAmb, err = parseCapMask(val)
		case "NoNewPrivs":
			switch val {
			case "0", "1":
				st.NoNewPrivs = val == "1"
			default:
				err = fmt.Errorf("not 0 or 1")
			}
		default:
			continue
		}
		if err != nil {
			return procStatus{}, fmt.Errorf("status line %s: %q: %w", key, val, err)
		}
		if seen[key] {
			return procStatus{}, fmt.Errorf("status line %s: repeated", key)
		}
		seen[key] = true
	}
	for _, key := range []string{"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"} {
		if !seen[key] {
			return procStatus{}, fmt.Errorf("status line %s: missing", key)
		}
	}
	return st, nil
}

// parseCapMask parses a capability mask: 16 hex digits.
func parseCapMask(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, errors.New("not 16 hex digits")
	}
	return strconv.ParseUint(s, 16, 64)
}

// parseIDs parses whitespace-separated decimal IDs (uid_t/gid_t).
func parseIDs(s string) ([]int, error) {
	var ids []int
	for f := range strings.FieldsSeq(s) {
		id, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, err
		}
		ids = append(ids, int(id))
	}
	return ids, nil
}

// parseIDs4 parses the four IDs of a Uid or Gid line.
func parseIDs4(s string) ([4]int, error) {
	ids, err := parseIDs(s)
	if err != nil {
		return [4]int{}, err
	}
	if len(ids) != 4 {
		return [4]int{}, fmt.Errorf("%d ids, want 4", len(ids))
	}
	return [4]int(ids), nil
}

// checkSwitched reports how st differs from a thread switched to c that
// holds exactly the capabilities in mask; nil when it does not.
func checkSwitched(st procStatus, c Credential, mask uint64) error {
	var errs []error
	if st.UID != [4]int{c.UID, c.UID, c.UID, c.UID} {
		errs = append(errs, fmt.Errorf("uid %v, want %d", st.UID, c.UID))
	}
	if st.GID != [4]int{c.GID, c.GID, c.GID, c.GID} {
		errs = append(errs, fmt.Errorf("gid %v, want %d", st.GID, c.GID))
	}
	if groups := slices.Sorted(slices.Values(st.Groups)); !slices.Equal(groups, c.Groups) {
		errs = append(errs, fmt.Errorf("groups %v, want %v", st.Groups, c.Groups))
	}
	for _, set := range []struct {
		name string
		got  uint64
	}{{"permitted", st.CapPrm}, {"effective", st.CapEff}, {"inheritable", st.CapInh}, {"ambient", st.CapAmb}, {"bounding", st.CapBnd}} {
		if set.got != mask {
			errs = append(errs, fmt.Errorf("%s capabilities %016x, want %016x", set.name, set.got, mask))
		}
	}
	if !st.NoNewPrivs {
		errs = append(errs, errors.New("no_new_privs not set"))
	}
	return errors.Join(errs...)
}
