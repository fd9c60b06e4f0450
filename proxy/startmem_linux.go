//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// dropExecutablePages unmaps the resident pages of the executable's
// read-only mappings (code, read-only data, the function tables) with
// madvise(MADV_DONTNEED), so that the process's RSS counts only the
// pages it touches from now on.
//
// Package initialisation and building the first generation run code
// and read tables spread over most of the binary — about 16 MiB of
// a 36 MiB executable before serve reads its config — and the kernel
// maps each touched page with its neighbours (fault-around, or the
// whole folio of a large-folio page cache), so those pages stay in the
// process's RSS although serving never touches most of them again.
// Dropping the mappings is safe for these ranges only: they are
// private, never written (not writable), so a later access maps the
// same bytes again from the page cache (a minor fault) or, if the
// kernel evicted them meanwhile, from the file. The page cache keeps
// the pages; they are now reclaimable like any unmapped file page
// instead of protected as mapped executable ones. Writable mappings
// (.data, .bss, the heap) are never touched.
func dropExecutablePages() error {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("drop executable pages: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return fmt.Errorf("drop executable pages: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		lo, hi, ok := readOnlyMapping(sc.Bytes(), exe)
		if !ok {
			continue
		}
		// The raw call: the range is not Go memory, so it has no []byte.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_DONTNEED); e != 0 {
			return fmt.Errorf("drop executable pages: madvise %#x-%#x: %w", lo, hi, e)
		}
	}
	return sc.Err()
}

// readOnlyMapping parses one line of /proc/self/maps ("lo-hi perms
// offset dev inode path") and reports the range of a private mapping of
// file exe that is not writable.
func readOnlyMapping(line []byte, exe string) (lo, hi uintptr, ok bool) {
	f := bytes.Fields(line)
	if len(f) < 6 || string(bytes.Join(f[5:], []byte(" "))) != exe {
		return 0, 0, false
	}
	perms := f[1]
	if len(perms) != 4 || perms[0] != 'r' || perms[1] != '-' || perms[3] != 'p' {
		return 0, 0, false
	}
	a, b, found := bytes.Cut(f[0], []byte("-"))
	if !found {
		return 0, 0, false
	}
	l, err1 := strconv.ParseUint(string(a), 16, 64)
	h, err2 := strconv.ParseUint(string(b), 16, 64)
	if err1 != nil || err2 != nil || h <= l {
		return 0, 0, false
	}
	return uintptr(l), uintptr(h), true
}
