package htpasswd

import (
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// Known hashes used across the tests (see hash_test.go for their sources).
const (
	hashBcryptUU  = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW" // "U*U"
	hashSHA1      = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="                            // "password"
	hashAPR1      = "$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K0"                        // "password"
	hashSHA256    = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"    // "Hello world!"
	hashSHA512    = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
	hashDES       = "abJnggxhB/yWI"
	hashMD5Crypt  = "$1$xxxxxxxx$UYCIxa628.9qXjpQCjM4a."
	hashYescrypt  = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"
	hashBcryptLow = "$2y$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
	// Well-formed but slow: parsed, never verified in tests.
	hashBcrypt17   = "$2y$17$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
	hashBcrypt18   = "$2y$18$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
	hashBcrypt31   = "$2y$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
	hashSHA256Max  = "$5$rounds=1000000$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
	hashSHA256Slow = "$5$rounds=1000001$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
	hashSHA512Slow = "$6$rounds=999999999$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
)

var parseCases = []struct {
	name      string
	in        string
	wantUsers []string
	wantErr   string
}{
	{name: "empty", in: ""},
	{name: "comments and blanks", in: "# users\n\n   \n\t# indented comment\n"},
	{name: "one user", in: "alice:" + hashBcryptUU + "\n", wantUsers: []string{"alice"}},
	{name: "no final newline", in: "alice:" + hashBcryptUU, wantUsers: []string{"alice"}},
	{name: "CRLF", in: "alice:" + hashSHA1 + "\r\nbob:" + hashAPR1 + "\r\n", wantUsers: []string{"alice", "bob"}},
	{name: "trailing blanks", in: "alice:" + hashSHA1 + " \t\r\n", wantUsers: []string{"alice"}},
	{name: "byte order mark", in: "\ufeffalice:" + hashSHA1 + "\n", wantUsers: []string{"alice"}},
	{name: "every format", in: "a:" + hashBcryptUU + "\nb:" + hashAPR1 + "\nc:" + hashSHA1 + "\nd:" + hashSHA256 + "\ne:" + hashSHA512 + "\n",
		wantUsers: []string{"a", "b", "c", "d", "e"}},
	{name: "users sorted", in: "zed:" + hashSHA1 + "\nAnn:" + hashSHA1 + "\nbob:" + hashSHA1 + "\n", wantUsers: []string{"Ann", "bob", "zed"}},
	{name: "unicode user", in: "jürgen@example.com:" + hashSHA1 + "\n", wantUsers: []string{"jürgen@example.com"}},
	{name: "case-sensitive users", in: "alice:" + hashSHA1 + "\nAlice:" + hashSHA1 + "\n", wantUsers: []string{"Alice", "alice"}},

	{name: "no colon", in: "# c\nalice\n", wantErr: "t.htpasswd:2: missing ':' between user and hash"},
	{name: "password-like line without colon", in: "hunter2\n", wantErr: "t.htpasswd:1: missing ':' between user and hash"},
	{name: "empty user", in: ":" + hashSHA1 + "\n", wantErr: "t.htpasswd:1: empty user name"},
	{name: "empty hash", in: "alice:\n", wantErr: `t.htpasswd:1: user "alice": empty hash`},
	{name: "blank hash", in: "alice: \n", wantErr: `t.htpasswd:1: user "alice": empty hash`},
	{name: "space in user", in: "al ice:" + hashSHA1, wantErr: `t.htpasswd:1: invalid user name "al ice": contains whitespace`},
	{name: "leading space", in: " alice:" + hashSHA1, wantErr: `t.htpasswd:1: invalid user name " alice": contains whitespace`},
	{name: "tab in user", in: "al\tice:" + hashSHA1, wantErr: `t.htpasswd:1: invalid user name "al\tice": contains whitespace`},
	{name: "control char in user", in: "al\x01ice:" + hashSHA1, wantErr: `t.htpasswd:1: invalid user name "al\x01ice": contains a control character`},
	{name: "DEL in user", in: "al\x7fice:" + hashSHA1, wantErr: `contains a control character`},
	{name: "zero-width space in user", in: "al\u200bice:" + hashSHA1, wantErr: `contains an invisible formatting character`},
	{name: "invalid UTF-8 user", in: "al\xffice:" + hashSHA1, wantErr: `t.htpasswd:1: invalid user name "al\xffice": not valid UTF-8`},
	{name: "user too long", in: strings.Repeat("u", 256) + ":" + hashSHA1, wantErr: "t.htpasswd:1: invalid user name: 256 bytes, longer than 255"},
	{name: "duplicate user", in: "alice:" + hashSHA1 + "\n# x\nalice:" + hashAPR1 + "\n", wantErr: `t.htpasswd:3: duplicate user "alice" (first on line 1)`},
	{name: "extra field", in: "alice:" + hashSHA1 + ":staff\n", wantErr: `t.htpasswd:1: user "alice": unexpected ':' after the hash (extra fields are not supported)`},
	{name: "DES", in: "alice:" + hashDES, wantErr: `t.htpasswd:1: user "alice": DES crypt hashes are not supported (insecure: only 8 password characters count)`},
	{name: "MD5-crypt", in: "alice:" + hashMD5Crypt, wantErr: `t.htpasswd:1: user "alice": MD5-crypt ($1$) hashes are not supported; use bcrypt`},
	{name: "yescrypt", in: "alice:" + hashYescrypt, wantErr: `t.htpasswd:1: user "alice": yescrypt hashes are not supported`},
	{name: "argon2", in: "alice:$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", wantErr: `Argon2 hashes are not supported`},
	{name: "bcrypt 2x", in: "alice:$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", wantErr: `bcrypt $2x$ (crypt_blowfish's buggy-8-bit variant) hashes are not supported`},
	{name: "plain text", in: "alice:hunter2", wantErr: `t.htpasswd:1: user "alice": plain-text password or unknown hash format; plain text is not supported`},
	{name: "bcrypt cost too low", in: "alice:" + hashBcryptLow, wantErr: `t.htpasswd:1: user "alice": bcrypt cost 3 outside 4..31`},
	{name: "bcrypt cost too high", in: "alice:$2y$32$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", wantErr: `bcrypt cost 32 outside 4..31`},
	{name: "bcrypt truncated", in: "alice:" + hashBcryptUU[:59], wantErr: `malformed bcrypt hash: 59 characters, want 60`},
	{name: "bcrypt bad cost", in: "alice:$2y$1x$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", wantErr: `malformed bcrypt hash: want a two-digit cost after $2y$`},
	{name: "bcrypt bad char", in: "alice:$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe=", wantErr: `malformed bcrypt hash: salt and digest must be bcrypt base64`},
	{name: "apr1 no digest", in: "alice:$apr1$xxxxxxxx", wantErr: `malformed apr1 hash: no '$' after the salt`},
	{name: "apr1 long salt", in: "alice:$apr1$xxxxxxxxx$dxHfLAsjHkDRmG83UXe8K0", wantErr: `malformed apr1 hash: salt longer than 8 characters`},
	{name: "apr1 short digest", in: "alice:$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K", wantErr: `malformed apr1 hash: digest must be 22 characters`},
	{name: "SHA bad base64", in: "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g", wantErr: `malformed {SHA} hash: want the base64 of 20 bytes`},
	{name: "SHA wrong length", in: "alice:{SHA}cGFzc3dvcmQ=", wantErr: `malformed {SHA} hash`},
	{name: "SHA-crypt rounds too low", in: "alice:$5$rounds=999$salt$" + strings.Repeat("a", 43), wantErr: `malformed $5$ hash: rounds=999 outside 1000..999999999`},
	{name: "SHA-crypt rounds too high", in: "alice:$6$rounds=1000000000$salt$" + strings.Repeat("a", 86), wantErr: `malformed $6$ hash: rounds=1000000000 outside 1000..999999999`},
	{name: "SHA-crypt rounds leading zero", in: "alice:$5$rounds=05000$salt$" + strings.Repeat("a", 43), wantErr: `malformed $5$ hash: want rounds=N$ with N a decimal number`},
	{name: "SHA-crypt rounds not a number", in: "alice:$5$rounds=abc$salt$" + strings.Repeat("a", 43), wantErr: `want rounds=N$`},
	{name: "SHA-crypt rounds signed", in: "alice:$5$rounds=+5000$salt$" + strings.Repeat("a", 43), wantErr: `want rounds=N$`},
	{name: "SHA-crypt salt too long", in: "alice:$5$saltstringsaltstring$" + strings.Repeat("a", 43), wantErr: `malformed $5$ hash: salt longer than 16 characters`},
	{name: "SHA-crypt no salt end", in: "alice:$6$saltstring", wantErr: `malformed $6$ hash: no '$' after the salt`},
	{name: "SHA-256-crypt wrong digest length", in: "alice:$5$saltstring$" + strings.Repeat("a", 86), wantErr: `malformed $5$ hash: digest must be 43 characters`},
	{name: "bcrypt cost 17: the cap", in: "alice:" + hashBcrypt17, wantUsers: []string{"alice"}},
	{name: "bcrypt cost 18: slow", in: "# c\nalice:" + hashBcrypt18,
		wantErr: `t.htpasswd:2: user "alice": bcrypt cost 18 is above 17: every wrong password would hold a verification slot`},
	{name: "bcrypt cost 31: slow", in: "alice:" + hashBcrypt31, wantErr: `t.htpasswd:1: user "alice": bcrypt cost 31 is above 17`},
	{name: "SHA-crypt 1000000 rounds: the cap", in: "alice:" + hashSHA256Max, wantUsers: []string{"alice"}},
	{name: "SHA-crypt 1000001 rounds: slow", in: "alice:" + hashSHA256Slow, wantErr: `t.htpasswd:1: user "alice": SHA-256-crypt rounds=1000001 is above 1000000`},
	{name: "SHA-crypt 999999999 rounds: slow", in: "alice:" + hashSHA512Slow, wantErr: `SHA-512-crypt rounds=999999999 is above 1000000`},
	{name: "line too long", in: "alice:" + strings.Repeat("a", MaxLineLen) + "\nbob:x\n", wantErr: "t.htpasswd:1: line longer than 8192 bytes\nt.htpasswd:2: user \"bob\": plain-text"},
	{name: "last line too long", in: "alice:" + hashSHA1 + "\n" + strings.Repeat("#", MaxLineLen+1), wantErr: "t.htpasswd:2: line longer than 8192 bytes"},
	{name: "long comment within limit", in: strings.Repeat("#", MaxLineLen) + "\r\nalice:" + hashSHA1, wantUsers: []string{"alice"}},
}

// TestParseSlowHashes pins the caps on slow hashes: they are refused with
// ErrSlowHash and file:line, every one reported, unless AllowSlowHashes,
// which accepts them and reports them with Entry.Slow.
func TestParseSlowHashes(t *testing.T) {
	t.Parallel()
	in := "ok:" + hashBcrypt17 + "\nb18:" + hashBcrypt18 + "\nb31:" + hashBcrypt31 + "\nsha:" + hashSHA256Slow + "\nmax:" + hashSHA256Max + "\n"
	_, err := Parse("t.htpasswd", strings.NewReader(in))
	var errs Errors
	if !errors.As(err, &errs) || !errors.Is(err, ErrSlowHash) {
		t.Fatalf("Parse(slow hashes) = %v, want Errors matching ErrSlowHash", err)
	}
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if !slices.Equal(lines, []int{2, 3, 4}) {
		t.Errorf("Parse(slow hashes) reports lines %v, want [2 3 4]:\n%v", lines, err)
	}
	f, err := ParseWith("t.htpasswd", strings.NewReader(in), ParseConfig{AllowSlowHashes: true})
	if err != nil {
		t.Fatalf("ParseWith(AllowSlowHashes) = %v", err)
	}
	for user, want := range map[string]bool{"ok": false, "b18": true, "b31": true, "sha": true, "max": false} {
		if e, _ := f.Lookup(user); e.Slow() != want {
			t.Errorf("Lookup(%q).Slow() = %v, want %v", user, e.Slow(), want)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse("t.htpasswd", strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %v users, want error %q", tc.in, f.Users(), tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %q, want it to contain %q", tc.in, err, tc.wantErr)
				}
				var errs Errors
				if !errors.As(err, &errs) || len(errs) == 0 {
					t.Fatalf("Parse(%q) error %T is not a non-empty Errors", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tc.in, err)
			}
			if got := f.Users(); !slices.Equal(got, tc.wantUsers) {
				t.Errorf("Parse(%q).Users() = %q, want %q", tc.in, got, tc.wantUsers)
			}
			if f.Len() != len(tc.wantUsers) {
				t.Errorf("Parse(%q).Len() = %d, want %d", tc.in, f.Len(), len(tc.wantUsers))
			}
		})
	}
}

