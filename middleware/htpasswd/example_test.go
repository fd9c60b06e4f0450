package htpasswd_test

import (
	"fmt"
	"strings"

	"gatehouse/middleware/htpasswd"
)

// The basic-auth check: unknown users are verified against the file's
// dummy entry, so they take as long as known ones.
func ExampleFile_Dummy() {
	f, err := htpasswd.Parse("staging.htpasswd", strings.NewReader(
		"# staging\nalice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	f.Dummy() // at load time, off the request path

	check := func(user, password string) bool {
		e, ok := f.Lookup(user)
		if !ok {
			e = f.Dummy()
		}
		return e.Verify(password) && ok
	}
	fmt.Println(check("alice", "password"), check("alice", "wrong"), check("mallory", "password"))
	// Output: true false false
}

// Parse reports every problem at once, each with its file and line.
func ExampleParse() {
	_, err := htpasswd.Parse("users.htpasswd", strings.NewReader(
		"alice:$1$xxxxxxxx$UYCIxa628.9qXjpQCjM4a.\nbob\n"))
	fmt.Println(err)
	// Output:
	// users.htpasswd:1: user "alice": MD5-crypt ($1$) hashes are not supported; use bcrypt (gatehouse htpasswd -B); also verified: $apr1$, {SHA}, $5$, $6$
	// users.htpasswd:2: missing ':' between user and hash
}
