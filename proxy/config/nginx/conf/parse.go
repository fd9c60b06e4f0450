package conf

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Directive is one nginx directive: a name, its arguments and, for a
// block directive, the directives inside its braces.
type Directive struct {
	Name string
	// Args are the arguments after quote removal and unescaping.
	Args []string
	// File and Line locate the directive's name; for a directive that
	// came from an include, File is the included file.
	File string
	Line int
	// IsBlock reports whether the directive has a { } block (maybe empty).
	IsBlock bool
	// Block holds the block's directives, includes already expanded by
	// Load.
	Block []*Directive
}

// Pos returns "file:line".
func (d *Directive) Pos() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// String returns the directive's head as it could be written: the name
// and the arguments, quoted where needed, without ";" or the block.
func (d *Directive) String() string {
	var b strings.Builder
	b.WriteString(quoteArg(d.Name))
	for _, a := range d.Args {
		b.WriteByte(' ')
		b.WriteString(quoteArg(a))
	}
	return b.String()
}

// quoteArg quotes an argument that would not read back as one word.
func quoteArg(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\r\n;{}\"'\\#") {
		return a
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "\r", `\r`)
	return `"` + r.Replace(a) + `"`
}

// Parse parses one config file without following its includes: an
// include stays a Directive named "include". file names the file in
// positions and errors. Errors are *Error.
func Parse(file string, src []byte) ([]*Directive, error) {
	p := &parser{s: NewScanner(file, src), file: file}
	return p.block(0, 0)
}

type parser struct {
	s    *Scanner
	file string
}

// block parses directives until the "}" closing a block opened on line
// open (depth > 0) or the end of the file (depth 0).
func (p *parser) block(depth, open int) ([]*Directive, error) {
	var out []*Directive
	for {
		t, err := p.s.Next()
		if err != nil {
			return nil, err
		}
		switch t.Kind {
		case EOF:
			if depth > 0 {
				return nil, &Error{File: p.file, Line: t.Line, Msg: fmt.Sprintf(`unexpected end of file, expecting "}" to close the block opened on line %d`, open)}
			}
			return out, nil
		case BlockEnd:
			if depth == 0 {
				return nil, &Error{File: p.file, Line: t.Line, Msg: `unexpected "}"`}
			}
			return out, nil
		case Semicolon, BlockStart:
			return nil, &Error{File: p.file, Line: t.Line, Msg: fmt.Sprintf("unexpected %s", t.Kind)}
		}
		d := &Directive{Name: t.Text, File: p.file, Line: t.Line}
	args:
		for {
			t, err := p.s.Next()
			if err != nil {
				return nil, err
			}
			switch t.Kind {
			case Word:
				d.Args = append(d.Args, t.Text)
			case Semicolon:
				break args
			case BlockStart:
				d.IsBlock = true
				if strings.HasSuffix(d.Name, "_by_lua_block") {
					// lua-nginx-module reads these blocks as Lua, with
					// its own lexer; skip the code.
					if err := p.s.SkipLuaBlock(t.Line); err != nil {
						return nil, err
					}
					break args
				}
				if d.Block, err = p.block(depth+1, t.Line); err != nil {
					return nil, err
				}
				break args
			case BlockEnd:
				return nil, &Error{File: p.file, Line: t.Line, Msg: fmt.Sprintf(`unexpected "}" in %q; is a ";" missing?`, d.Name)}
			case EOF:
				return nil, &Error{File: p.file, Line: t.Line, Msg: fmt.Sprintf(`unexpected end of file in %q, expecting ";" or "}"`, d.Name)}
			}
		}
		out = append(out, d)
	}
}

// maxIncludeDepth bounds nested includes; nginx has no limit but runs out
// of file descriptors, so a cycle is an error here either way.
const maxIncludeDepth = 32

// Load reads the config file at the absolute slash-separated path name
// from fsys (os.DirFS("/") for the real file system) and expands every
// include in place, as nginx does:
//
//   - a relative include path is relative to the directory of the main
//     file (nginx's conf prefix, the directory of "nginx -c FILE"), not to
//     the including file: Debian's sites-enabled files include
//     "snippets/x.conf" meaning /etc/nginx/snippets/x.conf;
//   - a path with "*", "?" or "[" is a glob: its matches are included in
//     sorted order, a glob matching nothing is not an error, and "*" does
//     not match a leading dot (glob(3) without GLOB_PERIOD);
//   - a path without them must exist.
//
// Errors are *Error naming the file and line of the failing include or
// syntax error.
func Load(fsys fs.FS, name string) ([]*Directive, error) {
	if !path.IsAbs(name) {
		return nil, fmt.Errorf("load nginx config %q: the path must be absolute", name)
	}
	name = path.Clean(name)
	l := &loader{fsys: fsys, prefix: path.Dir(name)}
	return l.file(name, nil)
}