// TestParseErrorListing checks the whole report for a file with many
// problems: every one is reported, in line order, as name:line: message,
// and no hash or password text is echoed.
func TestParseErrorListing(t *testing.T) {
	t.Parallel()
	in := strings.Join([]string{
		"# staging users",            // 1
		"",                           // 2
		"alice:" + hashBcryptUU,      // 3
		"topsecret",                  // 4
		":" + hashSHA1,               // 5
		"bob:",                       // 6
		"car ol:" + hashSHA1,         // 7
		"alice:" + hashAPR1,          // 8
		"dave:" + hashDES,            // 9
		"erin:" + hashMD5Crypt,       // 10
		"frank:hunter2",              // 11
		"grace:" + hashBcryptLow,     // 12
		"heidi:" + hashSHA256 + "\r", // 13: fine
	}, "\n")
	_, err := Parse("staging.htpasswd", strings.NewReader(in))
	want := `staging.htpasswd:4: missing ':' between user and hash
staging.htpasswd:5: empty user name
staging.htpasswd:6: user "bob": empty hash
staging.htpasswd:7: invalid user name "car ol": contains whitespace
staging.htpasswd:8: duplicate user "alice" (first on line 3)
staging.htpasswd:9: user "dave": DES crypt hashes are not supported (insecure: only 8 password characters count); use bcrypt (gatehouse htpasswd -B); also verified: $apr1$, {SHA}, $5$, $6$
staging.htpasswd:10: user "erin": MD5-crypt ($1$) hashes are not supported; use bcrypt (gatehouse htpasswd -B); also verified: $apr1$, {SHA}, $5$, $6$
staging.htpasswd:11: user "frank": plain-text password or unknown hash format; plain text is not supported; use bcrypt (gatehouse htpasswd -B); also verified: $apr1$, {SHA}, $5$, $6$
staging.htpasswd:12: user "grace": bcrypt cost 3 outside 4..31`
	if err == nil || err.Error() != want {
		t.Fatalf("Parse error =\n%v\nwant\n%s", err, want)
	}
	for _, secret := range []string{"topsecret", "hunter2", hashDES} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Parse error echoes %q", secret)
		}
	}
	var first *Error
	if !errors.As(err, &first) || first.Line != 4 || first.File != "staging.htpasswd" {
		t.Errorf("errors.As(err, *Error) = %+v, want the line 4 problem", first)
	}
}

