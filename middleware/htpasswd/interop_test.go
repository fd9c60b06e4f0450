package htpasswd

import (
	"errors"
	"fmt"
	"gatehouse/rules/testenv"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// runTool runs a program and returns its trimmed stdout, failing the test
// on a non-zero exit.
func runTool(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v: %s", name, args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// interopPasswords exercise byte handling: UTF-8, spaces, a colon, the
// empty password and block-size boundaries.
var interopPasswords = []string{
	"s3cret",
	"pässwörd ü",
	"with space: and colon",
	"",
	strings.Repeat("x", 64),
	"0123456789abcdefghijklmnopqrstuvwxyz!@#$%^&*()",
}

// TestInteropApacheFiles loads files written by Apache's htpasswd in every
// format gatehouse verifies and checks each password.
func TestInteropApacheFiles(t *testing.T) {
	t.Parallel()
	htpasswdBin := testenv.Tool(t, "htpasswd")
	for _, tc := range []struct {
		name   string
		flags  []string
		long   bool // also a password past bcrypt's 72 bytes
		format Format
	}{
		{name: "bcrypt cost 5", flags: []string{"-B", "-C", "5"}, long: true, format: FormatBcrypt},
		{name: "bcrypt cost 4", flags: []string{"-B", "-C", "4"}, format: FormatBcrypt},
		{name: "apr1", flags: []string{"-m"}, long: true, format: FormatAPR1},
		{name: "SHA", flags: []string{"-s"}, long: true, format: FormatSHA1},
		{name: "SHA-256-crypt", flags: []string{"-2"}, long: true, format: FormatSHA256Crypt},
		{name: "SHA-512-crypt", flags: []string{"-5"}, long: true, format: FormatSHA512Crypt},
		{name: "SHA-256-crypt rounds", flags: []string{"-2", "-r", "1000"}, format: FormatSHA256Crypt},
		{name: "SHA-512-crypt rounds", flags: []string{"-5", "-r", "12345"}, format: FormatSHA512Crypt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "apache.htpasswd")
			passwords := interopPasswords
			if tc.long {
				passwords = append(passwords[:len(passwords):len(passwords)], strings.Repeat("long", 50))
			}
			for i, pw := range passwords {
				args := append([]string{"-b"}, tc.flags...)
				if i == 0 {
					args[0] = "-cb"
				}
				runTool(t, "", htpasswdBin, append(args, path, fmt.Sprintf("user%d", i), pw)...)
			}
			f, err := Load(path)
			if err != nil {
				t.Fatalf("Load(file from Apache htpasswd %q): %v\n%s", tc.flags, err, readTestFile(t, path))
			}
			for i, pw := range passwords {
				user := fmt.Sprintf("user%d", i)
				e, ok := f.Lookup(user)
				if !ok {
					t.Fatalf("Lookup(%q) found nothing", user)
				}
				if e.Format() != tc.format {
					t.Errorf("%s: format %v, want %v", e.Hash, e.Format(), tc.format)
				}
				// Apache's htpasswd -b makes entries from the empty
				// password; they must load but never log in.
				if got := e.Verify(pw); got != (pw != "") {
					t.Errorf("Verify(%q) against Apache's %q = %v, want %v", pw, e.Hash, got, pw != "")
				}
				if got := e.EmptyPassword(); got != (pw == "") {
					t.Errorf("EmptyPassword() of Apache's hash of %q = %v, want %v", pw, got, pw == "")
				}
				if e.Verify("!" + pw) { // at the front: bcrypt ignores bytes past 72
					t.Errorf("Verify(%q) against Apache's %q = true, want false", "!"+pw, e.Hash)
				}
			}
		})
	}
}

