package rules

import (
	"strings"
	"testing"
)

func TestPrefixSetCoversRequest(t *testing.T) {
	t.Parallel()
	ps, err := CompilePrefixes([]string{"/admin", "/private/"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		raw, decoded string
		want         bool
	}{
		{"/admin", "/admin", true},
		{"/admin/", "/admin/", true},
		{"/admin/users", "/admin/users", true},
		{"/administrator", "/administrator", false},
		{"/ADMIN/x", "/ADMIN/x", true},
		{"//admin", "//admin", true},
		{"/%61dmin", "/admin", true},
		{"/x/../admin", "/x/../admin", true},
		{"/./admin", "/./admin", true},
		{"/private/a", "/private/a", true},
		{"/private", "/private", false},
		{"/public", "/public", false},
		{"/", "/", false},
	}
	for _, tc := range tests {
		if got := ps.CoversRequest(tc.raw, tc.decoded); got != tc.want {
			t.Errorf("CoversRequest(%q, %q) = %v, want %v", tc.raw, tc.decoded, got, tc.want)
		}
	}
	all, err := CompilePrefixes([]string{"/"})
	if err != nil {
		t.Fatal(err)
	}
	if !all.CoversRequest("/anything", "/anything") {
		t.Error(`CoversRequest with "/" = false, want true`)
	}
}

func TestCompilePrefixesErrors(t *testing.T) {
	t.Parallel()
	_, err := CompilePrefixes([]string{"admin"})
	if err == nil || !strings.Contains(err.Error(), `"admin" must start with /`) {
		t.Errorf("CompilePrefixes(admin) error = %v", err)
	}
}
