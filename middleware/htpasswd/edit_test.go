package htpasswd

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeTestFile writes data to path with exactly mode (not masked by the
// umask).
func writeTestFile(t *testing.T, path, data string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkDir fails unless dir holds exactly names: no temporary file left.
func checkDir(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("directory holds %q, want %q", got, names)
	}
}

// Hashes for the editing tests: any valid ones do.
const (
	h1     = hashSHA1
	h2     = hashAPR1
	h3     = hashSHA256
	hNew   = hashBcryptUU
	hOther = hashSHA512
)

func TestSetUser(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		in           string
		user         string
		create       bool
		want         string
		wantReplaced bool
	}{
		{name: "append after comments and blanks", in: "# staging\n\nalice:" + h1 + "\n", user: "bob",
			want: "# staging\n\nalice:" + h1 + "\nbob:" + hNew + "\n"},
		{name: "replace in place", in: "# c\nalice:" + h1 + "\n# mid\nbob:" + h2 + "\n\n", user: "alice",
			want: "# c\nalice:" + hNew + "\n# mid\nbob:" + h2 + "\n\n", wantReplaced: true},
		{name: "replace the last user", in: "alice:" + h1 + "\nbob:" + h2 + "\n", user: "bob",
			want: "alice:" + h1 + "\nbob:" + hNew + "\n", wantReplaced: true},
		{name: "CRLF append", in: "alice:" + h1 + "\r\n", user: "bob",
			want: "alice:" + h1 + "\r\nbob:" + hNew + "\r\n"},
		{name: "CRLF replace", in: "alice:" + h1 + "\r\nbob:" + h2 + "\r\n", user: "alice",
			want: "alice:" + hNew + "\r\nbob:" + h2 + "\r\n", wantReplaced: true},
		{name: "mixed line ends kept; new line like the first", in: "a:" + h1 + "\r\nb:" + h2 + "\n", user: "c",
			want: "a:" + h1 + "\r\nb:" + h2 + "\nc:" + hNew + "\r\n"},
		{name: "no final newline: append", in: "alice:" + h1, user: "bob",
			want: "alice:" + h1 + "\nbob:" + hNew},
		{name: "no final newline: replace", in: "alice:" + h1 + "\nbob:" + h2, user: "bob",
			want: "alice:" + h1 + "\nbob:" + hNew, wantReplaced: true},
		{name: "no final newline, CRLF", in: "alice:" + h1 + "\r\nbob:" + h2, user: "carol",
			want: "alice:" + h1 + "\r\nbob:" + h2 + "\r\ncarol:" + hNew},
		{name: "empty file", in: "", user: "bob", want: "bob:" + hNew + "\n"},
		{name: "only a comment without newline", in: "# users", user: "bob", want: "# users\nbob:" + hNew},
		{name: "duplicates of the user dropped", in: "alice:" + h1 + "\nbob:" + h2 + "\nalice:" + h3 + "\n", user: "alice",
			want: "alice:" + hNew + "\nbob:" + h2 + "\n", wantReplaced: true},
		{name: "others' refused hashes kept", in: "old:" + hashMD5Crypt + "\ndes:" + hashDES + "\nalice:" + h1 + "\n", user: "alice",
			want: "old:" + hashMD5Crypt + "\ndes:" + hashDES + "\nalice:" + hNew + "\n", wantReplaced: true},
		{name: "the user's bad hash replaced", in: "old:" + hashMD5Crypt + "\n", user: "old",
			want: "old:" + hNew + "\n", wantReplaced: true},
		{name: "byte order mark kept", in: "\ufeffalice:" + h1 + "\n", user: "alice",
			want: "\ufeffalice:" + hNew + "\n", wantReplaced: true},
		{name: "odd blank and comment lines kept", in: "  # indented\n\t\n \r\nalice:" + h1 + "  \n#end", user: "alice",
			want: "  # indented\n\t\n \r\nalice:" + hNew + "\n#end", wantReplaced: true},
		{name: "users are case-sensitive", in: "Alice:" + h1 + "\n", user: "alice",
			want: "Alice:" + h1 + "\nalice:" + hNew + "\n"},
		{name: "create replaces everything", in: "# c\nalice:" + h1 + "\nbob:" + h2 + "\n", user: "carol", create: true,
			want: "carol:" + hNew + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "users")
			writeTestFile(t, path, tc.in, 0o600)
			replaced, err := SetUser(path, tc.user, hNew, EditConfig{Create: tc.create})
			if err != nil {
				t.Fatalf("SetUser(%q) = %v", tc.user, err)
			}
			if replaced != tc.wantReplaced {
				t.Errorf("SetUser(%q) replaced = %v, want %v", tc.user, replaced, tc.wantReplaced)
			}
			if got := readTestFile(t, path); got != tc.want {
				t.Errorf("after SetUser(%q) the file is\n%q\nwant\n%q", tc.user, got, tc.want)
			}
			checkDir(t, dir, "users")
		})
	}
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		in        string
		user      string
		want      string
		wantFound bool
	}{
		{name: "middle", in: "# c\nalice:" + h1 + "\n\nbob:" + h2 + "\ncarol:" + h3 + "\n", user: "bob",
			want: "# c\nalice:" + h1 + "\n\ncarol:" + h3 + "\n", wantFound: true},
		{name: "first", in: "alice:" + h1 + "\nbob:" + h2 + "\n", user: "alice",
			want: "bob:" + h2 + "\n", wantFound: true},
		{name: "last without final newline", in: "alice:" + h1 + "\nbob:" + h2, user: "bob",
			want: "alice:" + h1, wantFound: true},
		{name: "CRLF", in: "a:" + h1 + "\r\nb:" + h2 + "\r\n", user: "a",
			want: "b:" + h2 + "\r\n", wantFound: true},
		{name: "duplicates all go", in: "alice:" + h1 + "\nbob:" + h2 + "\nalice:" + h3 + "\n", user: "alice",
			want: "bob:" + h2 + "\n", wantFound: true},
		{name: "only user", in: "# users\nalice:" + h1 + "\n", user: "alice",
			want: "# users\n", wantFound: true},
		{name: "others' refused hashes kept", in: "des:" + hashDES + "\nalice:" + h1 + "\n", user: "alice",
			want: "des:" + hashDES + "\n", wantFound: true},
		{name: "unknown user", in: "alice:" + h1 + "\n", user: "bob",
			want: "alice:" + h1 + "\n"},
		{name: "a comment is not a user", in: "#bob:" + h1 + "\nalice:" + h1 + "\n", user: "#bob",
			want: "#bob:" + h1 + "\nalice:" + h1 + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "users")
			writeTestFile(t, path, tc.in, 0o600)
			before, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			found, err := DeleteUser(path, tc.user, EditConfig{})
			if err != nil {
				t.Fatalf("DeleteUser(%q) = %v", tc.user, err)
			}
			if found != tc.wantFound {
				t.Errorf("DeleteUser(%q) found = %v, want %v", tc.user, found, tc.wantFound)
			}
			if got := readTestFile(t, path); got != tc.want {
				t.Errorf("after DeleteUser(%q) the file is\n%q\nwant\n%q", tc.user, got, tc.want)
			}
			after, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if !found && !os.SameFile(before, after) {
				t.Errorf("DeleteUser(%q) rewrote the file though the user was not in it", tc.user)
			}
			checkDir(t, dir, "users")
		})
	}
}

