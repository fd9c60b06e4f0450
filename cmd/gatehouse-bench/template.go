package main

import (
	"embed"
	"fmt"
	"os"
	"slices"
	"strings"
)

// templates are the gatehouse configs the benchmarks run, with ${BENCH_*}
// placeholders. They live in testdata/ so they can be read, checked
// (`gatehouse check`) and run by hand.
//
//go:embed testdata/*.yaml
var templates embed.FS

// renderTemplate fills the placeholders of the embedded template name
// with vars. A placeholder vars does not define is an error, so a
// template and the code cannot drift apart silently.
func renderTemplate(name string, vars map[string]string) (string, error) {
	b, err := templates.ReadFile("testdata/" + name)
	if err != nil {
		return "", err
	}
	var missing []string
	out := os.Expand(string(b), func(k string) string {
		v, ok := vars[k]
		if !ok && !slices.Contains(missing, k) {
			missing = append(missing, k)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("template %s: no value for %s", name, strings.Join(missing, ", "))
	}
	return out, nil
}
