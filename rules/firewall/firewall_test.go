package firewall

import (
	"errors"
	"os/exec"
	"slices"
	"syscall"
	"testing"
)

func TestOpError(t *testing.T) {
	t.Parallel()
	exit := &exec.ExitError{}
	for _, tc := range []struct {
		name     string
		stderr   string
		err      error
		wantPerm bool
		wantText string
	}{
		{name: "ipset EPERM", stderr: "ipset v7.17: Kernel error received: Operation not permitted", err: exit, wantPerm: true,
			wantText: "ipset: create set gatehouse4: <nil>: ipset v7.17: Kernel error received: Operation not permitted (" + ErrNoPermission.Error() + ")"},
		{name: "iptables not root", stderr: "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)", err: exit, wantPerm: true},
		{name: "netlink EPERM", err: syscall.EPERM, wantPerm: true},
		{name: "other failure", stderr: "ipset v7.17: Error in line 1: The value of the CIDR parameter of the IP address is invalid", err: exit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newOpError("ipset", "create set", "gatehouse4", tc.stderr, tc.err)
			if got := errors.Is(e, ErrNoPermission); got != tc.wantPerm {
				t.Errorf("errors.Is(%v, ErrNoPermission) = %v, want %v", e, got, tc.wantPerm)
			}
			if !errors.Is(e, tc.err) {
				t.Errorf("errors.Is(%v, its cause) = false", e)
			}
			if tc.wantText != "" && e.Error() != tc.wantText {
				t.Errorf("Error() = %q, want %q", e.Error(), tc.wantText)
			}
		})
	}
}

func TestValidPorts(t *testing.T) {
	t.Parallel()
	got, err := validPorts([]uint16{443, 80, 443})
	if err != nil || !slices.Equal(got, []uint16{80, 443}) {
		t.Errorf("validPorts(443, 80, 443) = %v, %v; want [80 443]", got, err)
	}
	if got, err := validPorts(nil); err != nil || len(got) != 0 {
		t.Errorf("validPorts(nil) = %v, %v; want none", got, err)
	}
}
