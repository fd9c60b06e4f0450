package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes, defaults and validates the config file at path. An
// invalid config is returned as Errors; a file that cannot be read is
// returned as an error wrapping the *fs.PathError, so a caller can tell
// the two apart with errors.As (gatehouse check exits 2 for the first, 1
// for the second).
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	f, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	f.Path = path
	return f, nil
}

// Parse decodes, defaults and validates the config in data; name is the
// file name used in error messages. Any problem is returned as Errors,
// which lists every problem found, not only the first. Parse reads the
// files and environment variables that secret references name.
func Parse(name string, data []byte) (*File, error) {
	root, err := parseYAML(name, data)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: name, lines: map[string]int{"": root.Line}, failed: map[string]bool{}}
	var f File
	d.decode(root, "", reflect.ValueOf(&f).Elem())

	v := &validator{file: name, lines: d.lines}
	v.zeroLimits(f.Limits) // before defaults hide an explicit 0
	v.zeroHostTimeouts(f.Hosts)
	applyDefaults(&f)
	v.check(&f)

	errs := d.errs
	for _, e := range v.errs {
		if !covered(e.Field, d.failed) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		errs.sort()
		return nil, errs
	}
	v.warns.sort()
	f.Warnings = v.warns
	return &f, nil
}

// parseYAML parses data into a node tree and returns the content of its
// single document, refusing an empty file and a second document.
func parseYAML(name string, data []byte) (*yaml.Node, error) {
	if !utf8.Valid(data) {
		// yaml.v3 reports this without a line; find it ourselves.
		i := 0
		for i < len(data) {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		line := 1 + bytes.Count(data[:i], []byte("\n"))
		return nil, Errors{{File: name, Line: line, Msg: "invalid UTF-8; the file must be UTF-8 text"}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: name, Line: 1, Msg: "the file is empty (or only comments); a config needs at least a hosts section"}}
		}
		return nil, Errors{syntaxError(name, err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, Errors{syntaxError(name, err)}
	default:
		return nil, Errors{{File: name, Line: extra.Line, Msg: `a second YAML document ("---") starts here; a config file holds exactly one`}}
	}
	if len(doc.Content) != 1 || isNull(doc.Content[0]) {
		return nil, Errors{{File: name, Line: 1, Msg: "the file holds no settings; a config needs at least a hosts section"}}
	}
	return doc.Content[0], nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 parse error into an *Error, keeping the
// line it names.
func syntaxError(name string, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1]) // the pattern admits only digits
		return &Error{File: name, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: name, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// decoder walks a yaml.Node tree against the config struct types.
//
// It exists because yaml.v3's own decoding cannot give us the errors we
// promise: KnownFields(true) errors carry a line but not the field path,
// its strictness is lost inside custom unmarshalers (go-yaml/yaml#460),
// and it stops at the first scalar that fails to parse. The config types
// are few and plain — structs, pointers, slices, map[string]string,
// string, int, bool, and scalar leaf types that implement yaml.Unmarshaler
// — so this small walker decodes them itself and records every problem
// with its line and a path such as hosts[0].match[1].
type decoder struct {
	file   string
	lines  map[string]int // field path → line of its key or item, for validation
	errs   Errors
	failed map[string]bool // fields whose value failed to decode
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// fail reports a problem with a key.
func (d *decoder) fail(n *yaml.Node, field, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// bad reports a value that failed to decode and is left at its zero value.
func (d *decoder) bad(n *yaml.Node, field, format string, args ...any) {
	d.fail(n, field, format, args...)
	d.failed[field] = true
}

// decode stores node n into v, whose path in the file is field. A null
// leaves v at its zero value, which means "default" or "not set".
func (d *decoder) decode(n *yaml.Node, field string, v reflect.Value) {
	switch {
	case n.Kind == yaml.AliasNode:
		d.bad(n, field, "YAML aliases (*%s) are not supported; write the value out", n.Value)
		return
	case n.Tag != "" && !strings.HasPrefix(n.ShortTag(), "!!"):
		d.bad(n, field, "custom YAML tags (%s) are not supported", n.Tag)
		return
	case isNull(n):
		return
	case n.Kind == yaml.ScalarNode && n.Value == "off" && v.Kind() == reflect.Pointer:
		// "basic_auth: off", "probes: off": a block that may be switched
		// off has a yaml:"-" Off field.
		if f, ok := v.Type().Elem().FieldByName("Off"); ok && f.Tag.Get("yaml") == "-" && f.Type.Kind() == reflect.Bool {
			p := reflect.New(v.Type().Elem())
			p.Elem().FieldByIndex(f.Index).SetBool(true)
			v.Set(p)
			return
		}
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct:
		// "filter: sshd": a block that may be given by name has a
		// yaml:"-" Builtin field.
		if f, ok := v.Type().Elem().FieldByName("Builtin"); ok && f.Tag.Get("yaml") == "-" && f.Type.Kind() == reflect.String {
			p := reflect.New(v.Type().Elem())
			p.Elem().FieldByIndex(f.Index).SetString(n.Value)
			v.Set(p)
			return
		}
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" && v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct:
		if _, ok := v.Type().Elem().FieldByName("Off"); ok {
			d.bad(n, field, `write "off" to switch it off, or a block`)
			return
		}
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.bad(n, field, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, field, p.Elem())
		v.Set(p)
	case reflect.Struct:
		d.structure(n, field, v)
	case reflect.Slice:
		d.list(n, field, v)
	case reflect.Map:
		d.mapping(n, field, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.bad(n, field, "expected a string, found %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.bad(n, field, "expected a whole number, found %s", describe(n))
		} else if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
			d.bad(n, field, "%s is not a whole number in range", describe(n))
		} else {
			v.SetInt(i)
		}
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || n.Decode(&f) != nil {
			d.bad(n, field, "expected a number, found %s", describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.bad(n, field, "expected true or false, found %s", describe(n))
			return
		}
		v.SetBool(b)
	default:
		// A programming error in types.go, caught by every test that
		// decodes a config.
		panic("config: cannot decode into " + v.Type().String())
	}
}

func (d *decoder) structure(n *yaml.Node, field string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.bad(n, field, "expected a mapping, found %s", describe(n))
		return
	}
	var names []string
	index := map[string]int{}
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
			index[name] = i
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key, ok := d.key(k, field, seen, join)
		if !ok {
			continue
		}
		path := join(field, key)
		fi, known := index[key]
		if !known {
			d.fail(k, path, "unknown key%s", suggest(key, names))
			continue
		}
		d.lines[path] = k.Line
		d.decode(val, path, v.Field(fi))
	}
}

func (d *decoder) list(n *yaml.Node, field string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode && len(n.Value) <= 60 && !strings.ContainsAny(n.Value, "\n,[]{}") {
			hint = fmt.Sprintf(" (write [%s] for a list of one)", n.Value)
		}
		d.bad(n, field, "expected a list, found %s%s", describe(n), hint)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		path := field + "[" + strconv.Itoa(i) + "]"
		d.lines[path] = item.Line
		d.decode(item, path, s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) mapping(n *yaml.Node, field string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.bad(n, field, "expected a mapping of names to values, found %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key, ok := d.key(k, field, seen, mapEntry)
		if !ok {
			continue
		}
		path := mapEntry(field, key)
		d.lines[path] = k.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, path, e)
		m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e)
	}
	v.Set(m)
}

// key returns the text of a mapping key, refusing non-scalar keys, merge
// keys and a key seen before in the same mapping; path makes the field
// path of a key.
func (d *decoder) key(k *yaml.Node, field string, seen map[string]int, path func(field, key string) string) (string, bool) {
	if k.Kind != yaml.ScalarNode {
		d.fail(k, field, "keys must be plain names, found %s", describe(k))
		return "", false
	}
	if k.ShortTag() == "!!merge" {
		d.fail(k, field, "YAML merge keys (<<) are not supported; write the keys out")
		return "", false
	}
	if first, dup := seen[k.Value]; dup {
		d.fail(k, path(field, k.Value), "duplicate key (first at line %d)", first)
		return "", false
	}
	seen[k.Value] = k.Line
	return k.Value, true
}

// covered reports whether field or one of its parents failed to decode,
// so validation does not pile a second message (such as "required") on a
// value that was already reported.
func covered(field string, failed map[string]bool) bool {
	for {
		if failed[field] {
			return true
		}
		if field == "" {
			return false
		}
		field = parent(field)
	}
}

// mapEntry is the path of an entry of a map field: set["X-Frame-Options"].
func mapEntry(field, key string) string {
	return field + "[" + strconv.Quote(key) + "]"
}

// join is the path of a struct field: hosts[0].match.
func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for "expected X, found Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "a YAML document"
}

// suggest returns ` (did you mean "x"?)` for the known key closest to an
// unknown one within edit distance 2 (1 for keys of up to 4 letters), or
// else the list of allowed keys.
func suggest(key string, known []string) string {
	maxDist := 2
	if len(key) <= 4 { // "foo" is two edits from "log" but no typo of it
		maxDist = 1
	}
	best, bestDist := "", maxDist+1
	lk := strings.ToLower(key)
	for _, k := range known {
		if dist := editDistance(lk, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return "; allowed: " + strings.Join(known, ", ")
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 { // keys are short; this bounds the work on garbage
		return len(a)
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
