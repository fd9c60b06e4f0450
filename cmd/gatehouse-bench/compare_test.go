package main

import (
	"testing"
	"time"
)

func TestWrkDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{time.Second, "1s"}, {10 * time.Second, "10s"}, {1500 * time.Millisecond, "2s"}, {200 * time.Millisecond, "1s"}} {
		if got := wrkDuration(tc.d); got != tc.want {
			t.Errorf("wrkDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
