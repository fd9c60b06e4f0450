package middleware

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRespondLocation(t *testing.T) {
	for _, tc := range []struct {
		loc, target string
		tls         bool
		want        string
	}{
		{"https://$host$request_uri", "/a/b?x=1", false, "https://app.example/a/b?x=1"},
		{"$scheme://new.example${uri}$is_args$args", "/a%20b?q", true, "https://new.example/a%20b?q"},
		{"/fixed", "/x?y", false, "/fixed"},
		{"https://n.example$uri$is_args$args", "/p", false, "https://n.example/p"},
		{"$request_uri", "//evil.example/x", false, "/evil.example/x"},
		{"$uri", "/a", false, "/a"},
	} {
		h, err := Respond(RespondConfig{Status: http.StatusMovedPermanently, Location: tc.loc}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", tc.target, nil)
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		WithScope(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := ScopeFrom(r)
			s.RequestHost = "app.example"
			s.Path.Path = "/" + strings.TrimLeft(r.URL.Path, "/")
			h.ServeHTTP(w, r)
		})).ServeHTTP(w, r)
		if got := w.Header().Get("Location"); w.Code != 301 || got != tc.want {
			t.Errorf("%s for %s: %d %q, want 301 %q", tc.loc, tc.target, w.Code, got, tc.want)
		}
	}
	for _, bad := range []string{"https://x$http_host", "${uri", "$remote_addr"} {
		if err := CheckLocation(bad); err == nil {
			t.Errorf("CheckLocation(%q) = nil, want an error", bad)
		}
	}
}