func TestParseTooManyErrors(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("garbage\n", 200)
	_, err := Parse("bin", strings.NewReader(in))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse(garbage) error = %v, want Errors", err)
	}
	if len(errs) != maxErrors+1 {
		t.Fatalf("Parse(garbage) reported %d problems, want %d", len(errs), maxErrors+1)
	}
	if last := errs[len(errs)-1].Error(); last != "bin:50: too many errors" {
		t.Errorf("last problem = %q, want %q", last, "bin:50: too many errors")
	}
}

func TestParseReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("alice:"+hashSHA1+"\n"), iotest.ErrReader(boom))
	_, err := Parse("x", r)
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "read htpasswd x: ") {
		t.Errorf("Parse(failing reader) error = %v, want it to wrap %v", err, boom)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want fs.ErrNotExist", err)
	}
	path := filepath.Join(dir, "users")
	writeTestFile(t, path, "# x\nalice:"+hashSHA1+"\nbob:"+hashAPR1+"\n", 0o600)
	f, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	e, ok := f.Lookup("bob")
	if !ok || e.User != "bob" || e.Hash != hashAPR1 || e.Line != 3 || e.Format() != FormatAPR1 {
		t.Errorf("Lookup(bob) = %+v, %v, want bob's apr1 entry on line 3", e, ok)
	}
	if !e.Verify("password") || e.Verify("Password") {
		t.Errorf("Lookup(bob).Verify: right password refused or wrong one accepted")
	}
	if _, ok := f.Lookup("Bob"); ok {
		t.Errorf("Lookup(Bob) found an entry; user names are case-sensitive")
	}
	writeTestFile(t, path, "alice:secret\n", 0o600)
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+":1: ") {
		t.Errorf("Load(plain text) error = %v, want it to start with %q", err, path+":1: ")
	}
}

