package main

import (
	"gatehouse/rules/testenv"
	"os"
	"slices"
	"testing"

	"gatehouse/cmd/gatehouse-bench/procfs"
)

// TestProcTree reads this process and a child of it from /proc.
func TestProcTree(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		testenv.Missing(t, "CPU accounting reads /proc: %v", err)
	}
	ps := &procs{dir: t.TempDir()}
	t.Cleanup(ps.stopAll)
	p, err := ps.start(t.Context(), "sleep", placement{}, nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	tree := procfs.Tree(os.Getpid())
	if tree[0] != os.Getpid() || !slices.Contains(tree, p.pid()) {
		t.Errorf("Tree(self) = %v, want self first and the child %d in it", tree, p.pid())
	}
	if rss := procfs.TreeRSS(os.Getpid()); rss < 1<<20 {
		t.Errorf("TreeRSS(self) = %d bytes, want at least 1 MiB", rss)
	}
	st, err := procfs.ReadStat(p.pid())
	if err != nil || st.PPID != os.Getpid() {
		t.Errorf("ReadStat(child) = %+v, %v; want PPID %d", st, err, os.Getpid())
	}
	ps.stop(p, 5e9)
	if !p.exited() || procfs.Alive(p.pid()) {
		t.Errorf("child %d still Alive after stop", p.pid())
	}
}
