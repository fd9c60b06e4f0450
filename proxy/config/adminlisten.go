package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// DefaultAdminListen is admin.listen when a config does not set it.
const DefaultAdminListen = "127.0.0.1:9901"

// AdminListen returns the admin.listen address of the config in data (name
// is the file name for errors), DefaultAdminListen when it is not set, or
// "off". Unlike Parse it reads that one key and validates nothing else:
// `gatehouse healthcheck` asks a running gateway, whose config may be older
// than the file, and must not fail because of an unrelated key or a secret
// it cannot read.
func AdminListen(name string, data []byte) (string, error) {
	root, err := parseYAML(name, data)
	if err != nil {
		return "", err
	}
	admin := mappingValue(root, "admin")
	if admin == nil {
		return DefaultAdminListen, nil
	}
	listen := mappingValue(admin, "listen")
	switch {
	case listen == nil || listen.Value == "":
		return DefaultAdminListen, nil
	case listen.Kind != yaml.ScalarNode:
		return "", &Error{File: name, Line: listen.Line, Field: "admin.listen", Msg: fmt.Sprintf("want an address such as %q", DefaultAdminListen)}
	}
	return listen.Value, nil
}

// mappingValue returns the value of key in the mapping n, or nil when n
// is not a mapping or has no such key.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
