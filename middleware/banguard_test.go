package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"gatehouse/rules"
)

func TestBanGuard(t *testing.T) {
	t.Parallel()
	bans := rules.NewBanList(rules.BanListConfig{})
	if _, err := bans.Ban(rules.Ban{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Reason: "test",
		Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	guard, err := BanGuard(bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reached bool
	h := chainFor(t, guard, &reached)
	for _, tc := range []struct {
		remote string
		want   int
	}{
		{"203.0.113.9:1000", 403},
		{"203.0.114.9:1000", 200},
	} {
		reached = false
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want || reached != (tc.want == http.StatusOK) {
			t.Errorf("request from %s: status %d, reached %v, want %d", tc.remote, w.Code, reached, tc.want)
		}
	}
}
