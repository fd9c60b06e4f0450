package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"gatehouse/cmd/gatehouse-bench/procfs"
)

// This file holds what the compare and attack reports share: how they
// name the machine and the tools they ran.

// toolBanner runs argv (a tool and its version flag) and returns the
// first line it prints, "?" when it prints nothing. Some tools print
// their version and exit 1 (wrk -v), so the exit status does not count.
func toolBanner(ctx context.Context, argv ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := runCmdCombined(ctx, argv...)
	if first := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]); first != "" {
		return first
	}
	return "?"
}

// versionOf picks the version out of a tool's version banner: the first
// word holding a digit, without a "name/" or "debian/" prefix
// ("nginx version: nginx/1.22.1" → "1.22.1"); the banner itself when no
// word does.
func versionOf(banner string) string {
	for w := range strings.FieldsSeq(banner) {
		if strings.ContainsAny(w, "0123456789") {
			if i := strings.LastIndexByte(w, '/'); i >= 0 {
				w = w[i+1:]
			}
			return strings.TrimPrefix(w, "v")
		}
	}
	return banner
}

// machine is "N CPUs (model), X GiB RAM, Linux release".
func machine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if kb, ok := procfs.ParseStatusKB(strings.TrimSpace(line), "MemTotal:"); ok {
				mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
			}
		}
	}
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d CPUs (%s), %s RAM, Linux %s", runtime.NumCPU(), model, mem, strings.TrimSpace(string(rel)))
}
