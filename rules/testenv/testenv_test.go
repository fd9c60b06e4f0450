package testenv

import (
	"fmt"
	"os"
	"testing"
)

func TestUnprivilegedRunsWithoutRoot(t *testing.T) {
	if Unprivileged(t) {
		return
	}
	if os.Geteuid() == 0 {
		t.Fatal("the body runs as root")
	}
	// Root could create a file in any directory; nobody cannot in /.
	if f, err := os.Create("/testenv-unprivileged-probe"); err == nil {
		f.Close()
		os.Remove("/testenv-unprivileged-probe")
		t.Fatal("created a file in / without root")
	}
}

func TestUnprivilegedSubtest(t *testing.T) {
	t.Run("a b/c", func(t *testing.T) {
		if Unprivileged(t) {
			return
		}
		if os.Geteuid() == 0 {
			t.Fatal("the body runs as root")
		}
	})
}

func TestLookTool(t *testing.T) {
	if _, err := LookTool("sh"); err != nil {
		t.Errorf("LookTool(sh) = %v", err)
	}
	if _, err := LookTool("gatehouse-no-such-tool"); err == nil {
		t.Error("LookTool found a program that does not exist")
	}
}

// TestNetnsParallel: parallel tests probing for namespaces at once each
// get their own probe namespace.
func TestNetnsParallel(t *testing.T) {
	Root(t)
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			Netns(t)
		})
	}
}
