package main

import (
	"strings"
	"testing"
)

// TestMemorySmoke runs `gatehouse-bench memory` in smoke mode: every
// per-client table and every phase of the gatehouse binary is measured
// and reported with sane numbers; no size is asserted.
func TestMemorySmoke(t *testing.T) {
	bench, gatehouse := binaries(t)
	out, log := runTool(t, bench, "memory", "-gatehouse", gatehouse, "-dir", t.TempDir())
	tables := mdTable(t, out, "| table | RSS idle MiB")
	for _, k := range tableKinds {
		r, ok := tables[k.label]
		if !ok {
			t.Errorf("no row %q in:\n%s\n%s", k.label, out, log)
			continue
		}
		// table | RSS idle | RSS loaded | bytes/client (RSS) | bytes/client (heap)
		if idle, loaded := num(t, r, 1), num(t, r, 2); idle <= 0 || loaded < idle {
			t.Errorf("row %q: RSS idle %v MiB, loaded %v MiB: want 0 < idle ≤ loaded", k.label, idle, loaded)
		}
		// A table that held nothing per client would show 0 bytes; the
		// smallest entry is 16 bytes of key and 16 of state.
		if heap := num(t, r, 4); heap < 16 || heap > 10_000 {
			t.Errorf("row %q: %v heap bytes per client, want 16 to 10,000", k.label, heap)
		}
	}
	phases := mdTable(t, out, "| gatehouse | RSS MiB")
	var steps int
	for label, r := range phases {
		if rss, anon := num(t, r, 1), num(t, r, 2); rss <= 0 || anon <= 0 || anon > rss {
			t.Errorf("row %q: RSS %v MiB, anonymous %v MiB: want 0 < anonymous ≤ RSS", label, rss, anon)
		}
		if strings.Contains(label, "distinct clients probing") || strings.Contains(label, "in every other table") {
			steps++
		}
	}
	for _, prefix := range []string{"idle", "after 2 s of clean load"} {
		found := false
		for label := range phases {
			found = found || strings.HasPrefix(label, prefix)
		}
		if !found {
			t.Errorf("no gatehouse row %q… in:\n%s", prefix, out)
		}
	}
	if steps != 6 {
		t.Errorf("%d rows of clients filling the tables, want 6 (3,000 clients in steps of 1,000, twice):\n%s", steps, out)
	}
	for _, line := range []string{"idle RSS, full chain", "bytes per tracked client", "RSS after 2 s of clean load"} {
		if !strings.Contains(out, "| "+line) {
			t.Errorf("no target line %q in:\n%s", line, out)
		}
	}
}
