//go:build linux

package privdrop

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"gatehouse/rules/testenv"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// TestCapabilityNumbers pins the capability numbers and names privdrop.go
// uses to libcap's.
func TestCapabilityNumbers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c    Capability
		want cap.Value
	}{{CapNetAdmin, cap.NET_ADMIN}, {CapNetRaw, cap.NET_RAW}} {
		if cap.Value(tc.c) != tc.want || tc.c.String() != tc.want.String() {
			t.Errorf("Capability %d (%s), want %d (%s)", tc.c, tc.c, tc.want, tc.want)
		}
	}
	if got := Names([]Capability{CapNetAdmin, CapNetRaw}); got != "cap_net_admin,cap_net_raw" {
		t.Errorf("Names = %q, want %q", got, "cap_net_admin,cap_net_raw")
	}
	if got := Names(nil); got != "none" {
		t.Errorf("Names(nil) = %q, want none", got)
	}
}

// statusSample is the identity and capability part of a real
// /proc/PID/status of a root shell (Linux 6.x), other lines kept as the
// kernel writes them.
const statusSample = `Name:	bash
Umask:	0022
State:	S (sleeping)
Tgid:	4242
Pid:	4242
Uid:	0	0	0	0
Gid:	0	0	0	0
FDSize:	256
Groups:	0 4 27 
NStgid:	4242
CapInh:	0000000000000000
CapPrm:	000001ffffffffff
CapEff:	000001ffffffffff
CapBnd:	000001ffffffffff
CapAmb:	0000000000000000
NoNewPrivs:	0
Seccomp:	0
`

func TestParseProcStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    procStatus
		wantErr string
	}{
		{name: "root shell", in: statusSample, want: procStatus{
			Groups: []int{0, 4, 27}, CapPrm: 0x1ffffffffff, CapEff: 0x1ffffffffff, CapBnd: 0x1ffffffffff}},
		{name: "switched", in: "Uid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nGroups:\t65534 \n" +
			"CapInh:\t0000000000001000\nCapPrm:\t0000000000001000\nCapEff:\t0000000000001000\nCapBnd:\t0000000000001000\nCapAmb:\t0000000000001000\nNoNewPrivs:\t1\n",
			want: procStatus{UID: [4]int{65534, 65534, 65534, 65534}, GID: [4]int{65534, 65534, 65534, 65534}, Groups: []int{65534},
				CapInh: 1 << 12, CapPrm: 1 << 12, CapEff: 1 << 12, CapBnd: 1 << 12, CapAmb: 1 << 12, NoNewPrivs: true}},
		{name: "no groups", in: strings.Replace(statusSample, "Groups:\t0 4 27 ", "Groups:\t", 1), want: procStatus{
			CapPrm: 0x1ffffffffff, CapEff: 0x1ffffffffff, CapBnd: 0x1ffffffffff}},
		{name: "missing ambient (kernel before 4.3)", in: strings.Replace(statusSample, "CapAmb:\t0000000000000000\n", "", 1), wantErr: "status line CapAmb: missing"},
		{name: "missing no_new_privs", in: strings.Replace(statusSample, "NoNewPrivs:\t0\n", "", 1), wantErr: "status line NoNewPrivs: missing"},
		{name: "short mask", in: strings.Replace(statusSample, "CapEff:\t000001ffffffffff", "CapEff:\t1ff", 1), wantErr: `status line CapEff: "1ff": not 16 hex digits`},
		{name: "mask not hex", in: strings.Replace(statusSample, "CapEff:\t000001ffffffffff", "CapEff:\t000001fffffffffg", 1), wantErr: "status line CapEff"},
		{name: "three uids", in: strings.Replace(statusSample, "Uid:\t0\t0\t0\t0", "Uid:\t0\t0\t0", 1), wantErr: "status line Uid: \"0\\t0\\t0\": 3 ids, want 4"},
		{name: "negative gid", in: strings.Replace(statusSample, "Gid:\t0\t0\t0\t0", "Gid:\t0\t-1\t0\t0", 1), wantErr: "status line Gid"},
		{name: "repeated line", in: statusSample + "CapEff:\t0000000000000000\n", wantErr: "status line CapEff: repeated"},
		{name: "bad no_new_privs", in: strings.Replace(statusSample, "NoNewPrivs:\t0", "NoNewPrivs:\t2", 1), wantErr: "status line NoNewPrivs: \"2\": not 0 or 1"},
		{name: "empty", in: "", wantErr: "status line Uid: missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseProcStatus(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseProcStatus() = %+v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseProcStatus() = %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("parseProcStatus() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestParseProcStatusLive parses this process's status as the running
// kernel writes it, against the IDs the process has.
func TestParseProcStatusLive(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseProcStatus(string(data))
	if err != nil {
		t.Fatalf("parseProcStatus(/proc/self/status) = %v", err)
	}
	if st.UID[0] != os.Getuid() || st.UID[1] != os.Geteuid() || st.GID[0] != os.Getgid() || st.GID[1] != os.Getegid() {
		t.Errorf("parseProcStatus(/proc/self/status) uid %v gid %v, want real/effective %d/%d and %d/%d",
			st.UID, st.GID, os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid())
	}
}

// formatProcStatus writes st the way the kernel does, for round trips.
func formatProcStatus(st procStatus) string {
	var b strings.Builder
	ids := func(v []int) string {
		s := make([]string, len(v))
		for i, id := range v {
			s[i] = strconv.Itoa(id)
		}
		return strings.Join(s, "\t")
	}
	fmt.Fprintf(&b, "Uid:\t%s\nGid:\t%s\nGroups:\t", ids(st.UID[:]), ids(st.GID[:]))
	for _, g := range st.Groups {
		fmt.Fprintf(&b, "%d ", g)
	}
	nnp := 0
	if st.NoNewPrivs {
		nnp = 1
	}
	fmt.Fprintf(&b, "\nCapInh:\t%016x\nCapPrm:\t%016x\nCapEff:\t%016x\nCapBnd:\t%016x\nCapAmb:\t%016x\nNoNewPrivs:\t%d\n",
		st.CapInh, st.CapPrm, st.CapEff, st.CapBnd, st.CapAmb, nnp)
	return b.String()
}

// FuzzParseProcStatus: whatever parses formats back to text that parses
// to the same value (the parser keeps everything it accepts).
func FuzzParseProcStatus(f *testing.F) {
	// A real root shell's status.
	f.Add(statusSample)
	// A switched thread with CAP_NET_ADMIN kept.
	f.Add("Uid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nGroups:\t65534 \nCapInh:\t0000000000001000\nCapPrm:\t0000000000001000\nCapEff:\t0000000000001000\nCapBnd:\t0000000000001000\nCapAmb:\t0000000000001000\nNoNewPrivs:\t1\n")
	// Malformed: repeated keys, short masks, missing lines, no newline.
	f.Add(statusSample + "Uid:\t1\t1\t1\t1\n")
	f.Add("CapEff:\t1ff")
	f.Add("Uid:0 0 0 0\nGid:0 0 0 0\nGroups:\nCapInh:ffffffffffffffff\nCapPrm:0000000000000000\nCapEff:0000000000000000\nCapBnd:0000000000000000\nCapAmb:0000000000000000\nNoNewPrivs:1")
	f.Fuzz(func(t *testing.T, in string) {
		st, err := parseProcStatus(in)
		if err != nil {
			return
		}
		out := formatProcStatus(st)
		again, err := parseProcStatus(out)
		if err != nil {
			t.Fatalf("parseProcStatus(format(%+v)) = %v\n%s", st, err, out)
		}
		if fmt.Sprint(again) != fmt.Sprint(st) {
			t.Fatalf("round trip: %+v, want %+v", again, st)
		}
	})
}

func TestCheckSwitched(t *testing.T) {
	t.Parallel()
	c := Credential{User: "nobody", UID: 65534, GID: 65534, Groups: []int{65534}}
	const mask = 1 << 12
	good := procStatus{UID: [4]int{65534, 65534, 65534, 65534}, GID: [4]int{65534, 65534, 65534, 65534}, Groups: []int{65534},
		CapInh: mask, CapPrm: mask, CapEff: mask, CapBnd: mask, CapAmb: mask, NoNewPrivs: true}
	if err := checkSwitched(good, c, mask); err != nil {
		t.Fatalf("checkSwitched(switched thread) = %v", err)
	}
	tests := []struct {
		name    string
		change  func(*procStatus)
		wantErr string
	}{
		{"saved uid still root", func(st *procStatus) { st.UID[2] = 0 }, "uid [65534 65534 0 65534], want 65534"},
		{"fs gid", func(st *procStatus) { st.GID[3] = 0 }, "gid [65534 65534 65534 0], want 65534"},
		{"supplementary root group", func(st *procStatus) { st.Groups = []int{0, 65534} }, "groups [0 65534], want [65534]"},
		{"permitted extra", func(st *procStatus) { st.CapPrm |= 1 << 10 }, "permitted capabilities 0000000000001400, want 0000000000001000"},
		{"effective missing", func(st *procStatus) { st.CapEff = 0 }, "effective capabilities 0000000000000000"},
		{"inheritable missing", func(st *procStatus) { st.CapInh = 0 }, "inheritable capabilities"},
		{"ambient missing", func(st *procStatus) { st.CapAmb = 0 }, "ambient capabilities"},
		{"bounding full", func(st *procStatus) { st.CapBnd = 0x1ffffffffff }, "bounding capabilities 000001ffffffffff"},
		{"no_new_privs", func(st *procStatus) { st.NoNewPrivs = false }, "no_new_privs not set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := good
			st.Groups = append([]int(nil), good.Groups...)
			tc.change(&st)
			if err := checkSwitched(st, c, mask); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("checkSwitched(%+v) = %v, want error containing %q", st, err, tc.wantErr)
			}
		})
	}
}

