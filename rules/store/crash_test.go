//go:build unix

package store

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gatehouse/rules"
)

// helperEnv names the database the helper process writes; unset, the
// helper test is skipped.
const helperEnv = "GATEHOUSE_STORE_HELPER_DB"

// crashBan is what the helper process stores before it is killed.
var crashBan = rules.Ban{
	Prefix:  netip.MustParsePrefix("203.0.113.0/24"),
	Reason:  "operator: crash test",
	Until:   time.Date(2100, 1, 2, 3, 4, 5, 6, time.UTC),
	Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
}

// TestHelperProcess is not a test: TestPutSurvivesSIGKILL runs the test
// binary again with only this test and helperEnv set. It stores
// crashBan, then kills its own process with SIGKILL, without closing
// anything, as kill -9 right after the admin API answered would.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process of TestPutSurvivesSIGKILL")
	}
	s, err := Open(StoreConfig{Path: path}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	if err := s.Put(crashBan); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(4)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
	}
	// SIGKILL is not delivered synchronously to every thread; wait for
	// it rather than exit normally. The parent fails on any other exit.
	<-time.After(time.Minute)
	os.Exit(5)
}

func TestPutSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bans.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("helper process: %v, want it killed by SIGKILL; output:\n%s", err, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper process ended with %v, want killed by SIGKILL; output:\n%s", ee, out)
	}

	s := openTest(t, StoreConfig{Path: path})
	active, _, err := s.Load(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("Load() after the crash = %v", err)
	}
	if len(active) != 1 {
		t.Fatalf("Load() after the crash = %v, want the ban stored before it", active)
	}
	if err := sameBan(active[0], crashBan); err != nil {
		t.Errorf("ban after the crash: %v", err)
	}
}
