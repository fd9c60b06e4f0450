package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

// TestServeUsageComplete pins that `gatehouse help` and `gatehouse serve
// --help` show the same serve line and every serve flag: they used to
// show --watch in one place and --user/--allow-root in the other.
func TestServeUsageComplete(t *testing.T) {
	t.Parallel()
	var help, serveHelp bytes.Buffer
	if code := run([]string{"help"}, &help, io.Discard); code != exitOK {
		t.Fatalf("gatehouse help = %d, want 0", code)
	}
	run([]string{"serve", "--help"}, io.Discard, &serveHelp)

	first, _, _ := strings.Cut(serveHelp.String(), "\n")
	line, ok := strings.CutPrefix(first, "usage: gatehouse ")
	if !ok {
		t.Fatalf("gatehouse serve --help starts with %q, want \"usage: gatehouse serve …\"", first)
	}
	words := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if !strings.Contains(words(help.String()), " "+words(line)+" run the gateway") {
		t.Errorf("gatehouse help has no line %q:\n%s", line, help.String())
	}
	fs, _ := newServeFlags(io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		name := "--" + f.Name
		if f.Name == "c" {
			name = "-c"
		}
		if !strings.Contains(line, name+" ") && !strings.Contains(line, name+"]") {
			t.Errorf("serve usage %q lacks flag %s", line, name)
		}
		if !strings.Contains(serveHelp.String(), "\n  "+name+" ") {
			t.Errorf("gatehouse serve --help does not explain %s:\n%s", name, serveHelp.String())
		}
	})
}