// TestInteropApacheVerifiesOurs writes our hashes with SetUser and has
// Apache's `htpasswd -vb` check them: exit 0 for the right password, 3
// for a wrong one.
func TestInteropApacheVerifiesOurs(t *testing.T) {
	t.Parallel()
	htpasswdBin := testenv.Tool(t, "htpasswd")
	for _, tc := range []struct {
		name string
		hash func(string) (string, error)
	}{
		{"bcrypt cost 4", func(p string) (string, error) { return HashBcrypt(p, 4) }},
		{"bcrypt cost 5", func(p string) (string, error) { return HashBcrypt(p, 5) }},
		{"apr1", HashAPR1},
		{"SHA", HashSHA1},
		{"SHA-256-crypt", func(p string) (string, error) { return HashSHA256Crypt(p, 0) }},
		{"SHA-256-crypt rounds=1000", func(p string) (string, error) { return HashSHA256Crypt(p, 1000) }},
		{"SHA-512-crypt", func(p string) (string, error) { return HashSHA512Crypt(p, 0) }},
		{"SHA-512-crypt rounds=7777", func(p string) (string, error) { return HashSHA512Crypt(p, 7777) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "ours.htpasswd")
			for i, pw := range interopPasswords {
				h, err := tc.hash(pw)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := SetUser(path, fmt.Sprintf("user%d", i), h, EditConfig{Create: i == 0}); err != nil {
					t.Fatal(err)
				}
			}
			for i, pw := range interopPasswords {
				user := fmt.Sprintf("user%d", i)
				if code := apacheVerify(t, htpasswdBin, path, user, pw); code != 0 {
					t.Errorf("htpasswd -vb %s %q = exit %d, want 0\n%s", user, pw, code, readTestFile(t, path))
				}
				if code := apacheVerify(t, htpasswdBin, path, user, pw+"!"); code != 3 {
					t.Errorf("htpasswd -vb %s %q (wrong) = exit %d, want 3", user, pw+"!", code)
				}
			}
		})
	}
}

// apacheVerify runs `htpasswd -vb path user password` and returns its exit
// status.
func apacheVerify(t *testing.T, bin, path, user, password string) int {
	t.Helper()
	err := exec.Command(bin, "-vb", path, user, password).Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	t.Fatalf("htpasswd -vb: %v", err)
	return -1
}

// TestInteropMkpasswd checks SHA-crypt against libxcrypt through
// mkpasswd: exact output for fixed salts at every length around the block
// boundaries (differential), and verification of random-salt hashes.
func TestInteropMkpasswd(t *testing.T) {
	t.Parallel()
	mkpasswd := testenv.Tool(t, "mkpasswd")
	for _, method := range []string{"sha-256", "sha-512"} {
		use512 := method == "sha-512"
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200} {
			pw := strings.Repeat("p", n)
			want := runTool(t, pw+"\n", mkpasswd, "-s", "-m", method, "-S", "abcdefgh", "-R", "1000")
			if got := shaCryptString(use512, pw, "abcdefgh", 1000, true); got != want {
				t.Errorf("%s of %d bytes = %q, want mkpasswd's %q", method, n, got, want)
			}
		}
		for _, args := range [][]string{{"-R", "5000"}, nil, {"-R", "1234"}} {
			for _, pw := range interopPasswords {
				h := runTool(t, pw+"\n", mkpasswd, append([]string{"-s", "-m", method}, args...)...)
				e, err := NewEntry("u", h)
				if err != nil {
					t.Fatalf("NewEntry(mkpasswd's %q) = %v", h, err)
				}
				if e.Verify(pw) != (pw != "") || e.Verify(pw+"!") || e.EmptyPassword() != (pw == "") {
					t.Errorf("Verify against mkpasswd's %q: right password %q refused (or empty one accepted) or wrong one accepted", h, pw)
				}
			}
		}
	}
}

