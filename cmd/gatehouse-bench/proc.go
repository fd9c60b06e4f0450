package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gatehouse/cmd/gatehouse-bench/procfs"
)

// placement says where a process runs: a network namespace ("" for the
// current one) and a CPU set (nil: wherever the scheduler likes).
type placement struct {
	netns string
	cpus  []int
}

// wrap prefixes argv with what puts it in place: `ip netns exec NS` and
// `taskset -c CPUS`. Both exec the command, so the process keeps the PID
// the benchmark started, and a Go program's GOMAXPROCS follows the CPU
// set.
func (p placement) wrap(argv []string) []string {
	var out []string
	if p.netns != "" {
		out = append(out, "ip", "netns", "exec", p.netns)
	}
	if len(p.cpus) > 0 {
		out = append(out, "taskset", "-c", cpuList(p.cpus))
	}
	return append(out, argv...)
}

// cpuList formats CPUs for taskset -c: "0,1".
func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// parseCPUList parses "1", "0,1" or "2-3" (taskset -c syntax, without
// strides).
func parseCPUList(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 || a > 4095 {
			return nil, fmt.Errorf("cpu list %q: %q is not a CPU number", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b > 4095 {
				return nil, fmt.Errorf("cpu list %q: %q is not a range", s, part)
			}
		}
		for c := a; c <= b; c++ {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// proc is one process the benchmark started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string        // file holding its stdout and stderr
	done chan struct{} // closed when it has exited
	err  error         // cmd.Wait's result, read after done
}

// pid returns the process ID.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last lines of the process's output, for errors.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// procs starts processes and stops every one of them, by PID: on stop,
// on the end of the run and, through the context, on a signal.
type procs struct {
	dir string // logs go here

	mu   sync.Mutex
	list []*proc
}

// start runs argv (after pl.wrap) in the background with its output in
// dir/name.log. Cancelling ctx sends it SIGTERM, then SIGKILL after 5 s.
// env, when not nil, is added to the benchmark's own environment.
func (ps *procs) start(ctx context.Context, name string, pl placement, env []string, argv ...string) (*proc, error) {
	full := pl.wrap(argv)
	logPath := filepath.Join(ps.dir, name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

// stop ends p and the processes it started: SIGTERM, then SIGKILL for
// whatever is left after timeout.
func (ps *procs) stop(p *proc, timeout time.Duration) {
	if p.exited() {
		return
	}
	tree := procfs.Tree(p.pid())
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // it may have exited meanwhile
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill() // as above
		<-p.done
	}
	// Descendants (nginx workers) that outlived their parent.
	for _, pid := range tree[1:] {
		if procfs.Alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL) // gone already is fine
		}
	}
}

// stopAll stops every process still running, the last started first.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := slices.Clone(ps.list)
	ps.list = nil
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		ps.stop(list[i], 5*time.Second)
	}
}

// runCmd runs argv (after pl.wrap) to completion and returns its
// standard output; the error carries its standard error.
func runCmd(ctx context.Context, pl placement, argv ...string) (string, error) {
	full := pl.wrap(argv)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// errNotFound reports a program the benchmark needs that is not on PATH.
var errNotFound = errors.New("not installed")

// lookTool finds a program on PATH (and in the sbin directories, where
// Debian puts nginx, haproxy and ipset).
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, errNotFound)
}

// runCmdIn runs argv in directory dir and returns its standard output.
func runCmdIn(ctx context.Context, dir string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// runCmdCombined runs argv and returns its standard output and error
// together: version banners go to either.
func runCmdCombined(ctx context.Context, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}
