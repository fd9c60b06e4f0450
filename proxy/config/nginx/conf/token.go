package conf

import (
	"fmt"
	"strings"
)

// TokenKind says what a Token is.
type TokenKind int

// Token kinds. A directive is one or more Words followed by Semicolon
// (a simple directive) or BlockStart (a block, closed by BlockEnd).
const (
	Word       TokenKind = iota // a name or an argument, unquoted and unescaped
	Semicolon                   // ";" ending a simple directive
	BlockStart                  // "{" ending a block directive's head
	BlockEnd                    // "}" closing the innermost block
	EOF                         // the end of the input
)

func (k TokenKind) String() string {
	switch k {
	case Word:
		return "word"
	case Semicolon:
		return `";"`
	case BlockStart:
		return `"{"`
	case BlockEnd:
		return `"}"`
	case EOF:
		return "end of file"
	}
	return fmt.Sprintf("TokenKind(%d)", int(k))
}

// Token is one lexical element of an nginx config file.
type Token struct {
	Kind TokenKind
	// Text is a Word's value after quote removal and unescaping, as nginx
	// passes it to the directive handler; empty for the other kinds.
	Text string
	// Quoted reports whether the Word was written in single or double
	// quotes ("" is a Word only when quoted).
	Quoted bool
	// Line is the 1-based line the token starts on.
	Line int
}

// Error is a config file nginx itself would refuse to load, or an
// include that cannot be read. Error() reads "file:line: message"; Err,
// when set, is the underlying cause (an *fs.PathError for an include).
type Error struct {
	File string
	Line int
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Scanner splits an nginx config file into tokens exactly as nginx's
// ngx_conf_read_token does (src/core/ngx_conf_file.c, nginx 1.22):
//
//   - space, tab, CR and LF separate words; ";", "{" and "}" end them;
//   - "#" starts a comment that runs to the end of the line, but only
//     where a word could start: inside a word ("a#b") it is a character;
//   - '…' and "…" quote a word, which must then be followed by space, ";",
//     "{" or ")"; the quotes are removed;
//   - a backslash makes the next character literal (so "\ " and "\;" stay
//     in the word); when the word is stored, \" \' \\ become the character
//     and \t \r \n the control character, while any other "\x" keeps its
//     backslash (regular expressions rely on that: "\." stays "\.");
//   - "${" inside a word does not start a block ("${var}" is one word);
//   - "}" ends a block only where a word could start ("a}" is one word).
//
// A Scanner is not safe for concurrent use.
type Scanner struct {
	file string
	src  string
	pos  int
	line int
}

// NewScanner returns a Scanner over src; file names it in errors.
func NewScanner(file string, src []byte) *Scanner {
	return &Scanner{file: file, src: string(src), line: 1}
}

func (s *Scanner) errorf(line int, format string, args ...any) error {
	return &Error{File: s.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Next returns the next token. At the end of the input it returns a token
// of kind EOF, and keeps doing so. Errors are *Error.
func (s *Scanner) Next() (Token, error) {
	// Skip space and comments until something that starts a token.
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch c {
		case '\n':
			s.line++
			s.pos++
		case ' ', '\t', '\r':
			s.pos++
		case '#':
			nl := strings.IndexByte(s.src[s.pos:], '\n')
			if nl < 0 {
				s.pos = len(s.src)
			} else {
				s.pos += nl // the newline is counted by the loop
			}
		case ';':
			s.pos++
			return Token{Kind: Semicolon, Line: s.line}, nil
		case '{':
			s.pos++
			return Token{Kind: BlockStart, Line: s.line}, nil
		case '}':
			s.pos++
			return Token{Kind: BlockEnd, Line: s.line}, nil
		case '"', '\'':
			return s.quoted(c)
		default:
			return s.word()
		}
	}
	return Token{Kind: EOF, Line: s.line}, nil
}

// word scans an unquoted word, which ends before space, ";" or "{" (and
// at the end of the input, where nginx then complains about the missing
// ";", which the parser does).
func (s *Scanner) word() (Token, error) {
	start, line := s.pos, s.line
	variable := false
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		if c == '{' && variable {
			variable = false
			s.pos++
			continue
		}
		variable = false
		switch c {
		case '\\':
			// The escaped character is taken as is, even a newline
			// (which still counts as a line).
			s.pos++
			if s.pos < len(s.src) {
				if s.src[s.pos] == '\n' {
					s.line++
				}
				s.pos++
			}
			continue
		case '$':
			variable = true
		case ' ', '\t', '\r', '\n', ';', '{':
			return Token{Kind: Word, Text: unescape(s.src[start:s.pos]), Line: line}, nil
		}
		s.pos++
	}
	return Token{Kind: Word, Text: unescape(s.src[start:s.pos]), Line: line}, nil
}

// quoted scans a word in quotes q, starting at the opening quote.
func (s *Scanner) quoted(q byte) (Token, error) {
	line := s.line
	s.pos++ // the opening quote
	start := s.pos
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch c {
		case '\n':
			s.line++
		case '\\':
			s.pos++
			if s.pos < len(s.src) && s.src[s.pos] == '\n' {
				s.line++
			}
		case q:
			text := unescape(s.src[start:s.pos])
			s.pos++
			// nginx requires a separator after a closing quote; ";" and
			// "{" are left for the next call, ")" starts the next word.
			if s.pos < len(s.src) {
				switch s.src[s.pos] {
				case ' ', '\t', '\r', '\n', ';', '{', ')':
				default:
					return Token{}, s.errorf(s.line, "unexpected %q after a quoted string; nginx needs a space, \";\" or \"{\" there", s.src[s.pos:s.pos+1])
				}
			}
			return Token{Kind: Word, Text: text, Quoted: true, Line: line}, nil
		}
		s.pos++
	}
	return Token{}, s.errorf(line, "unexpected end of file in a %c-quoted string that starts here", q)
}

