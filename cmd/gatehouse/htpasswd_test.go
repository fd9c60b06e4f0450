package main

import (
	"bytes"
	"errors"
	"gatehouse/rules/testenv"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gatehouse/middleware/htpasswd"
)

// runHtpasswd calls htpasswdCmd with args, "FILE" in them replaced by
// path, and returns its exit status and output.
func runHtpasswd(path, stdin string, args ...string) (code int, stdout, stderr string) {
	args = append([]string(nil), args...)
	for i, a := range args {
		if a == "FILE" {
			args[i] = path
		}
	}
	var out, errOut bytes.Buffer
	code = htpasswdCmd(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// wantPasswords checks that the file at path loads and that each user's
// password verifies.
func wantPasswords(users map[string]string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		t.Helper()
		f, err := htpasswd.Load(path)
		if err != nil {
			t.Fatalf("Load(%s): %v", path, err)
		}
		if f.Len() != len(users) {
			t.Errorf("file has users %q, want %d", f.Users(), len(users))
		}
		for u, pw := range users {
			e, ok := f.Lookup(u)
			// The empty password never verifies: check the
			// hash was made from it instead.
			if !ok || (pw != "" && !e.Verify(pw)) || (pw == "" && !e.EmptyPassword()) {
				t.Errorf("user %q: found %v, but password %q does not verify", u, ok, pw)
			}
		}
	}
}

// wantContent checks the file's exact bytes.
func wantContent(re string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(re).Match(b) {
			t.Errorf("file holds %q, want a match for %q", b, re)
		}
	}
}

// noFile checks that the command did not create the file.
func noFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat(%s) = %v, want the file not created", path, err)
	}
}

const (
	// Known hashes: "password" in {SHA}; "U*U" in bcrypt at cost 5.
	sha1Password  = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="
	bcryptUU      = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
	alicePassword = "alice:" + sha1Password + "\n"
)

