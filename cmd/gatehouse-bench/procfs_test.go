package main

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{name: "nginx worker", in: "4242 (nginx) S 4241 4241 4241 0 -1 4194624 1167 0 0 0 350 120 7 3 20 0 1 0 9102 11812864 1049 18446744073709551615",
			want: procStat{State: 'S', PPID: 4241, UTime: 350, STime: 120, CUTime: 7, CSTime: 3}},
		{name: "name with spaces and parentheses", in: "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 3 4 20 0",
			want: procStat{State: 'R', PPID: 1, UTime: 1, STime: 2, CUTime: 3, CSTime: 4}},
		{name: "truncated", in: "7 (x) S 1 7 7 0", wantErr: true},
		{name: "no name", in: "7 x S 1 7 7 0 -1 0 0 0 0 0 1 2 3 4", wantErr: true},
		{name: "negative ticks", in: "7 (x) S 1 7 7 0 -1 0 0 0 0 0 1 2 -3 4", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseProcStat(%q) error = %v, want error: %v", tc.in, err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("parseProcStat(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzParseProcStat: a line parseProcStat accepts has a one-character
// state, and the PPID it reads is the field after the last ")".
func FuzzParseProcStat(f *testing.F) {
	f.Add("4242 (nginx) S 4241 4241 4241 0 -1 4194624 1167 0 0 0 350 120 7 3 20 0") // a real line
	f.Add("7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 3 4 20 0")                        // parentheses in the name
	f.Add("7 (x) S 1 7")                                                            // truncated
	f.Fuzz(func(t *testing.T, in string) {
		st, err := parseProcStat([]byte(in))
		if err != nil {
			return
		}
		rest := strings.Fields(in[strings.LastIndexByte(in, ')')+1:])
		if st.State != rest[0][0] || len(rest[0]) != 1 {
			t.Errorf("parseProcStat(%q): state %q, want the field after the name", in, st.State)
		}
	})
}

// TestProcTree reads this process and a child of it from /proc.
func TestProcTree(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CPU accounting reads /proc: %v", err)
		}
		t.Skip("no /proc")
	}
	ps := &procs{dir: t.TempDir()}
	t.Cleanup(ps.stopAll)
	p, err := ps.start(t.Context(), "sleep", placement{}, nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	tree := procTree(os.Getpid())
	if tree[0] != os.Getpid() || !slices.Contains(tree, p.pid()) {
		t.Errorf("procTree(self) = %v, want self first and the child %d in it", tree, p.pid())
	}
	if rss := treeRSS(os.Getpid()); rss < 1<<20 {
		t.Errorf("treeRSS(self) = %d bytes, want at least 1 MiB", rss)
	}
	st, err := readProcStat(p.pid())
	if err != nil || st.PPID != os.Getpid() {
		t.Errorf("readProcStat(child) = %+v, %v; want PPID %d", st, err, os.Getpid())
	}
	ps.stop(p, 5e9)
	if !p.exited() || alive(p.pid()) {
		t.Errorf("child %d still alive after stop", p.pid())
	}
}

func TestParseStatusKB(t *testing.T) {
	for _, tc := range []struct {
		line string
		want uint64
		ok   bool
	}{
		{"VmRSS:\t   12345 kB", 12345, true},
		{"VmRSS: 12 MB", 0, false},
		{"VmHWM:\t   1 kB", 0, false},
		{"VmRSS: x kB", 0, false},
	} {
		got, ok := parseStatusKB(tc.line, "VmRSS:")
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseStatusKB(%q) = %d, %v; want %d, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}
