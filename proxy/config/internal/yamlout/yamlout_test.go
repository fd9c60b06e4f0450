package yamlout

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestEncode(t *testing.T) {
	key := &yaml.Node{Kind: yaml.ScalarNode, Value: "k", HeadComment: "from a\x1b[31m file\nsecond\u2028line"}
	val := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "bad \xff byte", LineComment: "tab\there"}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Content: []*yaml.Node{key, val}}}}
	out, err := Encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := "# from a\\x1b[31m file\n# second\\x2028line\nk: bad \uFFFD byte # tab\\x09here\n"
	if string(out) != want {
		t.Errorf("Encode = %q, want %q", out, want)
	}
	var back map[string]string
	if err := yaml.Unmarshal(out, &back); err != nil || back["k"] != "bad \uFFFD byte" {
		t.Errorf("read back: %v, %v", back, err)
	}
	if strings.ContainsRune(string(out), 0x1b) {
		t.Error("a control character is left in a comment")
	}
}
