package match

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
		raw  string
		want bool
	}{
		{"/admin", true},
		{"/admin/", true},
		{"/admin/users", true},
		{"/administrator", false},
		{"/ADMIN/x", true},
		{"//admin", true},
		{"/%61dmin", true},
		{"/x/../admin", true},
		{"/./admin", true},
		{"/admin./", true},
		{"/admin;x/", true},
		{"/private/a", true},
		// "/private/" covers "/private" in every form the
		// canonical view folds, as nginx's redirect to "/private/" does.
		{"/private", true},
		{"/PRIVATE", true},
		{"/private;x", true},
		{"/private.", true},
		{"/private%20", true},
		{"//private", true},
		{"/x/../private", true},
		{"/privatex", false},
		{"/privat", false},
		{"/public", false},
		{"/", false},
	}
	for _, tc := range tests {
		c, err := Canonical(tc.raw)
		if err != nil {
			t.Fatalf("Canonical(%q): %v", tc.raw, err)
		}
		if got := ps.CoversRequest(tc.raw, c); got != tc.want {
			t.Errorf("CoversRequest(%q, %+v) = %v, want %v", tc.raw, c, got, tc.want)
		}
	}
	all, err := CompilePrefixes([]string{"/"})
	if err != nil {
		t.Fatal(err)
	}
	if !all.CoversRequest("/anything", CanonicalPath{Path: "/anything", Probe: "/anything"}) {
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
