package config

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// referencePath is the configuration reference, checked against the
// types of this package so that the two cannot drift apart.
const referencePath = "../../docs/configuration.md"

// TestConfigurationReference walks File's yaml tags and compares the key
// paths with the keys the reference documents: the first column of every
// table whose header is "| key |". Every key a config can hold must be
// documented, and every documented key must exist.
func TestConfigurationReference(t *testing.T) {
	t.Parallel()
	documented := documentedKeys(t, referencePath)
	leaves, all := map[string]bool{}, map[string]bool{}
	walkKeys(reflect.TypeFor[File](), "", leaves, all)
	if len(leaves) < 50 {
		t.Fatalf("walkKeys found %d keys; the walk is broken", len(leaves))
	}

	var undocumented, unknown []string
	for k := range leaves {
		if !documented[k] {
			undocumented = append(undocumented, k)
		}
	}
	for k := range documented {
		if !all[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(undocumented)
	slices.Sort(unknown)
	for _, k := range undocumented {
		t.Errorf("%s: key in the config structs (proxy/config) but not in docs/configuration.md: add a table row for it", k)
	}
	for _, k := range unknown {
		t.Errorf("%s: key documented in docs/configuration.md but not in the config structs (proxy/config): add the field or remove the row", k)
	}
}

// walkKeys adds the YAML key paths of typ under prefix: leaves (scalars,
// lists of scalars, maps of scalars) to leaves, and every path, the
// intermediate ones included, to all. A list of mappings is written
// "key[]", a map of mappings "key.NAME", as the reference writes them.
func walkKeys(typ reflect.Type, prefix string, leaves, all map[string]bool) {
	unmarshaler := reflect.TypeFor[yaml.Unmarshaler]()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if prefix != "" {
		all[prefix] = true
	}
	if reflect.PointerTo(typ).Implements(unmarshaler) {
		leaves[prefix] = true // a scalar with its own parser
		return
	}
	switch typ.Kind() {
	case reflect.Struct:
		for f := range typ.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "-" || !f.IsExported() {
				continue
			}
			if tag == "" {
				tag = strings.ToLower(f.Name)
			}
			walkKeys(f.Type, join(prefix, tag), leaves, all)
		}
	case reflect.Slice:
		if elemIsMapping(typ.Elem()) {
			walkKeys(typ.Elem(), prefix+"[]", leaves, all)
			return
		}
		leaves[prefix] = true
	case reflect.Map:
		if elemIsMapping(typ.Elem()) {
			walkKeys(typ.Elem(), prefix+".NAME", leaves, all)
			return
		}
		leaves[prefix] = true
	default:
		leaves[prefix] = true
	}
}

// elemIsMapping reports whether a YAML value of type typ is a mapping
// of keys (a struct without its own scalar parser).
func elemIsMapping(typ reflect.Type) bool {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	return typ.Kind() == reflect.Struct && !reflect.PointerTo(typ).Implements(reflect.TypeFor[yaml.Unmarshaler]())
}

// keyCell is a key path in a table's first column.
var keyCell = regexp.MustCompile("^`([a-z0-9_]+(?:\\[\\]|\\.[a-zA-Z0-9_]+)*)`$")

// documentedKeys reads the key paths of the reference's key tables.
func documentedKeys(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]bool{}
	inKeyTable := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.HasPrefix(line, "|") {
			inKeyTable = false
			continue
		}
		cells := strings.Split(line, "|")
		first := strings.TrimSpace(cells[1])
		switch {
		case first == "key":
			inKeyTable = true
		case !inKeyTable || strings.HasPrefix(first, "---"):
		default:
			m := keyCell.FindStringSubmatch(first)
			if m == nil {
				t.Errorf("%s:%d: key cell %q is not one `key.path`", path, n, first)
				continue
			}
			if keys[m[1]] {
				t.Errorf("%s:%d: %s documented twice", path, n, m[1])
			}
			keys[m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}
