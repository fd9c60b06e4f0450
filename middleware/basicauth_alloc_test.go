//go:build !race

package middleware

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// authCacheHitAllocs is what a logged-in request costs BasicAuth: the
// decoded credentials, the string they are split from, and the
// X-Forwarded-User value slice. Strict base64 must add none.
const authCacheHitAllocs = 3

// TestBasicAuthCacheHitAllocs pins the allocations of a request whose
// login is in the cache.
func TestBasicAuthCacheHitAllocs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	h, err := bcrypt.GenerateFromPassword([]byte("wonderland"), 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("alice:"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	creds, err := NewCredentials(CredentialsConfig{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mw, err := BasicAuth(BasicAuthConfig{}, creds, newTestJails(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	reached := 0
	handler := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached++ }))
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(&scopeCtx{Context: r.Context()})
	auth := []string{basic("alice", "wonderland")}
	w := httptest.NewRecorder()
	r.Header["Authorization"] = auth
	handler.ServeHTTP(w, r) // fills the cache
	n := testing.AllocsPerRun(200, func() {
		r.Header["Authorization"] = auth
		handler.ServeHTTP(w, r)
	})
	if reached == 0 || w.Code != http.StatusOK {
		t.Fatalf("cached login: status %d, next reached %d times", w.Code, reached)
	}
	if n != authCacheHitAllocs {
		t.Errorf("cached login allocs = %v, want %d", n, authCacheHitAllocs)
	}
}
