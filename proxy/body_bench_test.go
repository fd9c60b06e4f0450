package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// deadlineWriter is a discardWriter with the read deadline both of the
// gateway's servers have, so http.ResponseController finds it (without
// it every SetReadDeadline allocates an ErrNotSupported).
type deadlineWriter struct{ discardWriter }

func (*deadlineWriter) SetReadDeadline(time.Time) error { return nil }

// BenchmarkChainBody is BenchmarkChain's "gatehouse" row for a POST with
// a 1KB body: the cost of the body's read-timeout wrapper,
// which only requests with a body pay.
func BenchmarkChainBody(b *testing.B) {
	s := gatehouseHandler(b, "http://127.0.0.1:1", "off", "")
	for _, r := range s.current.Load().router.routes() {
		r.proxy.Transport, r.fast = constTransport{}, nil
	}
	body := strings.Repeat("x", 1024)
	w := &deadlineWriter{discardWriter{h: http.Header{}}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		req := httptest.NewRequest("POST", "http://bench.example.com/form", strings.NewReader(body))
		req.RemoteAddr = "203.0.113.7:50000"
		s.ServeHTTP(w, req)
	}
}