// Environment of the Switch child process (TestSwitchUserChild).
const (
	envSwitchUser = "GATEHOUSE_TEST_SWITCH_USER"
	envSwitchCaps = "GATEHOUSE_TEST_SWITCH_CAPS" // capability numbers, comma-separated
)

// TestSwitchUser runs Switch in a child process (it cannot be undone)
// started as root, and reads what every thread of the child, and a
// program the child runs, ended up with.
func TestSwitchUser(t *testing.T) {
	testenv.Root(t)
	nobody := lookupUID(t, "nobody")
	for _, tc := range []struct {
		name string
		caps string
		mask uint64
	}{
		{"no capabilities", "", 0},
		{"CAP_NET_ADMIN", "12", 1 << 12},
		{"CAP_NET_ADMIN and CAP_NET_RAW", "12,13", 1<<12 | 1<<13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSwitchUserChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envSwitchUser+"=nobody", envSwitchCaps+"="+tc.caps)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				stdin.Close() // the child exits on EOF
				if err := cmd.Wait(); err != nil {
					t.Errorf("child: %v\nstderr:\n%s", err, stderr.String())
				}
			}()

			// The child prints "exec BASE64" (the status of a program it
			// ran after the switch), then "switched" and waits.
			var execStatus string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				line := sc.Text()
				if s, ok := strings.CutPrefix(line, "exec "); ok {
					b, err := base64.StdEncoding.DecodeString(s)
					if err != nil {
						t.Fatal(err)
					}
					execStatus = string(b)
				}
				if line == "switched" {
					break
				}
				if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "---") || strings.HasPrefix(line, "    ") {
					t.Errorf("child: %s", line)
				}
			}
			if t.Failed() || execStatus == "" {
				t.Fatalf("child did not switch (scan error %v); stderr:\n%s", sc.Err(), stderr.String())
			}

			tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", cmd.Process.Pid))
			if err != nil || len(tasks) < 2 {
				t.Fatalf("threads of the child: %v, %v; want several", tasks, err)
			}
			want := [4]int{nobody, nobody, nobody, nobody}
			for _, p := range append(tasks, "exec") {
				data := execStatus
				if p != "exec" {
					b, err := os.ReadFile(p)
					if err != nil {
						t.Fatal(err)
					}
					data = string(b)
				}
				st, err := parseProcStatus(data)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				if st.UID != want {
					t.Errorf("%s: uid %v, want %v", p, st.UID, want)
				}
				if st.CapEff != tc.mask || st.CapPrm != tc.mask || st.CapBnd != tc.mask || st.CapAmb != tc.mask {
					t.Errorf("%s: effective %016x permitted %016x bounding %016x ambient %016x, want each %016x",
						p, st.CapEff, st.CapPrm, st.CapBnd, st.CapAmb, tc.mask)
				}
				if !st.NoNewPrivs {
					t.Errorf("%s: no_new_privs not set", p)
				}
			}
		})
	}
}

// TestSwitchUserChild is the child process of TestSwitchUser; it is
// skipped when run otherwise.
func TestSwitchUserChild(t *testing.T) {
	name := os.Getenv(envSwitchUser)
	if name == "" {
		t.Skip("run by TestSwitchUser")
	}
	c, err := LookupCredential(name)
	if err != nil {
		t.Fatal(err)
	}
	// Threads that exist before the switch must be switched too: park
	// goroutines on their own OS threads until the test ends.
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	for range 4 {
		go func() {
			goruntime.LockOSThread()
			defer goruntime.UnlockOSThread()
			started <- struct{}{}
			<-release
		}()
	}
	for range 4 {
		<-started
	}
	var keep []Capability
	if caps := os.Getenv(envSwitchCaps); caps != "" {
		for f := range strings.SplitSeq(caps, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			keep = append(keep, Capability(n))
		}
	}
	if err := Switch(c, keep); err != nil {
		t.Fatalf("Switch(%+v, %v) = %v", c, keep, err)
	}
	out, err := exec.Command("cat", "/proc/self/status").Output()
	if err != nil {
		t.Fatalf("run cat after the switch: %v", err)
	}
	fmt.Println("exec " + base64.StdEncoding.EncodeToString(out))
	fmt.Println("switched")
	// Wait for the parent to look, until it closes stdin.
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // EOF is the signal
}
