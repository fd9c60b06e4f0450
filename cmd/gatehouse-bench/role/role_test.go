package role

import (
	"net/netip"
	"testing"
)

func TestScannerAddrs(t *testing.T) {
	got := ScannerAddrs(netip.MustParseAddr("10.77.1.253"), 4)
	want := []string{"10.77.1.253", "10.77.1.254", "10.77.2.1", "10.77.2.2"}
	for i, a := range got {
		if a.String() != want[i] {
			t.Fatalf("ScannerAddrs(10.77.1.253, 4) = %v, want %v (no .0 or .255)", got, want)
		}
	}
}

func TestAnswersSummary(t *testing.T) {
	in := make([]int, 100)
	for i := range in {
		in[i] = i + 1 // 1 … 100
	}
	mean, p95, mx := AnswersSummary(in)
	if mean != 50.5 || p95 != 95 || mx != 100 {
		t.Errorf("AnswersSummary(1…100) = %v, %v, %v; want 50.5, 95, 100", mean, p95, mx)
	}
}