func TestUsersIsACopy(t *testing.T) {
	t.Parallel()
	f, err := Parse("x", strings.NewReader("a:"+hashSHA1+"\nb:"+hashSHA1))
	if err != nil {
		t.Fatal(err)
	}
	u := f.Users()
	u[0] = "mallory"
	if got := f.Users(); got[0] != "a" {
		t.Errorf("Users() after changing a returned slice = %q, want it unchanged", got)
	}
}

func TestValidateUser(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, user, wantErr string
	}{
		{name: "plain", user: "alice"},
		{name: "email", user: "alice@example.com"},
		{name: "max length", user: strings.Repeat("x", MaxUserLen)},
		{name: "unicode", user: "zoë"},
		{name: "empty", user: "", wantErr: "invalid user name: empty"},
		{name: "too long", user: strings.Repeat("x", MaxUserLen+1), wantErr: "256 bytes, longer than 255"},
		{name: "colon", user: "a:b", wantErr: `invalid user name "a:b": contains ':'`},
		{name: "space", user: "a b", wantErr: "contains whitespace"},
		{name: "newline", user: "a\nb", wantErr: "contains whitespace"},
		{name: "no-break space", user: "a\u00a0b", wantErr: "contains whitespace"},
		{name: "line separator", user: "a\u2028b", wantErr: "contains whitespace"},
		{name: "NUL", user: "a\x00b", wantErr: "contains a control character"},
		{name: "next line", user: "a\u0085b", wantErr: "contains whitespace"},
		{name: "C1 control", user: "a\u0080b", wantErr: "contains a control character"},
		{name: "escape", user: "a\x1bb", wantErr: "contains a control character"},
		{name: "right-to-left override", user: "a\u202eb", wantErr: "invisible formatting character"},
		{name: "bad UTF-8", user: "a\xc3", wantErr: "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateUser(tc.user)
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("ValidateUser(%q) = %v, want nil", tc.user, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ValidateUser(%q) = %v, want an error containing %q", tc.user, err, tc.wantErr)
			}
			if !errors.Is(err, ErrInvalidUser) {
				t.Errorf("ValidateUser(%q) = %v, want it to wrap ErrInvalidUser", tc.user, err)
			}
		})
	}
}

