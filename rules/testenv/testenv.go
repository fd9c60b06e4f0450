// Package testenv is what the tests of every gatehouse package use to ask
// for a real component: a program (Apache's htpasswd, nginx, ipset,
// Pebble), root, network namespaces, an unprivileged user.
//
// A test that needs one and does not find it is skipped on a developer's
// machine and fails when CI=true, where `make test` has installed
// everything and runs as root: a CI machine missing a component cannot
// pass without the tests that need it.
//
// It is imported by _test.go files and test-support packages (such as
// rules/fleet/fleettest), never by the gateway itself. It lives under rules/ because
// the project's top-level layout is fixed and rules/ is the lowest
// package every other one may depend on; it imports nothing of ours.
package testenv

import (
	"crypto/rand"
	"fmt"
	"go/build"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// InCI reports whether the tests run under CI=true, where every real
// component must be present.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing reports that a component the test needs is not there: the
// test is skipped, or fails under CI=true.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatal(msg + ": failing because CI=true")
	}
	t.Skip(msg)
}

// sbinDirs hold the firewall tools, which a non-root PATH often lacks.
var sbinDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

// LookTool finds a program on PATH, then in the sbin directories.
func LookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on PATH nor in %s", name, strings.Join(sbinDirs, ", "))
}

// Tool returns the path of the program name (`make deps` installs the
// Debian packages that hold them).
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := LookTool(name)
	if err != nil {
		Missing(t, "%v (make deps installs it)", err)
	}
	return p
}

// GoTool is Tool for a program `make tools` installs with go install: it
// is also looked for in $GOPATH/bin, which need not be on PATH. hint says
// how to install it.
func GoTool(t testing.TB, name, hint string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(dir, "bin", name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	Missing(t, "%s not installed (%s)", name, hint)
	return ""
}

// Root asks for root.
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "this test needs root")
	}
}

// Netns asks for what a test needs to build network namespaces joined by
// veth pairs and to run tools inside them: root, iproute2's ip, the
// given tools, and a kernel that lets it add a namespace.
func Netns(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := LookTool(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		// Parallel tests probe at once: each its own namespace.
		name := "gh-testenv-" + strings.ToLower(rand.Text()[:10])
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			missing = append(missing, fmt.Sprintf("network namespaces (ip netns add: %v: %s)", err, strings.TrimSpace(string(out))))
		} else {
			_ = exec.Command("ip", "netns", "del", name).Run() // best effort: the probe namespace holds nothing
		}
	}
	if len(missing) > 0 {
		Missing(t, "this test needs %s (make deps installs the tools; run as root)", strings.Join(missing, ", "))
	}
}

// childEnv marks the test binary that Unprivileged started.
const childEnv = "GATEHOUSE_TESTENV_UNPRIVILEGED"

// Unprivileged makes the calling test's body run without root. As a
// normal user it returns false and the body runs as it is. As root it
// runs the same test again in a copy of the test binary as the user
// nobody, reports that run's failure as its own, and returns true: the
// caller returns at once. Tests of permission checks use it, since root
// may write any file.
//
//	if testenv.Unprivileged(t) {
//		return
//	}
func Unprivileged(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	if os.Getenv(childEnv) != "" {
		t.Fatal("the unprivileged child still runs as root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		Missing(t, "no user nobody to run as: %v", err)
		return true
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	bin := copyTestBinary(t)
	var pattern []string
	for _, part := range strings.Split(t.Name(), "/") {
		pattern = append(pattern, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.Command(bin, "-test.run="+strings.Join(pattern, "/"), "-test.v", "-test.count=1")
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(os.Environ(), childEnv+"=1", "TMPDIR="+os.TempDir(), "HOME="+filepath.Dir(bin))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Errorf("%s as nobody (uid %d): %v\n%s", t.Name(), uid, err, out)
	}
	return true
}

// copyTestBinary copies the running test binary into a directory the
// user nobody may enter: go test's build directory is root's alone.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gatehouse-testenv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, filepath.Base(os.Args[0]))
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}
