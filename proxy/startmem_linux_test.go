//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"testing"
)

func TestReadOnlyMapping(t *testing.T) {
	t.Parallel()
	const exe = "/usr/local/bin/gatehouse"
	tests := []struct {
		name   string
		line   string
		lo, hi uintptr
		ok     bool
	}{
		{"code", "00400000-015b7000 r-xp 00000000 fe:00 9986362    /usr/local/bin/gatehouse", 0x400000, 0x15b7000, true},
		{"read-only data", "015b7000-02626000 r--p 011b7000 fe:00 9986362    /usr/local/bin/gatehouse", 0x15b7000, 0x2626000, true},
		{"writable data", "02626000-026c3000 rw-p 02226000 fe:00 9986362    /usr/local/bin/gatehouse", 0, 0, false},
		{"shared", "00400000-015b7000 r-xs 00000000 fe:00 9986362    /usr/local/bin/gatehouse", 0, 0, false},
		{"other file", "7f00000-7f10000 r-xp 00026000 fe:00 326269    /usr/lib/x86_64-linux-gnu/libc.so.6", 0, 0, false},
		{"anonymous", "2ec0d1400000-2ec0d2400000 rw-p 00000000 00:00 0", 0, 0, false},
		{"another path with the same ending", "00400000-00500000 r-xp 00000000 fe:00 1    /opt/my gate/usr/local/bin/gatehouse", 0, 0, false},
		{"bad range", "00500000-00400000 r-xp 00000000 fe:00 1    /usr/local/bin/gatehouse", 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi, ok := readOnlyMapping([]byte(tc.line), exe)
			if lo != tc.lo || hi != tc.hi || ok != tc.ok {
				t.Errorf("readOnlyMapping(%q) = %#x, %#x, %v, want %#x, %#x, %v", tc.line, lo, hi, ok, tc.lo, tc.hi, tc.ok)
			}
		})
	}
	if _, _, ok := readOnlyMapping([]byte("00400000-00500000 r-xp 00000000 fe:00 1    /opt/my gate/gatehouse"), "/opt/my gate/gatehouse"); !ok {
		t.Errorf("readOnlyMapping of a path with a space: not found")
	}
}

func TestCleanMappings(t *testing.T) {
	t.Parallel()
	const exe = "/usr/local/bin/gatehouse"
	// A cgo build's maps: the dynamic linker wrote the RELRO page
	// (Anonymous 4 kB) before making it read-only; dropping it would
	// lose the relocations (the race detector's runtime crashed so).
	smaps := `00400000-00402000 r--p 00000000 fe:00 1    /usr/local/bin/gatehouse
Size:                  8 kB
Rss:                   8 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
00402000-02217000 r-xp 00002000 fe:00 1    /usr/local/bin/gatehouse
Size:              30804 kB
Rss:               14104 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
034ab000-034ac000 r--p 030aa000 fe:00 1    /usr/local/bin/gatehouse
Size:                  4 kB
Rss:                   4 kB
Anonymous:             4 kB
VmFlags: rd mr mw me ac
034ac000-0354d000 rw-p 030ab000 fe:00 1    /usr/local/bin/gatehouse
Size:                644 kB
Anonymous:           120 kB
7f0000000000-7f0000010000 r-xp 00026000 fe:00 2    /usr/lib/x86_64-linux-gnu/libc.so.6
Size:                 64 kB
Anonymous:             0 kB
`
	got := cleanMappings([]byte(smaps), exe)
	want := [][2]uintptr{{0x400000, 0x402000}, {0x402000, 0x2217000}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("cleanMappings() = %#x, want %#x", got, want)
	}
}

// TestDropExecutablePages drops the test binary's own start-up pages:
// the process keeps running (the pages come back from the file), and
// the read-only mappings hold fewer resident pages than before. Under
// -race it is also the regression test for dropping written read-only
// pages: the race runtime's relocated RELRO page, dropped, crashed the
// process at exit.
func TestDropExecutablePages(t *testing.T) {
	// Not parallel: it changes what the whole process has mapped.
	before := exeReadOnlyRSS(t)
	if err := dropExecutablePages(); err != nil {
		t.Fatalf("dropExecutablePages() = %v", err)
	}
	after := exeReadOnlyRSS(t)
	if after >= before {
		t.Errorf("resident read-only pages of the executable: %d kB after dropping, %d kB before", after, before)
	}
}

// exeReadOnlyRSS sums the Rss of the executable's read-only private
// mappings in /proc/self/smaps, in kB.
func exeReadOnlyRSS(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	sum, in := 0, false
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Bytes()
		if _, _, ok := readOnlyMapping(line, exe); ok {
			in = true
			continue
		}
		if rest, ok := bytes.CutPrefix(line, []byte("Rss:")); ok && in {
			n, err := strconv.Atoi(string(bytes.Fields(rest)[0]))
			if err != nil {
				t.Fatalf("smaps Rss line %q: %v", line, err)
			}
			sum += n
			in = false
		}
	}
	if sum == 0 {
		t.Fatalf("no resident read-only mapping of %s in /proc/self/smaps", exe)
	}
	return sum
}
