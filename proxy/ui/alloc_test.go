//go:build !race

package ui

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"gatehouse/middleware"
	"gatehouse/rules"
)

// TestStatsObserveAllocs pins the dashboard's request-path cost: a clean
// request, and a ban guard refusal, allocate nothing.
func TestStatsObserveAllocs(t *testing.T) {
	st := NewStats(StatsConfig{})
	bans := rules.NewBanList(rules.BanListConfig{})
	banned := netip.MustParseAddr("203.0.113.1")
	if _, err := bans.Ban(rules.Ban{Prefix: netip.PrefixFrom(banned, 32), Until: t0.AddDate(100, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	clean := &middleware.Scope{ClientIP: netip.MustParseAddr("198.51.100.1"), Host: "www.example.com"}
	refused := &middleware.Scope{ClientIP: banned}
	if n := testing.AllocsPerRun(100, func() { st.Observe(r, clean, 200, t0, bans) }); n != 0 {
		t.Errorf("Observe(clean request) allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { st.Observe(r, refused, 403, t0, bans) }); n != 0 {
		t.Errorf("Observe(ban guard refusal) allocates %v times, want 0", n)
	}
}