func TestEditErrors(t *testing.T) {
	t.Parallel()
	const bad = "alice:" + h1 + "\ngarbage\n  :" + h2 + "\nbo b:" + h3 + "\n"
	for _, tc := range []struct {
		name    string
		in      string // "" with noFile: the file does not exist
		noFile  bool
		edit    func(path string) error
		wantErr string
		wantIs  error
	}{
		{name: "set: missing file", noFile: true, wantErr: "set user in", wantIs: fs.ErrNotExist,
			edit: func(p string) error { _, err := SetUser(p, "alice", hNew, EditConfig{}); return err }},
		{name: "delete: missing file", noFile: true, wantErr: "delete user from", wantIs: fs.ErrNotExist,
			edit: func(p string) error { _, err := DeleteUser(p, "alice", EditConfig{}); return err }},
		{name: "set: bad user", in: "alice:" + h1 + "\n", wantErr: `invalid user name "a:b": contains ':'`, wantIs: ErrInvalidUser,
			edit: func(p string) error { _, err := SetUser(p, "a:b", hNew, EditConfig{}); return err }},
		{name: "set: user too long", in: "alice:" + h1 + "\n", wantErr: `256 bytes, longer than 255`, wantIs: ErrInvalidUser,
			edit: func(p string) error { _, err := SetUser(p, strings.Repeat("u", 256), hNew, EditConfig{}); return err }},
		{name: "set: bad hash", in: "alice:" + h1 + "\n", wantErr: `user "bob": plain-text password`, wantIs: ErrInvalidHash,
			edit: func(p string) error { _, err := SetUser(p, "bob", "secret", EditConfig{}); return err }},
		{name: "set: hash with a line break", in: "alice:" + h1 + "\n", wantErr: `user "bob": plain-text password`, wantIs: ErrInvalidHash,
			edit: func(p string) error { _, err := SetUser(p, "bob", h1[:10]+"\r\n"+h1[10:], EditConfig{}); return err }},
		{name: "set: hash with a second entry", in: "alice:" + h1 + "\n", wantErr: `user "bob": unexpected ':' after the hash`, wantIs: ErrInvalidHash,
			edit: func(p string) error { _, err := SetUser(p, "bob", h1+"\nmallory:"+h1, EditConfig{}); return err }},
		{name: "delete: bad user", in: "alice:" + h1 + "\n", wantErr: `contains whitespace`, wantIs: ErrInvalidUser,
			edit: func(p string) error { _, err := DeleteUser(p, "a b", EditConfig{}); return err }},
		{name: "set: malformed lines", in: bad,
			wantErr: "users:2: missing ':' between user and hash\n%s:3: invalid user name \"  \": contains whitespace\n%s:4: invalid user name \"bo b\": contains whitespace",
			edit:    func(p string) error { _, err := SetUser(p, "carol", hNew, EditConfig{}); return err }},
		{name: "delete: malformed lines", in: bad, wantErr: "users:2: missing ':' between user and hash",
			edit: func(p string) error { _, err := DeleteUser(p, "alice", EditConfig{}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "users")
			if !tc.noFile {
				writeTestFile(t, path, tc.in, 0o600)
			}
			err := tc.edit(path)
			want := strings.ReplaceAll(tc.wantErr, "%s", path)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error = %v, want it to contain %q", err, want)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error = %v, want errors.Is %v", err, tc.wantIs)
			}
			if tc.wantIs == nil {
				var errs Errors
				if !errors.As(err, &errs) {
					t.Errorf("error %T is not Errors", err)
				}
			}
			if tc.noFile {
				checkDir(t, dir)
				return
			}
			if got := readTestFile(t, path); got != tc.in {
				t.Errorf("after a failed edit the file is %q, want it untouched: %q", got, tc.in)
			}
			checkDir(t, dir, "users")
		})
	}
}

func TestSetUserNotARegularFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := SetUser(dir, "alice", hNew, EditConfig{Create: true})
	if err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("SetUser(directory) = %v, want a not-a-regular-file error", err)
	}
}

func TestSetUserCreateMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "new.htpasswd")
	if _, err := SetUser(path, "alice", hNew, EditConfig{Create: true}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("new file mode = %v, want 0640", st.Mode().Perm())
	}
	f, err := Load(path)
	if err != nil || f.Len() != 1 {
		t.Fatalf("Load(new file) = %v, %v", f, err)
	}
	checkDir(t, dir, "new.htpasswd")
}

func TestEditKeepsMode(t *testing.T) {
	t.Parallel()
	for _, mode := range []fs.FileMode{0o600, 0o640, 0o644, 0o660} {
		dir := t.TempDir()
		path := filepath.Join(dir, "users")
		writeTestFile(t, path, "alice:"+h1+"\n", mode)
		for _, edit := range []func() error{
			func() error { _, err := SetUser(path, "bob", hNew, EditConfig{}); return err },
			func() error { _, err := SetUser(path, "alice", hNew, EditConfig{}); return err },
			func() error { _, err := DeleteUser(path, "bob", EditConfig{}); return err },
			func() error { _, err := SetUser(path, "carol", hNew, EditConfig{Create: true}); return err },
		} {
			if err := edit(); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != mode {
				t.Errorf("mode after an edit = %v, want %v", st.Mode().Perm(), mode)
			}
		}
		checkDir(t, dir, "users")
	}
}

// TestEditThroughSymlink: with FollowSymlinks the link's target is edited
// and the link kept.
func TestEditThroughSymlink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := filepath.Join(dir, "real.htpasswd")
	link := filepath.Join(dir, "link.htpasswd")
	writeTestFile(t, real, "alice:"+h1+"\n", 0o600)
	if err := os.Symlink("real.htpasswd", link); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	follow := EditConfig{FollowSymlinks: true}
	if _, err := SetUser(link, "bob", hNew, follow); err != nil {
		t.Fatal(err)
	}
	if _, err := DeleteUser(link, "alice", follow); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(link)
	if err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("after editing through it, %s is no longer a symlink (%v)", link, err)
	}
	if got := readTestFile(t, real); got != "bob:"+hNew+"\n" {
		t.Errorf("the link's target holds %q, want bob only", got)
	}
	checkDir(t, dir, "link.htpasswd", "real.htpasswd")
}

