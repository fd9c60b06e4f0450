//go:build !race

// The race detector adds allocations of its own, so the zero-allocation
// claims of the hot paths are pinned in this file only without -race.

package match

import "testing"

func TestProbeMatchMissAllocs(t *testing.T) {
	for _, bc := range []struct {
		name  string
		paths []string
	}{
		{"presets", nil},
		{"presets+5000", extraPatterns(5000)},
	} {
		m, err := CompileProbes(ProbeConfig{Presets: everyPreset(), Paths: bc.paths, Exclude: []string{"/public/"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/", "/static/js/app/main.js", "/api/v1/users/42", "/index.html", "/.well-known/acme-challenge/x"} {
			if _, ok := m.Match(p); ok {
				t.Fatalf("%s: Match(%q) matched, want a miss", bc.name, p)
			}
			if n := testing.AllocsPerRun(200, func() { m.Match(p) }); n != 0 {
				t.Errorf("%s: Match(%q) allocates %v times, want 0", bc.name, p, n)
			}
		}
		// A hit returns a precomputed rule name: no allocation either.
		if n := testing.AllocsPerRun(200, func() { m.Match("/blog/.git/config") }); n != 0 {
			t.Errorf("%s: Match(hit) allocates %v times, want 0", bc.name, n)
		}
	}
}

func TestCanonicalAllocs(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		max  float64
		note string
	}{
		{"/static/js/app/main.js", 0, "clean: returned as is"},
		{"/", 0, "root"},
		{"/Static/JS/App.js", 1, "upper case: one string for Probe"},
		{"/static//js/./app/%6Dain.js", 1, "decoded: one string for both fields"},
		{"/Static;v=1/JS/../App.js", 1, "params, dot-dot and upper case: still one"},
	} {
		if n := testing.AllocsPerRun(200, func() { _, _ = Canonical(tc.raw) }); n > tc.max {
			t.Errorf("Canonical(%q) allocates %v times, want at most %v (%s)", tc.raw, n, tc.max, tc.note)
		}
	}
}

func TestHotlinkAllocs(t *testing.T) {
	m := designHotlink(t)
	for _, ref := range []string{"https://www.example.com/gallery/1", "https://evil.test/x", "https://example.com@evil.test/", "garbage"} {
		if n := testing.AllocsPerRun(200, func() { m.Allowed(ref, true) }); n != 0 {
			t.Errorf("Allowed(%q) allocates %v times, want 0", ref, n)
		}
	}
	if n := testing.AllocsPerRun(200, func() { m.Protected("/static/js/app/main.js") }); n != 0 {
		t.Errorf("Protected allocates %v times, want 0", n)
	}
}
