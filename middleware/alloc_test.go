//go:build !race

package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestClientIPAllocs pins the client-IP step at zero allocations: it runs
// on every request.
func TestClientIPAllocs(t *testing.T) {
	res := mustResolver(t, "10.0.0.0/8")
	xff := []string{"198.51.100.1, 10.0.0.2"}
	if n := testing.AllocsPerRun(100, func() { res.Resolve("10.0.0.1:5000", xff) }); n != 0 {
		t.Errorf("Resolve allocs = %v, want 0", n)
	}
	mw, err := ClientIP(ClientIPConfig{TrustedProxies: res.trusted})
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header["X-Forwarded-For"] = xff
	r = r.WithContext(&scopeCtx{Context: r.Context()})
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n != 0 {
		t.Errorf("ClientIP middleware allocs = %v, want 0", n)
	}
}