func TestNewEntry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, user, hash string
		want             Format
		wantErr          string
	}{
		{name: "bcrypt", user: "a", hash: hashBcryptUU, want: FormatBcrypt},
		{name: "apr1", user: "a", hash: hashAPR1, want: FormatAPR1},
		{name: "sha1", user: "a", hash: hashSHA1, want: FormatSHA1},
		{name: "sha256", user: "a", hash: hashSHA256, want: FormatSHA256Crypt},
		{name: "sha512", user: "a", hash: hashSHA512, want: FormatSHA512Crypt},
		{name: "bad user", user: "a b", hash: hashSHA1, wantErr: "contains whitespace"},
		{name: "bad hash", user: "a", hash: "secret", wantErr: `user "a": plain-text password`},
		{name: "empty hash", user: "a", hash: "", wantErr: `user "a": plain-text password`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := NewEntry(tc.user, tc.hash)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewEntry(%q, %q) = %v, want an error containing %q", tc.user, tc.hash, err, tc.wantErr)
				}
				if strings.Contains(tc.wantErr, "user \"a\"") && !errors.Is(err, ErrInvalidHash) {
					t.Errorf("NewEntry(%q, %q) = %v, want it to match ErrInvalidHash", tc.user, tc.hash, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewEntry(%q, %q) = %v", tc.user, tc.hash, err)
			}
			if e.Format() != tc.want || e.User != tc.user || e.Hash != tc.hash || e.Line != 0 {
				t.Errorf("NewEntry(%q, %q) = %+v, want format %v", tc.user, tc.hash, e, tc.want)
			}
		})
	}
}

func TestZeroEntryVerifiesNothing(t *testing.T) {
	t.Parallel()
	var e Entry
	if e.Verify("") || e.Verify("x") {
		t.Error("Entry{}.Verify = true, want false")
	}
	e = Entry{User: "a", Hash: hashSHA1} // not from NewEntry: unparsed
	if e.Verify("password") {
		t.Error("hand-made Entry.Verify(right password) = true, want false")
	}
}
