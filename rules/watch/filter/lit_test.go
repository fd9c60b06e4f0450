package filter

import (
	"slices"
	"testing"
)

func TestRequiredLiterals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, re string
		want     []string
	}{
		{"concat", `^Failed \S+ for`, []string{"Failed "}},
		{"alternation", `^(?:Connection (?:closed|reset)|Disconnecting) x`, []string{"Connection ", "Disconnecting"}},
		{"short", `^a b`, nil},
		{"optional", `^(?:Failed )?x`, nil},
		{"fold", `(?i)failed`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := requiredLiterals(tc.re)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("requiredLiterals(%q) = %q, want %q", tc.re, got, tc.want)
			}
		})
	}
}
