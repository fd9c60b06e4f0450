package conf

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// tokens scans src whole and renders each token as "line:kind:text",
// with a Q for quoted words.
func tokens(src string) ([]string, error) {
	s := NewScanner("t.conf", []byte(src))
	var out []string
	for range len(src) + 2 { // every token but EOF consumes input
		tok, err := s.Next()
		if err != nil {
			return out, err
		}
		if tok.Kind == EOF {
			return out, nil
		}
		q := ""
		if tok.Quoted {
			q = "Q"
		}
		out = append(out, fmt.Sprintf("%d:%s%s:%s", tok.Line, tok.Kind, q, tok.Text))
	}
	return out, errors.New("scanner did not reach EOF")
}

func TestScanner(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		src     string
		want    []string
		wantErr string
	}{
		{"directive", "listen 80;", []string{"1:word:listen", "1:word:80", `1:";":`}, ""},
		{"block", "server {\n}\n", []string{"1:word:server", `1:"{":`, `2:"}":`}, ""},
		{"no spaces", "a b{c;}", []string{"1:word:a", "1:word:b", `1:"{":`, "1:word:c", `1:";":`, `1:"}":`}, ""},
		{"double quotes", `auth_basic "Staging area";`, []string{"1:word:auth_basic", "1:wordQ:Staging area", `1:";":`}, ""},
		{"single quotes", `add_header X 'a "b"';`, []string{"1:word:add_header", "1:word:X", `1:wordQ:a "b"`, `1:";":`}, ""},
		{"escaped quote in quotes", `x "a\"b";`, []string{"1:word:x", `1:wordQ:a"b`, `1:";":`}, ""},
		{"empty quoted word", `map $a $b { '' close; }`, []string{"1:word:map", "1:word:$a", "1:word:$b", `1:"{":`, "1:wordQ:", "1:word:close", `1:";":`, `1:"}":`}, ""},
		{"escapes kept for regex", `location ~ \.php$ {}`, []string{"1:word:location", "1:word:~", `1:word:\.php$`, `1:"{":`, `1:"}":`}, ""},
		// nginx keeps the backslash of escapes other than \" \' \\ \t \r \n.
		{"escaped space and semicolon", `x a\ b\;c;`, []string{"1:word:x", `1:word:a\ b\;c`, `1:";":`}, ""},
		{"control escapes", `x "a\tb\nc\\d";`, []string{"1:word:x", "1:wordQ:a\tb\nc\\d", `1:";":`}, ""},
		{"comment line", "# whole line\nx; # trailing\ny;", []string{"2:word:x", `2:";":`, "3:word:y", `3:";":`}, ""},
		{"hash inside a word", "x a#b;", []string{"1:word:x", "1:word:a#b", `1:";":`}, ""},
		{"hash in quotes", `x "a # b";`, []string{"1:word:x", "1:wordQ:a # b", `1:";":`}, ""},
		{"variable braces", "return 301 https://${host}$request_uri;", []string{"1:word:return", "1:word:301", "1:word:https://${host}$request_uri", `1:";":`}, ""},
		{"brace ends nothing inside a word", "x a}b;", []string{"1:word:x", "1:word:a}b", `1:";":`}, ""},
		{"if parentheses", `if ($a = "x") {}`, []string{"1:word:if", "1:word:($a", "1:word:=", "1:wordQ:x", "1:word:)", `1:"{":`, `1:"}":`}, ""},
		{"multi-line quoted string", "x \"a\nb\";\ny;", []string{"1:word:x", "1:wordQ:a\nb", `2:";":`, "3:word:y", `3:";":`}, ""},
		{"CRLF", "x 1;\r\ny 2;\r\n", []string{"1:word:x", "1:word:1", `1:";":`, "2:word:y", "2:word:2", `2:";":`}, ""},
		{"quote then junk", `x "a"b;`, nil, `t.conf:1: unexpected "b" after a quoted string`},
		{"unterminated quote", "x;\ny \"abc;\n", nil, `t.conf:2: unexpected end of file in a "-quoted string`},
		{"quote then hash", `x "a"#c`, nil, `t.conf:1: unexpected "#"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tokens(tc.src)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("tokens(%q) error = %v, want %q", tc.src, err, tc.wantErr)
				}
				var ne *Error
				if !errors.As(err, &ne) {
					t.Errorf("error %T is not *Error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("tokens(%q): %v", tc.src, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("tokens(%q) =\n%q\nwant\n%q", tc.src, got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src, wantErr string
	}{
		{"missing semicolon at end", "http {\n  server {}\n}\nuser www", `t.conf:4: unexpected end of file in "user"`},
		{"missing semicolon before brace", "http {\n  sendfile on\n}\n", `t.conf:3: unexpected "}" in "sendfile"`},
		{"unclosed block", "http {\n  server {\n    listen 80;\n  }\n", `t.conf:5: unexpected end of file, expecting "}" to close the block opened on line 1`},
		{"stray brace", "user x;\n}\n", `t.conf:2: unexpected "}"`},
		{"semicolon alone", "user x;\n;\n", `t.conf:2: unexpected ";"`},
		{"brace alone", "\n\n{ }", `t.conf:3: unexpected "{"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.conf", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse(%q) error = %v, want %q", tc.src, err, tc.wantErr)
			}
		})
	}
}

