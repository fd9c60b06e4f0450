package procfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stat is what the benchmarks read from /proc/PID/stat: the parent,
// and the CPU time in clock ticks spent by the process (all its threads)
// and by its children that it has waited for.
type Stat struct {
	State                        byte
	PPID                         int
	UTime, STime, CUTime, CSTime uint64
}

// ErrStatFormat reports a /proc/PID/stat line that is not what proc(5)
// describes.
var ErrStatFormat = errors.New("malformed /proc stat line")

// ParseStat parses one /proc/PID/stat line (proc(5)). The command
// name, in parentheses, may hold spaces and parentheses itself, so the
// fields are counted from the last ")".
func ParseStat(line []byte) (Stat, error) {
	var st Stat
	i := bytes.LastIndexByte(line, ')')
	if i < 0 || bytes.IndexByte(line, '(') < 0 || bytes.IndexByte(line, '(') > i {
		return st, ErrStatFormat
	}
	// After ")": state(3) ppid(4) pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(string(line[i+1:]))
	if len(f) < 15 || len(f[0]) != 1 {
		return st, ErrStatFormat
	}
	st.State = f[0][0]
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return st, fmt.Errorf("%w: ppid %q", ErrStatFormat, f[1])
	}
	st.PPID = ppid
	var ticks [4]uint64
	for k := range ticks {
		// cutime and cstime are signed in the kernel (long) but never
		// negative in practice; a negative value is malformed here.
		v, err := strconv.ParseUint(f[11+k], 10, 64)
		if err != nil {
			return st, fmt.Errorf("%w: field %d %q", ErrStatFormat, 14+k, f[11+k])
		}
		ticks[k] = v
	}
	st.UTime, st.STime, st.CUTime, st.CSTime = ticks[0], ticks[1], ticks[2], ticks[3]
	return st, nil
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return Stat{}, err
	}
	st, err := ParseStat(b)
	if err != nil {
		return st, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	st, err := ReadStat(pid)
	return err == nil && st.State != 'Z'
}

// Tree returns pid and all its living descendants, found by the PPID
// of every process in /proc. Processes that end while it reads are left
// out.
func Tree(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := ReadStat(p)
		if err != nil || st.State == 'Z' {
			continue
		}
		children[st.PPID] = append(children[st.PPID], p)
	}
	out := []int{pid}
	for i := 0; i < len(out) && i < 100_000; i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// TreeTicks returns the CPU ticks used so far by pid and its descendants
// (user + system). withChildren adds the time of children they have
// already waited for: fail2ban's ban commands are short-lived children.
func TreeTicks(pid int, withChildren bool) uint64 {
	var t uint64
	for _, p := range Tree(pid) {
		st, err := ReadStat(p)
		if err != nil {
			continue
		}
		t += st.UTime + st.STime
		if withChildren {
			t += st.CUTime + st.CSTime
		}
	}
	return t
}

// TreeRSS returns the resident set size of pid and its descendants in
// bytes (VmRSS of each, summed; shared pages count once per process, as
// ps does).
func TreeRSS(pid int) uint64 {
	var total uint64
	for _, p := range Tree(pid) {
		total += VMRSS(p)
	}
	return total
}

// VMRSS returns VmRSS of one process in bytes, 0 if it is gone.
func VMRSS(pid int) uint64 {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kb, ok := ParseStatusKB(sc.Text(), "VmRSS:"); ok {
			return kb << 10
		}
	}
	return 0
}

// ParseStatusKB parses a /proc/PID/status line "Key:   123 kB".
func ParseStatusKB(line, key string) (uint64, bool) {
	rest, ok := strings.CutPrefix(line, key)
	if !ok {
		return 0, false
	}
	f := strings.Fields(rest)
	if len(f) != 2 || f[1] != "kB" {
		return 0, false
	}
	v, err := strconv.ParseUint(f[0], 10, 64)
	return v, err == nil
}

// CoreTicks returns the busy and total ticks of the listed CPUs from
// /proc/stat (busy: everything but idle and iowait).
func CoreTicks(cpus []int) (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	want := map[string]bool{}
	for _, c := range cpus {
		want["cpu"+strconv.Itoa(c)] = true
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 6 || !want[f[0]] {
			continue
		}
		var sum, idle uint64
		for k, s := range f[1:] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil || k >= 8 { // guest times are already in user/nice
				continue
			}
			sum += v
			if k == 3 || k == 4 { // idle, iowait
				idle += v
			}
		}
		busy += sum - idle
		total += sum
	}
	return busy, total
}

// Mem is a process's resident memory from /proc/PID/status, in bytes.
type Mem struct {
	RSS  uint64 // VmRSS: all of the below
	Anon uint64 // RssAnon: heap, stacks, runtime
	File uint64 // RssFile + RssShmem: pages of mapped files, the executable's first
}

// Memory returns pid's resident memory; zero if it is gone.
func Memory(pid int) Mem {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return Mem{}
	}
	var m Mem
	for line := range strings.SplitSeq(string(b), "\n") {
		for _, f := range []struct {
			key string
			to  *uint64
		}{{"VmRSS:", &m.RSS}, {"RssAnon:", &m.Anon}, {"RssFile:", &m.File}, {"RssShmem:", &m.File}} {
			if kb, ok := ParseStatusKB(line, f.key); ok {
				*f.to += kb << 10
			}
		}
	}
	return m
}
