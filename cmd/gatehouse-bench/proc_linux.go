//go:build linux

package main

import "syscall"

// sysProcAttr makes a started process die with the benchmark: if the
// benchmark is killed outright, the kernel sends its children SIGKILL
// (PR_SET_PDEATHSIG survives the execs of ip netns exec and taskset).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