// unescape turns a raw word into the value nginx stores: \" \' \\ become
// the character, \t \r \n the control character, and any other backslash
// is kept with the character after it.
func unescape(raw string) string {
	if strings.IndexByte(raw, '\\') < 0 {
		return raw
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' && i+1 < len(raw) {
			switch raw[i+1] {
			case '"', '\'', '\\':
				i++
				c = raw[i]
			case 't':
				i++
				c = '\t'
			case 'r':
				i++
				c = '\r'
			case 'n':
				i++
				c = '\n'
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// SkipLuaBlock skips the Lua code of a *_by_lua_block directive up to and
// including the "}" that closes the block opened on line open, as
// lua-nginx-module's parser does: braces inside Lua strings ('…', "…",
// [[…]], [==[…]==]) and comments (--, --[[…]]) do not count.
func (s *Scanner) SkipLuaBlock(open int) error {
	depth := 1
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == '\n':
			s.line++
			s.pos++
		case c == '{':
			depth++
			s.pos++
		case c == '}':
			depth--
			s.pos++
			if depth == 0 {
				return nil
			}
		case c == '"' || c == '\'':
			s.pos++
			for s.pos < len(s.src) && s.src[s.pos] != c && s.src[s.pos] != '\n' {
				if s.src[s.pos] == '\\' {
					s.pos++
				}
				s.pos++
			}
			s.pos++
		case c == '[' && s.longBracket() >= 0:
			s.skipLong(s.longBracket())
		case c == '-' && strings.HasPrefix(s.src[s.pos:], "--"):
			s.pos += 2
			if s.pos < len(s.src) && s.src[s.pos] == '[' && s.longBracket() >= 0 {
				s.skipLong(s.longBracket())
				continue
			}
			for s.pos < len(s.src) && s.src[s.pos] != '\n' {
				s.pos++
			}
		default:
			s.pos++
		}
	}
	return s.errorf(s.line, "unexpected end of file in the Lua block opened on line %d", open)
}

// longBracket returns the level of a Lua long bracket ("[[" 0, "[=[" 1 …)
// starting at s.pos, or -1.
func (s *Scanner) longBracket() int {
	i := s.pos + 1
	for i < len(s.src) && s.src[i] == '=' {
		i++
	}
	if i < len(s.src) && s.src[i] == '[' {
		return i - s.pos - 1
	}
	return -1
}

// skipLong skips a long bracket of the given level starting at s.pos.
func (s *Scanner) skipLong(level int) {
	end := "]" + strings.Repeat("=", level) + "]"
	s.pos += level + 2
	i := strings.Index(s.src[s.pos:], end)
	if i < 0 {
		i = len(s.src) - s.pos
	} else {
		i += len(end)
	}
	s.line += strings.Count(s.src[s.pos:s.pos+i], "\n")
	s.pos += i
}
