//go:build !race

// Without -race only: the race detector adds allocations of its own.

package rules

import (
	"net/netip"
	"testing"
)

// TestReportSharedAllocs pins the request path of a shared jail: handing
// an offence to the sharer allocates nothing.
func TestReportSharedAllocs(t *testing.T) {
	j := newSharedJails(t, &fakeSharer{}, NewBanList(BanListConfig{}))
	j.sharer = discardSharer{}
	client := netip.MustParseAddr("198.51.100.12")
	if n := testing.AllocsPerRun(200, func() { j.Report("probes", client, "probe") }); n != 0 {
		t.Errorf("Report to a shared jail allocates %v times, want 0", n)
	}
}