// TestInteropOpenSSL checks apr1 and SHA-crypt against `openssl passwd`:
// exact output for given salts, and verification of random-salt hashes.
func TestInteropOpenSSL(t *testing.T) {
	t.Parallel()
	openssl := testenv.Tool(t, "openssl")
	for _, pw := range interopPasswords {
		if pw == "" {
			continue // openssl passwd -stdin reads no password from an empty line
		}
		for _, salt := range []string{"abc", "12345678", "./AZaz09"} {
			want := runTool(t, pw+"\n", openssl, "passwd", "-apr1", "-salt", salt, "-stdin")
			var buf [apr1DigestLen]byte
			if got := "$apr1$" + salt + "$" + string(apr1(buf[:0], pw, salt)); got != want {
				t.Errorf("apr1(%q, %q) = %q, want openssl's %q", pw, salt, got, want)
			}
		}
		for _, flag := range []string{"-apr1", "-5", "-6"} {
			h := runTool(t, pw+"\n", openssl, "passwd", flag, "-stdin")
			e, err := NewEntry("u", h)
			if err != nil {
				t.Fatalf("NewEntry(openssl's %q) = %v", h, err)
			}
			if !e.Verify(pw) || e.Verify(pw+"!") {
				t.Errorf("Verify against openssl's %q: right password %q refused or wrong one accepted", h, pw)
			}
		}
	}
}

// TestInteropApacheSlowHashLimits checks the loader's caps against what
// Apache's htpasswd makes: it refuses bcrypt -C 18 itself (so
// MaxSafeBcryptCost matches it), and its -r 1000001 SHA-crypt entry is
// refused by Load and accepted with AllowSlowHashes, while -r 1000000
// loads by default.
func TestInteropApacheSlowHashLimits(t *testing.T) {
	t.Parallel()
	bin := testenv.Tool(t, "htpasswd")
	cmd := exec.Command(bin, "-nbB", "-C", strconv.Itoa(MaxSafeBcryptCost+1), "u", "pw")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("Apache htpasswd -B -C %d succeeded (%q); MaxSafeBcryptCost no longer matches Apache's limit", MaxSafeBcryptCost+1, out)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		rounds   int
		wantSlow bool
	}{
		{rounds: MaxSafeSHACryptRounds},
		{rounds: MaxSafeSHACryptRounds + 1, wantSlow: true},
	} {
		path := filepath.Join(dir, fmt.Sprintf("r%d", tc.rounds))
		runTool(t, "", bin, "-cb2", "-r", strconv.Itoa(tc.rounds), path, "slow", "pw")
		_, err := Load(path)
		if got := errors.Is(err, ErrSlowHash); got != tc.wantSlow {
			t.Errorf("Load(Apache -2 -r %d) = %v, want ErrSlowHash %v", tc.rounds, err, tc.wantSlow)
		}
		if tc.wantSlow && (err == nil || !strings.Contains(err.Error(), path+":1: ")) {
			t.Errorf("Load(Apache -2 -r %d) = %v, want the error at %s:1", tc.rounds, err, path)
		}
		f, err := LoadWith(path, ParseConfig{AllowSlowHashes: true})
		if err != nil {
			t.Fatalf("LoadWith(AllowSlowHashes) = %v", err)
		}
		if e, _ := f.Lookup("slow"); e.Slow() != tc.wantSlow {
			t.Errorf("rounds=%d: Slow() = %v, want %v", tc.rounds, e.Slow(), tc.wantSlow)
		}
	}
}

// TestInteropApacheEmptyPassword: Apache's htpasswd -b writes an entry for
// the empty password and its -v accepts it; gatehouse loads the file but
// its Verify refuses the empty password.
func TestInteropApacheEmptyPassword(t *testing.T) {
	t.Parallel()
	bin := testenv.Tool(t, "htpasswd")
	path := filepath.Join(t.TempDir(), "empty")
	runTool(t, "", bin, "-cbB", "-C", "4", path, "nopw", "")
	if code := apacheVerify(t, bin, path, "nopw", ""); code != 0 {
		t.Fatalf("Apache htpasswd -vb nopw '' = exit %d, want 0 (Apache accepts it)", code)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := f.Lookup("nopw")
	if e.Verify("") || !e.EmptyPassword() {
		t.Errorf("Apache's empty-password entry: Verify(\"\") = %v, EmptyPassword() = %v, want false, true", e.Verify(""), e.EmptyPassword())
	}
}
