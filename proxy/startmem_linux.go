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
// and read tables spread over most of the binary — about 16 MiB of a
// 36 MiB executable before serve reads its config — and the kernel maps
// each touched page with its neighbours (fault-around, or the whole
// folio of a large-folio page cache), so those pages stay in the
// process's RSS although serving never touches most of them again.
//
// Dropping a private mapping's pages discards what was written to
// them, so only mappings that are not writable and hold no written
// (anonymous) page are dropped: their bytes are the file's, and a later
// access maps them again from the page cache (a minor fault) or, if the
// kernel evicted them meanwhile, from the file. That excludes the
// dynamic linker's relocated RELRO pages of a cgo or race-detector
// build, which are read-only but written. The page cache keeps the
// pages; unmapped, they are reclaimable like any file page instead of
// protected as mapped executable ones.
func dropExecutablePages() error {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("drop executable pages: %w", err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return fmt.Errorf("drop executable pages: %w", err)
	}
	for _, m := range cleanMappings(smaps, exe) {
		// The raw call: the range is not Go memory, so it has no []byte.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, m[0], m[1]-m[0], unix.MADV_DONTNEED); e != 0 {
			return fmt.Errorf("drop executable pages: madvise %#x-%#x: %w", m[0], m[1], e)
		}
	}
	return nil
}

// cleanMappings returns the ranges of /proc/self/smaps' private,
// read-only mappings of file exe that hold no anonymous (written) page.
func cleanMappings(smaps []byte, exe string) [][2]uintptr {
	var out [][2]uintptr
	var lo, hi uintptr
	in := false
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Bytes()
		if l, h, ok := readOnlyMapping(line, exe); ok {
			lo, hi, in = l, h, true
			continue
		}
		rest, ok := bytes.CutPrefix(line, []byte("Anonymous:"))
		if !ok || !in {
			// A header of another mapping has no "Anonymous:" prefix;
			// a mapping's fields end before the next header.
			if isMapHeader(line) {
				in = false
			}
			continue
		}
		if f := bytes.Fields(rest); len(f) == 2 && string(f[0]) == "0" {
			out = append(out, [2]uintptr{lo, hi})
		}
		in = false
	}
	return out
}

// isMapHeader reports whether an smaps line starts a mapping
// ("lo-hi perms …") rather than being one of its "Key: value" fields.
func isMapHeader(line []byte) bool {
	f, _, _ := bytes.Cut(line, []byte(" "))
	return bytes.IndexByte(f, '-') > 0 && !bytes.HasSuffix(f, []byte(":"))
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