func TestHtpasswdCmd(t *testing.T) {
	t.Parallel()
	bcrypt := func(cost string) string { return `\$2y\$` + cost + `\$[./A-Za-z0-9]{53}` }
	for _, tc := range []struct {
		name       string
		file       *string // initial content; nil: no file
		args       []string
		stdin      string
		wantCode   int
		wantStdout string // regexp for the whole of stdout
		wantStderr string // substring of stderr; "" means stderr is empty
		check      func(t *testing.T, path string)
	}{
		// Creating and updating files.
		{name: "-cb creates with bcrypt cost 10", args: []string{"-cb", "FILE", "alice", "s3cret"},
			wantStderr: "Adding password for user alice\n",
			check: func(t *testing.T, p string) {
				wantContent(`^alice:`+bcrypt("10")+`\n$`)(t, p)
				wantPasswords(map[string]string{"alice": "s3cret"})(t, p)
			}},
		{name: "-c replaces an existing file", file: ptr("# old\nbob:" + sha1Password + "\n"), args: []string{"-cbC", "4", "FILE", "alice", "pw"},
			wantStderr: "Adding password for user alice\n", check: wantPasswords(map[string]string{"alice": "pw"})},
		{name: "-b adds, keeping the rest", file: ptr("# staff\n\n" + alicePassword), args: []string{"-bC4", "FILE", "bob", "pw"},
			wantStderr: "Adding password for user bob\n",
			check:      wantContent(`^# staff\n\nalice:` + regexp.QuoteMeta(sha1Password) + `\nbob:` + bcrypt("04") + `\n$`)},
		{name: "-b updates in place", file: ptr("# staff\n" + alicePassword + "bob:" + bcryptUU + "\n"), args: []string{"-b", "-C", "4", "FILE", "alice", "new"},
			wantStderr: "Updating password for user alice\n",
			check:      wantContent(`^# staff\nalice:` + bcrypt("04") + `\nbob:` + regexp.QuoteMeta(bcryptUU) + `\n$`)},
		{name: "-b needs an existing file", args: []string{"-b", "FILE", "alice", "pw"},
			wantCode: 1, wantStderr: "cannot modify file FILE; use '-c' to create it", check: noFile},
		{name: "-m", args: []string{"-cbm", "FILE", "alice", "pw"}, wantStderr: "Adding password for user alice\n",
			check: func(t *testing.T, p string) {
				wantContent(`^alice:\$apr1\$`)(t, p)
				wantPasswords(map[string]string{"alice": "pw"})(t, p)
			}},
		{name: "-2 -r", args: []string{"-cb2", "-r", "1000", "FILE", "alice", "pw"}, wantStderr: "Adding",
			check: func(t *testing.T, p string) {
				wantContent(`^alice:\$5\$rounds=1000\$`)(t, p)
				wantPasswords(map[string]string{"alice": "pw"})(t, p)
			}},
		{name: "-5", args: []string{"-c5b", "FILE", "alice", "pw"}, wantStderr: "Adding",
			check: func(t *testing.T, p string) {
				wantContent(`^alice:\$6\$[^$]{16}\$`)(t, p)
				wantPasswords(map[string]string{"alice": "pw"})(t, p)
			}},
		{name: "the file keeps a refused entry, with a warning", file: ptr("old:$1$xxxxxxxx$UYCIxa628.9qXjpQCjM4a.\n"), args: []string{"-bm", "FILE", "alice", "pw"},
			wantStderr: "Adding password for user alice\ngatehouse htpasswd: warning: gatehouse will not load FILE:\nFILE:1: user \"old\": MD5-crypt ($1$) hashes are not supported"},
		{name: "fixing the refused entry", file: ptr("old:$1$xxxxxxxx$UYCIxa628.9qXjpQCjM4a.\n"), args: []string{"-bC4", "FILE", "old", "pw"},
			wantStderr: "Updating password for user old\n", check: wantPasswords(map[string]string{"old": "pw"})},

		// -n: print instead of writing.
		{name: "-nb bcrypt", args: []string{"-nbB", "-C", "4", "alice", "pw"}, wantStdout: `^alice:` + bcrypt("04") + `\n$`},
		{name: "-nbC5 attached value", args: []string{"-nbC5", "alice", "pw"}, wantStdout: `^alice:` + bcrypt("05") + `\n$`},
		{name: "-nb default cost", args: []string{"-nb", "alice", "pw"}, wantStdout: `^alice:` + bcrypt("10") + `\n$`},
		{name: "-nbm", args: []string{"-nbm", "alice", "pw"}, wantStdout: `^alice:\$apr1\$[./0-9A-Za-z]{8}\$[./0-9A-Za-z]{22}\n$`},
		{name: "-nbs warns", args: []string{"-nbs", "alice", "password"}, wantStdout: `^alice:` + regexp.QuoteMeta(sha1Password) + `\n$`,
			wantStderr: "warning: {SHA} is unsalted SHA-1"},
		{name: "-nb2", args: []string{"-nb2", "alice", "pw"}, wantStdout: `^alice:\$5\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{43}\n$`},
		{name: "-nb5 -r", args: []string{"-n", "-b", "-5", "-r", "6000", "alice", "pw"}, wantStdout: `^alice:\$6\$rounds=6000\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}\n$`},
		{name: "-n prompts on stdin", args: []string{"-nC4", "alice"}, stdin: "pw\npw\n", wantStdout: `^alice:` + bcrypt("04") + `\n$`},
		{name: "-- ends the options", args: []string{"-nbC4", "--", "-alice", "-pw"}, wantStdout: `^-alice:` + bcrypt("04") + `\n$`},

		// Password input.
		{name: "-i reads one line", args: []string{"-ciC4", "FILE", "alice"}, stdin: "from stdin\nignored\n",
			wantStderr: "Adding", check: wantPasswords(map[string]string{"alice": "from stdin"})},
		{name: "-i CRLF", args: []string{"-ciC4", "FILE", "alice"}, stdin: "pw\r\n",
			wantStderr: "Adding", check: wantPasswords(map[string]string{"alice": "pw"})},
		{name: "-i without a line end", args: []string{"-ciC4", "FILE", "alice"}, stdin: "pw",
			wantStderr: "Adding", check: wantPasswords(map[string]string{"alice": "pw"})},
		{name: "-i empty input", args: []string{"-ci", "FILE", "alice"}, stdin: "",
			wantCode: 1, wantStderr: "read password: no password on standard input", check: noFile},
		{name: "-i too long", args: []string{"-ci5", "FILE", "alice"}, stdin: strings.Repeat("x", 2000) + "\n",
			wantCode: 5, wantStderr: "password too long (> 1024 bytes)", check: noFile},
		{name: "typed twice", args: []string{"-cC4", "FILE", "alice"}, stdin: "pw\npw\n",
			wantStderr: "Adding", check: wantPasswords(map[string]string{"alice": "pw"})},
		{name: "typed twice, differently", args: []string{"-c", "FILE", "alice"}, stdin: "pw\npx\n",
			wantCode: 3, wantStderr: "gatehouse htpasswd: password verification error\n", check: noFile},
		{name: "typed once", args: []string{"-c", "FILE", "alice"}, stdin: "pw\n",
			wantCode: 1, wantStderr: "no password on standard input", check: noFile},
		{name: "empty password warns", args: []string{"-cbC4", "FILE", "alice", ""},
			wantStderr: "warning: the password is empty; the gateway refuses empty passwords, so alice cannot log in",
			check:      wantPasswords(map[string]string{"alice": ""})},
		{name: "-v of an empty password fails", file: ptr("nopw:{SHA}2jmj7l5rSw0yVb/vlWAYkK/YBwk=\n"), args: []string{"-vb", "FILE", "nopw", ""},
			wantCode: 3, wantStderr: "password verification failed"},
		{name: "bcrypt password too long", args: []string{"-cb", "FILE", "alice", strings.Repeat("x", 73)},
			wantCode: 5, wantStderr: "password too long (> 72 bytes); bcrypt ignores the rest; use -5", check: noFile},
		{name: "73 bytes fine for -5", args: []string{"-cb5", "FILE", "alice", strings.Repeat("x", 73)},
			wantStderr: "Adding", check: wantPasswords(map[string]string{"alice": strings.Repeat("x", 73)})},
		{name: "-5 password too long", args: []string{"-cb5", "FILE", "alice", strings.Repeat("x", 1025)},
			wantCode: 5, wantStderr: "password too long (> 1024 bytes)\n", check: noFile},

		// -D.
		{name: "-D", file: ptr("# c\n" + alicePassword + "bob:" + bcryptUU + "\n"), args: []string{"-D", "FILE", "alice"},
			wantStderr: "Deleting password for user alice\n", check: wantContent(`^# c\nbob:` + regexp.QuoteMeta(bcryptUU) + `\n$`)},
		{name: "-D unknown user", file: ptr(alicePassword), args: []string{"-D", "FILE", "carol"},
			wantStderr: "User carol not found\n", check: wantContent(`^` + regexp.QuoteMeta(alicePassword) + `$`)},
		{name: "-D missing file", args: []string{"-D", "FILE", "alice"},
			wantCode: 1, wantStderr: "cannot modify file FILE", check: noFile},

		// -v.
		{name: "-vb right", file: ptr(alicePassword), args: []string{"-vb", "FILE", "alice", "password"},
			wantStderr: "Password for user alice correct.\n"},
		{name: "-vb wrong", file: ptr(alicePassword), args: []string{"-vb", "FILE", "alice", "Password"},
			wantCode: 3, wantStderr: "gatehouse htpasswd: password verification failed\n"},
		{name: "-vb unknown user", file: ptr(alicePassword), args: []string{"-vb", "FILE", "bob", "password"},
			wantCode: 6, wantStderr: "User bob not found\n"},
		{name: "-v prompts", file: ptr("bob:" + bcryptUU + "\n"), args: []string{"-v", "FILE", "bob"}, stdin: "U*U\n",
			wantStderr: "Password for user bob correct.\n"},
		{name: "-vi", file: ptr("bob:" + bcryptUU + "\n"), args: []string{"-vi", "FILE", "bob"}, stdin: "U*U",
			wantStderr: "Password for user bob correct.\n"},
		{name: "-v missing file", args: []string{"-vb", "FILE", "alice", "pw"},
			wantCode: 1, wantStderr: "no such file or directory", check: noFile},
		{name: "-v refused file", file: ptr(alicePassword + "bob:hunter2\n"), args: []string{"-vb", "FILE", "alice", "password"},
			wantCode: 7, wantStderr: "FILE:2: user \"bob\": plain-text password or unknown hash format"},

		// Files that are not htpasswd files.
		{name: "set in a malformed file", file: ptr("garbage\n" + alicePassword), args: []string{"-bC4", "FILE", "bob", "pw"},
			wantCode: 7, wantStderr: "FILE:1: missing ':' between user and hash\ngatehouse htpasswd: FILE is not a valid htpasswd file\n",
			check: wantContent(`^garbage\n` + regexp.QuoteMeta(alicePassword) + `$`)},
		{name: "delete in a malformed file", file: ptr(alicePassword + "x y:z\n"), args: []string{"-D", "FILE", "alice"},
			wantCode: 7, wantStderr: "FILE:2: invalid user name \"x y\": contains whitespace"},
		// lines of the shape user:something are not enough.
		{name: "-b on a YAML file", file: ptr("listen: :443\nhosts: []\n"), args: []string{"-bC4", "FILE", "bob", "pw"},
			wantCode: 7, wantStderr: "FILE:1: user \"listen\": not an htpasswd entry: the field after ':' is not a password hash\nFILE:2: user \"hosts\": not an htpasswd entry",
			check: wantContent(`^listen: :443\nhosts: \[\]\n$`)},
		{name: "-c on a YAML file", file: ptr("listen: :443\n"), args: []string{"-cbC4", "FILE", "bob", "pw"},
			wantCode: 7, wantStderr: "gatehouse htpasswd: FILE is not a valid htpasswd file", check: wantContent(`^listen: :443\n$`)},
		{name: "-c on /etc/passwd", file: ptr("root:x:0:0:root:/root:/bin/bash\n"), args: []string{"-cbC4", "FILE", "bob", "pw"},
			wantCode: 7, wantStderr: "FILE:1: user \"root\": not an htpasswd entry", check: wantContent(`^root:x:0:0:root:/root:/bin/bash\n$`)},
		{name: "-D in a file with a plain-text password", file: ptr(alicePassword + "bob:hunter2\n"), args: []string{"-D", "FILE", "alice"},
			wantCode: 7, wantStderr: "FILE:2: user \"bob\": not an htpasswd entry", check: wantContent(`hunter2`)},
		{name: "-c on an empty file", file: ptr(""), args: []string{"-cbC4", "FILE", "bob", "pw"},
			wantStderr: "Adding password for user bob\n", check: wantPasswords(map[string]string{"bob": "pw"})},

		// User names.
		{name: "user with a colon", args: []string{"-nb", "a:b", "pw"}, wantCode: 6, wantStderr: `invalid user name "a:b": contains ':'`},
		{name: "user with a space", args: []string{"-cb", "FILE", "a b", "pw"}, wantCode: 6, wantStderr: "contains whitespace", check: noFile},
		{name: "user too long", args: []string{"-nb", strings.Repeat("u", 256), "pw"}, wantCode: 5, wantStderr: "user name too long (> 255 bytes)"},

		// Usage.
		{name: "no arguments", args: nil, wantCode: 2, wantStderr: "want 2 arguments after the options, got 0"},
		{name: "help", args: []string{"-h"}, wantStdout: `(?s)^usage: gatehouse htpasswd .*hashed with bcrypt\nby default \(Apache's default is MD5\)`},
		{name: "unknown flag", args: []string{"-x", "FILE", "u"}, wantCode: 2, wantStderr: "unknown option -x"},
		{name: "DES refused", args: []string{"-nbd", "u", "pw"}, wantCode: 2, wantStderr: "-d (DES crypt) is not supported"},
		{name: "plain refused", args: []string{"-cbp", "FILE", "u", "pw"}, wantCode: 2, wantStderr: "-p (plain text) is not supported", check: noFile},
		{name: "-c and -n", args: []string{"-cnb", "u", "pw"}, wantCode: 2, wantStderr: "-c and -n options conflict"},
		{name: "-n and -D", args: []string{"-nD", "u"}, wantCode: 2, wantStderr: "-n and -D options conflict"},
		{name: "-v and -D", args: []string{"-vD", "FILE", "u"}, wantCode: 2, wantStderr: "-v and -D options conflict"},
		{name: "-b and -i", args: []string{"-bi", "FILE", "u", "pw"}, wantCode: 2, wantStderr: "-b and -i options conflict"},
		{name: "two formats", args: []string{"-nbBm", "u", "pw"}, wantCode: 2, wantStderr: "-B and -m options conflict: choose one hash format"},
		{name: "the same format twice", args: []string{"-nbB", "-B", "-C4", "u", "pw"}, wantStdout: `^u:` + bcrypt("04") + `\n$`},
		{name: "cost too low", args: []string{"-nbC", "3", "u", "pw"}, wantCode: 2, wantStderr: `-C: bcrypt cost "3" is not a number from 4 to 17`},
		{name: "cost too high", args: []string{"-nbC18", "u", "pw"}, wantCode: 2, wantStderr: `bcrypt cost "18"`},
		{name: "cost not a number", args: []string{"-nbC", "ten", "u", "pw"}, wantCode: 2, wantStderr: `bcrypt cost "ten"`},
		{name: "cost missing", args: []string{"-nbC"}, wantCode: 2, wantStderr: "-C needs a value"},
		{name: "-C with -m", args: []string{"-nbmC", "5", "u", "pw"}, wantCode: 2, wantStderr: "-C applies to bcrypt (-B) only"},
		{name: "-r without SHA-crypt", args: []string{"-nbr", "5000", "u", "pw"}, wantCode: 2, wantStderr: "-r applies to SHA-crypt (-2, -5) only"},
		{name: "rounds too low", args: []string{"-nb5r", "999", "u", "pw"}, wantCode: 2, wantStderr: `-r: rounds "999" is not a number from 1000 to 1000000`},
		// nothing the gateway would refuse as slow is made.
		{name: "rounds too high", args: []string{"-nb5r", "1000001", "u", "pw"}, wantCode: 2, wantStderr: `-r: rounds "1000001" is not a number from 1000 to 1000000`},
		{name: "--follow with -n", args: []string{"--follow", "-nb", "u", "pw"}, wantCode: 2, wantStderr: "-n and --follow options conflict"},
		{name: "unknown long option", args: []string{"--folow", "-b", "FILE", "u", "pw"}, wantCode: 2, wantStderr: "unknown option --folow"},
		{name: "too many arguments", args: []string{"-nb", "u", "pw", "extra"}, wantCode: 2, wantStderr: "want 2 arguments after the options, got 3"},
		{name: "missing password", args: []string{"-b", "FILE", "u"}, wantCode: 2, wantStderr: "want 3 arguments after the options, got 2"},
		{name: "-D takes no password", args: []string{"-Db", "FILE", "u", "pw"}, wantCode: 2, wantStderr: "-D and -b options conflict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "users.htpasswd")
			if tc.file != nil {
				if err := os.WriteFile(path, []byte(*tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			code, stdout, stderr := runHtpasswd(path, tc.stdin, tc.args...)
			stderr = strings.ReplaceAll(stderr, path, "FILE")
			if code != tc.wantCode {
				t.Errorf("gatehouse htpasswd %q = exit %d, want %d\nstderr: %s", tc.args, code, tc.wantCode, stderr)
			}
			if tc.wantStdout == "" && stdout != "" || tc.wantStdout != "" && !regexp.MustCompile(tc.wantStdout).MatchString(stdout) {
				t.Errorf("gatehouse htpasswd %q stdout = %q, want a match for %q", tc.args, stdout, tc.wantStdout)
			}
			if tc.wantStderr == "" && stderr != "" || !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("gatehouse htpasswd %q stderr = %q, want %q in it", tc.args, stderr, tc.wantStderr)
			}
			if tc.check != nil {
				tc.check(t, path)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestHtpasswdApacheVerifiesOurs writes a file with htpasswdCmd in each
// format and checks it with Apache's `htpasswd -vb` (0: right password,
// 3: wrong).
func TestHtpasswdApacheVerifiesOurs(t *testing.T) {
	t.Parallel()
	apache := testenv.Tool(t, "htpasswd")
	for _, flags := range [][]string{{"-B"}, {"-B", "-C", "4"}, {"-m"}, {"-s"}, {"-2"}, {"-5"}, {"-5", "-r", "1000"}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "users.htpasswd")
			users := map[string]string{"alice": "s3cret", "bob": "pässwörd with spaces", "carol": ""}
			first := "-cb"
			for _, u := range []string{"alice", "bob", "carol"} {
				args := append(append([]string{first}, flags...), path, u, users[u])
				if code, _, stderr := runHtpasswd(path, "", args...); code != 0 {
					t.Fatalf("gatehouse htpasswd %q = exit %d: %s", args, code, stderr)
				}
				first = "-b"
			}
			for u, pw := range users {
				if code := apacheExit(t, apache, "-vb", path, u, pw); code != 0 {
					t.Errorf("htpasswd -vb %s %q = exit %d, want 0", u, pw, code)
				}
				if code := apacheExit(t, apache, "-vb", path, u, pw+"x"); code != 3 {
					t.Errorf("htpasswd -vb %s %q (wrong) = exit %d, want 3", u, pw+"x", code)
				}
			}
		})
	}
}

// TestHtpasswdVerifiesApache checks `gatehouse htpasswd -v` against files
// written by Apache's htpasswd.
func TestHtpasswdVerifiesApache(t *testing.T) {
	t.Parallel()
	apache := testenv.Tool(t, "htpasswd")
	for _, flags := range [][]string{{"-B", "-C", "4"}, {"-m"}, {"-s"}, {"-2"}, {"-5"}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "apache.htpasswd")
			if code := apacheExit(t, apache, append(append([]string{"-cb"}, flags...), path, "alice", "s3cret")...); code != 0 {
				t.Fatalf("htpasswd -cb %q = exit %d", flags, code)
			}
			if code, _, stderr := runHtpasswd(path, "", "-vb", path, "alice", "s3cret"); code != 0 {
				t.Errorf("gatehouse htpasswd -vb (right) = exit %d: %s", code, stderr)
			}
			if code, _, _ := runHtpasswd(path, "", "-vb", path, "alice", "s3creT"); code != 3 {
				t.Errorf("gatehouse htpasswd -vb (wrong) = exit %d, want 3", code)
			}
		})
	}
}

