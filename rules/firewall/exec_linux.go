//go:build linux

package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runner runs the firewall tools (ipset, iptables, ...) by the absolute
// paths found at construction, in cfg.NetNS when one is set.
type runner struct {
	backend string
	ip      string // path of ip(8), for `ip netns exec`; "" without a namespace
	netns   string
}

func newRunner(backend, netns string) (runner, error) {
	r := runner{backend: backend, netns: netns}
	if netns == "" {
		return r, nil
	}
	if err := validNetNS(netns); err != nil {
		return r, err
	}
	ip, err := lookTool("ip")
	if err != nil {
		return r, err
	}
	r.ip = ip
	return r, nil
}

// validNetNS checks a namespace name the way ip(8) would look it up.
func validNetNS(name string) error {
	if name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("firewall netns %q: not a namespace name", name)
	}
	return nil
}

// lookTool finds a tool in PATH or, as sbin is often not in a service's
// PATH, in the usual sbin directories. The error wraps ErrUnavailable.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	dirs := []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"}
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s: not in PATH nor in %s: %w", name, strings.Join(dirs, ", "), ErrUnavailable)
}

// maxStderr bounds how much of a tool's standard error is kept.
const maxStderr = 4096

// run runs tool with args, feeding it stdin, and returns its standard
// output. A failure is an *OpError naming op and object, with the tool's
// standard error.
func (r runner) run(ctx context.Context, op, object string, stdin []byte, tool string, args ...string) ([]byte, error) {
	if r.netns != "" {
		args = append([]string{"netns", "exec", r.netns, tool}, args...)
		tool = r.ip
	}
	cmd := exec.CommandContext(ctx, tool, args...)
	// The tools' messages are read for EPERM and line numbers: keep them
	// in English.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout bytes.Buffer
	stderr := &limitedBuffer{max: maxStderr}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return stdout.Bytes(), newOpError(r.backend, op, object, strings.TrimSpace(stderr.String()), err)
	}
	return stdout.Bytes(), nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
