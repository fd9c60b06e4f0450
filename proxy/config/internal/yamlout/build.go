package yamlout

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Scalar is a string value.
func Scalar(v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
}

// Number is a number written as v: a float when it has '.' or 'e'.
func Number(v string) *yaml.Node {
	tag := "!!int"
	if strings.ContainsAny(v, ".e") {
		tag = "!!float"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v}
}

// Seq is a sequence of items, in flow style ([a, b]) when flow.
func Seq(flow bool, items ...*yaml.Node) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Content: items}
	if flow {
		n.Style = yaml.FlowStyle
	}
	return n
}

// Strs is a sequence of strings.
func Strs(flow bool, vs []string) *yaml.Node {
	n := Seq(flow)
	for _, v := range vs {
		n.Content = append(n.Content, Scalar(v))
	}
	return n
}

// Mapping is a YAML mapping built key by key; N is its node.
type Mapping struct{ N *yaml.Node }

// NewMapping returns an empty mapping.
func NewMapping() Mapping { return Mapping{&yaml.Node{Kind: yaml.MappingNode}} }

// Add appends key: value with an optional comment above the key (empty
// comments are left out).
func (m Mapping) Add(key string, value *yaml.Node, comment ...string) {
	k := Scalar(key)
	k.Tag = ""
	k.HeadComment = strings.Join(slices.DeleteFunc(comment, func(s string) bool { return s == "" }), "\n")
	m.N.Content = append(m.N.Content, k, value)
}