type loader struct {
	fsys   fs.FS
	prefix string
}

// file reads and parses name and expands its includes; stack holds the
// files being included, outermost first.
func (l *loader) file(name string, stack []string) ([]*Directive, error) {
	src, err := fs.ReadFile(l.fsys, FSPath(name))
	if err != nil {
		return nil, err
	}
	ds, err := Parse(name, src)
	if err != nil {
		return nil, err
	}
	return l.expand(ds, append(stack, name))
}

// expand replaces include directives in ds (recursively) by the
// directives of the files they name.
func (l *loader) expand(ds []*Directive, stack []string) ([]*Directive, error) {
	out := make([]*Directive, 0, len(ds))
	for _, d := range ds {
		if d.Name != "include" {
			if d.IsBlock {
				var err error
				if d.Block, err = l.expand(d.Block, stack); err != nil {
					return nil, err
				}
			}
			out = append(out, d)
			continue
		}
		if d.IsBlock || len(d.Args) != 1 {
			return nil, &Error{File: d.File, Line: d.Line, Msg: `invalid "include": it takes one file name or glob and ends with ";"`}
		}
		files, err := l.resolve(d.Args[0])
		if err != nil {
			return nil, &Error{File: d.File, Line: d.Line, Msg: fmt.Sprintf("include %s: %v", d.Args[0], err), Err: err}
		}
		for _, f := range files {
			if slices.Contains(stack, f) {
				return nil, &Error{File: d.File, Line: d.Line, Msg: fmt.Sprintf("include %s: %s includes itself (through %s)", d.Args[0], f, strings.Join(stack, " → "))}
			}
			if len(stack) >= maxIncludeDepth {
				return nil, &Error{File: d.File, Line: d.Line, Msg: fmt.Sprintf("include %s: more than %d nested includes", d.Args[0], maxIncludeDepth)}
			}
			inc, err := l.file(f, stack)
			if err != nil {
				var ne *Error
				if errors.As(err, &ne) {
					return nil, err
				}
				msg := fmt.Sprintf("include %s: %v", d.Args[0], err)
				if !strings.HasPrefix(d.Args[0], "/") && errors.Is(err, fs.ErrNotExist) {
					msg += fmt.Sprintf(" (nginx reads relative includes from the main file's directory, %s)", l.prefix)
				}
				return nil, &Error{File: d.File, Line: d.Line, Msg: msg, Err: err}
			}
			out = append(out, inc...)
		}
	}
	return out, nil
}

// resolve turns an include argument into the files it names, in order.
func (l *loader) resolve(arg string) ([]string, error) {
	p := arg
	if !path.IsAbs(p) {
		p = path.Join(l.prefix, p)
	}
	p = path.Clean(p)
	if !strings.ContainsAny(p, "*?[") {
		return []string{p}, nil
	}
	// glob(3) takes "[!...]" for a negated class; path.Match "[^...]".
	pattern := strings.ReplaceAll(FSPath(p), "[!", "[^")
	matches, err := fs.Glob(l.fsys, pattern)
	if err != nil {
		return nil, fmt.Errorf("bad glob %q: %w", arg, err)
	}
	var files []string
	for _, m := range matches {
		if hiddenMatch(pattern, m) {
			continue
		}
		files = append(files, "/"+m)
	}
	slices.Sort(files)
	return files, nil
}

// hiddenMatch reports whether match has a path element starting with "."
// where the pattern's element does not start with one: glob(3) without
// GLOB_PERIOD never matches a leading dot with a wildcard, path.Match does.
func hiddenMatch(pattern, match string) bool {
	pe := strings.Split(pattern, "/")
	me := strings.Split(match, "/")
	for i := range min(len(pe), len(me)) {
		if strings.HasPrefix(me[i], ".") && !strings.HasPrefix(pe[i], ".") {
			return true
		}
	}
	return false
}

// FSPath turns an absolute slash path into an io/fs path, as Load
// resolves includes, so other files the config names are read alike.
func FSPath(p string) string {
	p = strings.TrimPrefix(path.Clean(p), "/")
	if p == "" {
		return "."
	}
	return p
}