// TestEditRefusesSymlink pins the O_NOFOLLOW open: without
// FollowSymlinks, every edit of a symlink — to a file, to a missing file
// (with Create), to a non-htpasswd file — fails with ErrSymlink and
// changes neither the link nor its target.
func TestEditRefusesSymlink(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		target string // "" : dangling
		edit   func(link string) error
	}{
		{name: "set", target: "alice:" + h1 + "\n",
			edit: func(p string) error { _, err := SetUser(p, "bob", hNew, EditConfig{}); return err }},
		{name: "set with create", target: "alice:" + h1 + "\n",
			edit: func(p string) error { _, err := SetUser(p, "bob", hNew, EditConfig{Create: true}); return err }},
		{name: "create through a dangling link",
			edit: func(p string) error { _, err := SetUser(p, "bob", hNew, EditConfig{Create: true}); return err }},
		{name: "delete", target: "alice:" + h1 + "\n",
			edit: func(p string) error { _, err := DeleteUser(p, "alice", EditConfig{}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			real := filepath.Join(dir, "real")
			link := filepath.Join(dir, "link")
			names := []string{"link"}
			if tc.target != "" {
				writeTestFile(t, real, tc.target, 0o600)
				names = append(names, "real")
			}
			if err := os.Symlink("real", link); err != nil {
				t.Fatalf("symlink: %v", err)
			}
			err := tc.edit(link)
			if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), link) {
				t.Fatalf("edit through a symlink: error = %v, want ErrSymlink naming %s", err, link)
			}
			if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("%s is no longer a symlink (%v)", link, err)
			}
			if tc.target != "" {
				if got := readTestFile(t, real); got != tc.target {
					t.Errorf("target = %q, want it untouched: %q", got, tc.target)
				}
			}
			checkDir(t, dir, names...)
		})
	}
}

// TestEditRefusesOtherFiles: a file whose lines are not
// htpasswd entries (YAML, /etc/passwd, a plain-text password) is neither
// appended to, nor edited, nor replaced by Create; empty files and real
// htpasswd files, including entries gatehouse recognises but refuses to
// load, are edited.
func TestEditRefusesOtherFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		create  bool
		wantErr string // "" : the edit succeeds
	}{
		{name: "yaml", in: "listen: :443\nhosts:\n", wantErr: `users:1: user "listen": not an htpasswd entry`},
		{name: "yaml with create", in: "key: value\n", create: true, wantErr: `users:1: user "key": not an htpasswd entry`},
		{name: "passwd", in: "root:x:0:0:root:/root:/bin/bash\n", wantErr: `users:1: user "root": not an htpasswd entry`},
		{name: "passwd with create", in: "root:x:0:0:root:/root:/bin/bash\n", create: true, wantErr: `not an htpasswd entry`},
		{name: "plain-text password", in: "alice:" + h1 + "\nbob:hunter2\n", wantErr: `users:2: user "bob": not an htpasswd entry`},
		{name: "prose", in: "Dear diary,\n", create: true, wantErr: "users:1: missing ':' between user and hash"},
		{name: "empty file with create", in: "", create: true},
		{name: "empty file", in: ""},
		{name: "comments only with create", in: "# users\n\n", create: true},
		{name: "htpasswd with create", in: "alice:" + h1 + "\n", create: true},
		{name: "refused schemes kept", in: "des:" + hashDES + "\nmd5:" + hashMD5Crypt + "\nslow:" + hashBcrypt31 + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "users")
			writeTestFile(t, path, tc.in, 0o600)
			_, err := SetUser(path, "carol", hNew, EditConfig{Create: tc.create})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("SetUser on %q = %v, want success", tc.in, err)
				}
				return
			}
			var errs Errors
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &errs) {
				t.Fatalf("SetUser on %q = %v, want Errors containing %q", tc.in, err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "/bin/bash") {
				t.Errorf("error %q echoes the line", err)
			}
			if got := readTestFile(t, path); got != tc.in {
				t.Errorf("after a refused edit the file is %q, want it untouched: %q", got, tc.in)
			}
			checkDir(t, dir, "users")
		})
	}
}

// TestEditedFileLoads checks a round of edits against the loader: every
// entry SetUser writes loads and verifies.
func TestEditedFileLoads(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	hashes := map[string]string{"alice": hashBcryptUU, "bob": hashAPR1, "carol": hashSHA256}
	passwords := map[string]string{"alice": "U*U", "bob": "password", "carol": "Hello world!"}
	create := true
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, err := SetUser(path, u, hashes[u], EditConfig{Create: create}); err != nil {
			t.Fatal(err)
		}
		create = false
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for u, pw := range passwords {
		e, ok := f.Lookup(u)
		if !ok || !e.Verify(pw) {
			t.Errorf("Lookup(%q) = %v and Verify(%q) failed", u, ok, pw)
		}
	}
}