func TestParseTree(t *testing.T) {
	t.Parallel()
	src := "http {\n  # c\n  server {\n    server_name a.example.com\n      b.example.com;\n    location = / { return 204; }\n  }\n}\n"
	ds, err := Parse("t.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := render(ds); got != "http {\nserver {\nserver_name a.example.com b.example.com;\nlocation = / {\nreturn 204;\n}\n}\n}\n" {
		t.Errorf("render(Parse(...)) = %q", got)
	}
	sn := ds[0].Block[0].Block[0]
	if sn.Name != "server_name" || sn.Line != 4 || sn.Pos() != "t.conf:4" {
		t.Errorf("server_name at %s, want t.conf:4", sn.Pos())
	}
	if loc := ds[0].Block[0].Block[1]; loc.Line != 6 || !loc.IsBlock {
		t.Errorf("location at line %d (block %v), want 6, true", loc.Line, loc.IsBlock)
	}
}

// render writes directives back as nginx config text, one per line,
// arguments quoted where needed.
func render(ds []*Directive) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		if d.IsBlock {
			b.WriteString(" {\n")
			b.WriteString(render(d.Block))
			b.WriteString("}\n")
		} else {
			b.WriteString(";\n")
		}
	}
	return b.String()
}

func TestLoadIncludes(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"etc/nginx/nginx.conf":    {Data: []byte("http {\n  include conf.d/*.conf;\n  include /etc/nginx/sites-enabled/*;\n  include nomatch/*.conf;\n}\n")},
		"etc/nginx/conf.d/b.conf": {Data: []byte("b 1;\n")},
		"etc/nginx/conf.d/a.conf": {Data: []byte("a 1;\n")},
		// glob(3) does not match a leading dot with "*".
		"etc/nginx/conf.d/.hidden.conf": {Data: []byte("hidden 1;\n")},
		"etc/nginx/conf.d/c.conf.bak":   {Data: []byte("bak 1;\n")},
		// A relative include inside an included file is relative to the
		// main file's directory, not to sites-enabled/.
		"etc/nginx/sites-enabled/app":   {Data: []byte("server {\n  include snippets/proxy.conf;\n}\n")},
		"etc/nginx/snippets/proxy.conf": {Data: []byte("\n\nproxy_http_version 1.1;\n")},
	}
	ds, err := Load(fsys, "/etc/nginx/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := render(ds), "http {\na 1;\nb 1;\nserver {\nproxy_http_version 1.1;\n}\n}\n"; got != want {
		t.Errorf("Load = %q, want %q", got, want)
	}
	if d := ds[0].Block[2].Block[0]; d.Pos() != "/etc/nginx/snippets/proxy.conf:3" {
		t.Errorf("included directive at %s, want /etc/nginx/snippets/proxy.conf:3", d.Pos())
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{"missing include", map[string]string{"etc/nginx/nginx.conf": "events {}\ninclude snippets/ssl.conf;\n"},
			"/etc/nginx/nginx.conf:2: include snippets/ssl.conf: open etc/nginx/snippets/ssl.conf: file does not exist (nginx reads relative includes from the main file's directory, /etc/nginx)"},
		{"broken included file", map[string]string{"etc/nginx/nginx.conf": "http {\n include conf.d/*.conf;\n}\n", "etc/nginx/conf.d/x.conf": "server {\n listen 80\n}\n"},
			`/etc/nginx/conf.d/x.conf:3: unexpected "}" in "listen"`},
		{"include cycle", map[string]string{"etc/nginx/nginx.conf": "include a.conf;\n", "etc/nginx/a.conf": "include nginx.conf;\n"},
			"/etc/nginx/a.conf:1: include nginx.conf: /etc/nginx/nginx.conf includes itself"},
		{"include with a block", map[string]string{"etc/nginx/nginx.conf": "include a.conf {}\n"},
			`/etc/nginx/nginx.conf:1: invalid "include"`},
		{"included file closes the includer's block", map[string]string{"etc/nginx/nginx.conf": "http {\ninclude a.conf;\n}\n", "etc/nginx/a.conf": "x 1;\n}\n"},
			`/etc/nginx/a.conf:2: unexpected "}"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range tc.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			_, err := Load(fsys, "/etc/nginx/nginx.conf")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzScanner checks, for any input, that scanning terminates with
// positions inside the input, and that a file Parse accepts reads back
// as the same tree after render (quoting and escaping round trip).
func FuzzScanner(f *testing.F) {
	// Grammar corners: quotes, escapes, comments, variables, blocks.
	for _, s := range []string{
		"listen 80;", `auth_basic "Staging area";`, `add_header X 'a "b"';`, `x "a\"b";`,
		`map $a $b { '' close; default upgrade; }`, `location ~ \.php$ { deny all; }`,
		`x a\ b\;c;`, "# c\nx; # t\n", "x a#b;", "return 301 https://${host}$request_uri;",
		"x a}b;", `if ($a = "x") { return 403; }`, "x \"a\nb\";", `x "a"b;`, "x \"abc",
		"http {\n server {\n  listen 80;\n }\n", "}", ";", "{", "x \\", "x '\\'';",
	} {
		f.Add(s)
	}
	// Debian's stock config, from the translator's test data.
	for _, name := range []string{"../testdata/debian/etc/nginx/nginx.conf", "../testdata/debian/etc/nginx/sites-available/default"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, src string) {
		lines := strings.Count(src, "\n") + 1
		s := NewScanner("f", []byte(src))
		for i := 0; ; i++ {
			if i > len(src)+1 {
				t.Fatalf("no EOF after %d tokens", i)
			}
			tok, err := s.Next()
			if err != nil {
				var ne *Error
				if !errors.As(err, &ne) || ne.Line < 1 || ne.Line > lines {
					t.Fatalf("error %v: line outside 1..%d", err, lines)
				}
				break
			}
			if tok.Line < 1 || tok.Line > lines {
				t.Fatalf("token %+v: line outside 1..%d", tok, lines)
			}
			if tok.Kind == EOF {
				break
			}
		}
		ds, err := Parse("f", []byte(src))
		if err != nil {
			return
		}
		text := render(ds)
		again, err := Parse("f", []byte(text))
		if err != nil {
			t.Fatalf("render(Parse(%q)) = %q, which does not parse: %v", src, text, err)
		}
		if got := render(again); got != text {
			t.Fatalf("round trip of %q:\n%q\n!=\n%q", src, got, text)
		}
	})
}
