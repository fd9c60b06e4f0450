package procfs

import (
	"os"
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    Stat
		wantErr bool
	}{
		{name: "nginx worker", in: "4242 (nginx) S 4241 4241 4241 0 -1 4194624 1167 0 0 0 350 120 7 3 20 0 1 0 9102 11812864 1049 18446744073709551615",
			want: Stat{State: 'S', PPID: 4241, UTime: 350, STime: 120, CUTime: 7, CSTime: 3}},
		{name: "name with spaces and parentheses", in: "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 3 4 20 0",
			want: Stat{State: 'R', PPID: 1, UTime: 1, STime: 2, CUTime: 3, CSTime: 4}},
		{name: "truncated", in: "7 (x) S 1 7 7 0", wantErr: true},
		{name: "no name", in: "7 x S 1 7 7 0 -1 0 0 0 0 0 1 2 3 4", wantErr: true},
		{name: "negative ticks", in: "7 (x) S 1 7 7 0 -1 0 0 0 0 0 1 2 -3 4", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseStat(%q) error = %v, want error: %v", tc.in, err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("ParseStat(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzParseProcStat: a line ParseStat accepts has a one-character
// state, and the PPID it reads is the field after the last ")".
func FuzzParseProcStat(f *testing.F) {
	f.Add("4242 (nginx) S 4241 4241 4241 0 -1 4194624 1167 0 0 0 350 120 7 3 20 0") // a real line
	f.Add("7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 3 4 20 0")                        // parentheses in the name
	f.Add("7 (x) S 1 7")                                                            // truncated
	f.Fuzz(func(t *testing.T, in string) {
		st, err := ParseStat([]byte(in))
		if err != nil {
			return
		}
		rest := strings.Fields(in[strings.LastIndexByte(in, ')')+1:])
		if st.State != rest[0][0] || len(rest[0]) != 1 {
			t.Errorf("ParseStat(%q): state %q, want the field after the name", in, st.State)
		}
	})
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
		got, ok := ParseStatusKB(tc.line, "VmRSS:")
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseStatusKB(%q) = %d, %v; want %d, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

// TestMemory reads this process's memory: the kernel computes VmRSS as
// the sum of RssAnon, RssFile and RssShmem, so the parts add up, and a
// process that is gone reads as zero.
func TestMemory(t *testing.T) {
	m := Memory(os.Getpid())
	if m.RSS == 0 || m.Anon == 0 || m.File == 0 {
		t.Fatalf("Memory(self) = %+v, want every part above zero", m)
	}
	if m.Anon+m.File != m.RSS {
		t.Errorf("Memory(self) = %+v: anonymous + file = %d, want RSS %d", m, m.Anon+m.File, m.RSS)
	}
	if m := Memory(-1); m != (Mem{}) {
		t.Errorf("Memory(-1) = %+v, want zero", m)
	}
}
