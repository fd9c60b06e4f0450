//go:build !linux

package main

import "syscall"

// sysProcAttr: only Linux can tie a child's life to the benchmark's.
func sysProcAttr() *syscall.SysProcAttr { return nil }
