package main

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestSpreadOf(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want spread
	}{
		{[]float64{3, 1, 2}, spread{2, 1, 3}},
		{[]float64{4, 1, 2, 3}, spread{2.5, 1, 4}},
		{[]float64{5, math.NaN()}, spread{5, 5, 5}},
	} {
		if got := spreadOf(tc.in); got != tc.want {
			t.Errorf("spreadOf(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if got := spreadOf(nil); !math.IsNaN(got.Med) || fmtSpread(got, 1) != "–" {
		t.Errorf("spreadOf(nil) = %+v, printed %q; want NaN and \"–\"", got, fmtSpread(got, 1))
	}
	if got := fmtSpread(spread{2, 1, 3}, 1); got != "2.0 (1.0–3.0)" {
		t.Errorf("fmtSpread = %q", got)
	}
	if got := fmtRatio(1, 0); got != "–" {
		t.Errorf("fmtRatio(1, 0) = %q, want –", got)
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []int
		wantErr string
	}{
		{in: "1", want: []int{1}},
		{in: "0,1", want: []int{0, 1}},
		{in: "2-4,1,3", want: []int{2, 3, 4, 1}},
		{in: "4-2", wantErr: "not a range"},
		{in: "a", wantErr: "not a CPU number"},
		{in: "", wantErr: "not a CPU number"},
	} {
		got, err := parseCPUList(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseCPUList(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseCPUList: a list that parses round-trips through cpuList.
func FuzzParseCPUList(f *testing.F) {
	f.Add("1")      // one CPU
	f.Add("0-3,7")  // range and single
	f.Add("3-1,,x") // invalid
	f.Fuzz(func(t *testing.T, in string) {
		cpus, err := parseCPUList(in)
		if err != nil {
			return
		}
		again, err := parseCPUList(cpuList(cpus))
		if err != nil || !slices.Equal(again, cpus) {
			t.Errorf("parseCPUList(cpuList(%v)) = %v, %v", cpus, again, err)
		}
	})
}

func TestPlacementWrap(t *testing.T) {
	got := placement{netns: "ns1", cpus: []int{1, 2}}.wrap([]string{"wrk", "-c1"})
	want := []string{"ip", "netns", "exec", "ns1", "taskset", "-c", "1,2", "wrk", "-c1"}
	if !slices.Equal(got, want) {
		t.Errorf("wrap = %q, want %q", got, want)
	}
}

func TestVersionOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nginx version: nginx/1.22.1", "1.22.1"},
		{"wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer", "4.1.0-3+b2"},
		{"HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/", "2.6.12-1+deb12u4"},
		{"v2.6.2 h1:abc=", "2.6.2"},
		{"no version here", "no version here"},
	} {
		if got := versionOf(tc.in); got != tc.want {
			t.Errorf("versionOf(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	vs := []float64{5, 1, 4, 2, 3}
	for _, tc := range []struct{ p, want float64 }{{50, 3}, {95, 5}, {0, 1}, {100, 5}} {
		if got := percentile(vs, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", vs, tc.p, got, tc.want)
		}
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile(nil) is not NaN")
	}
}