// apacheExit runs Apache's htpasswd and returns its exit status.
func apacheExit(t *testing.T, bin string, args ...string) int {
	t.Helper()
	err := exec.Command(bin, args...).Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	t.Fatalf("htpasswd %q: %v", args, err)
	return -1
}

// TestHtpasswdSymlink pins the O_NOFOLLOW open: every edit through a
// symlink (-b, -c, -D, also to a missing target) is refused, exit 1, and
// neither the link nor its target changes; --follow edits the target and
// keeps the link.
func TestHtpasswdSymlink(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		target   string // initial content; "" : dangling link
		args     []string
		wantCode int
		want     string // the target's content afterwards (regexp)
	}{
		{name: "-b refused", target: alicePassword, args: []string{"-bC4", "LINK", "bob", "pw"}, wantCode: 1, want: "^" + regexp.QuoteMeta(alicePassword) + "$"},
		{name: "-c refused", target: alicePassword, args: []string{"-cbC4", "LINK", "bob", "pw"}, wantCode: 1, want: "^" + regexp.QuoteMeta(alicePassword) + "$"},
		{name: "-c through a dangling link refused", args: []string{"-cbC4", "LINK", "bob", "pw"}, wantCode: 1},
		{name: "-D refused", target: alicePassword, args: []string{"-D", "LINK", "alice"}, wantCode: 1, want: "^" + regexp.QuoteMeta(alicePassword) + "$"},
		{name: "--follow -b", target: alicePassword, args: []string{"--follow", "-bC4", "LINK", "bob", "pw"}, want: `^alice:.*\nbob:\$2y\$04\$`},
		{name: "--follow -D", target: alicePassword, args: []string{"--follow", "-D", "LINK", "alice"}, want: `^$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			target, link := filepath.Join(dir, "real"), filepath.Join(dir, "link")
			if tc.target != "" {
				if err := os.WriteFile(target, []byte(tc.target), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("real", link); err != nil {
				t.Fatal(err)
			}
			args := append([]string(nil), tc.args...)
			for i, a := range args {
				if a == "LINK" {
					args[i] = link
				}
			}
			code, _, stderr := runHtpasswd("", "", args...)
			if code != tc.wantCode {
				t.Fatalf("gatehouse htpasswd %q = exit %d, want %d\nstderr: %s", args, code, tc.wantCode, stderr)
			}
			if tc.wantCode != 0 && !strings.Contains(stderr, link+" is a symbolic link; refusing to follow it (use --follow") {
				t.Errorf("stderr = %q, want the symlink refusal naming %s", stderr, link)
			}
			if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("%s is no longer a symlink (%v)", link, err)
			}
			if tc.target == "" {
				noFile(t, target)
				return
			}
			wantContent(tc.want)(t, target)
		})
	}
}
