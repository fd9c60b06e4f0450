package admin

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"gatehouse/rules"
)

// TestAdminManualBanCap: a caller of manualBan with a time.Duration (the
// dashboard's form after durationValue) meets the same cap as the API.
func TestAdminManualBanCap(t *testing.T) {
	t.Parallel()
	s := &Admin{cfg: Config{Bans: rules.NewBanList(rules.BanListConfig{})}, log: slog.New(slog.DiscardHandler)}
	if _, refused := s.manualBan("203.0.113.30", new(maxBanDuration+time.Second), ""); refused == nil || refused.field != "duration" {
		t.Errorf("manualBan over the cap = %v, want refused for duration", refused)
	}
	if b, refused := s.manualBan("203.0.113.31", new(maxBanDuration), ""); refused != nil || b.Prefix != netip.MustParsePrefix("203.0.113.31/32") {
		t.Errorf("manualBan at the cap = %+v, %v; want the ban", b, refused)
	}
}
