package htpasswd

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics; that a parsed file's users
// are sorted, unique and each found by Lookup with the line it came from;
// and that every error is "fuzz.htpasswd:N: message" with N a line of the
// input, in order.
func FuzzParse(f *testing.F) {
	// Valid files and one of every malformed-line class, from the table.
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	// A file with many problems at once.
	f.Add("# c\n\nalice:" + hashBcryptUU + "\nnocolon\n:" + hashSHA1 + "\nbob:\nalice:" + hashAPR1 + "\nx:" + hashDES + "\n")
	// Line-end oddities: lone CRs, CR before LF, blank lines of spaces.
	f.Add("a:" + hashSHA1 + "\r\r\n\r\nb:" + hashSHA1 + "\r")
	// Binary junk and NULs.
	f.Add("\x00\xff\xfe:\x00\n\x1b[31m:" + hashSHA1)
	// Slow hashes around the caps: bcrypt 17/18/31, SHA-crypt
	// 1000000/1000001/999999999 rounds, mixed with a normal entry.
	f.Add("a:" + hashBcrypt17 + "\nb:" + hashBcrypt18 + "\nc:" + hashBcrypt31 + "\n")
	f.Add("a:" + hashSHA256Max + "\nb:" + hashSHA256Slow + "\nc:" + hashSHA512Slow + "\nd:" + hashSHA1 + "\n")
	// An entry made from the empty password: loads.
	f.Add("nopw:{SHA}2jmj7l5rSw0yVb/vlWAYkK/YBwk=\n")
	f.Fuzz(func(t *testing.T, data string) {
		const name = "fuzz.htpasswd"
		file, err := Parse(name, strings.NewReader(data))
		lines := strings.Count(data, "\n") + 1
		// AllowSlowHashes only ever accepts more: what the default
		// accepts it accepts with the same users, and a file refused
		// only for slow hashes loads with it, each of them Slow.
		loose, looseErr := ParseWith(name, strings.NewReader(data), ParseConfig{AllowSlowHashes: true})
		if err == nil && (looseErr != nil || !slices.Equal(loose.Users(), file.Users())) {
			t.Fatalf("Parse accepts %q, ParseWith(AllowSlowHashes) = %v", data, looseErr)
		}
		if err != nil && looseErr == nil {
			var errs Errors
			errors.As(err, &errs)
			for _, e := range errs {
				if !errors.Is(e, ErrSlowHash) {
					t.Fatalf("ParseWith(AllowSlowHashes) accepts %q, but Parse refused it for %v", data, e)
				}
			}
		}
		if looseErr == nil && err != nil {
			slow := 0
			for _, u := range loose.Users() {
				if e, _ := loose.Lookup(u); e.Slow() {
					slow++
				}
			}
			if slow == 0 {
				t.Fatalf("Parse refused %q (%v), no entry is Slow", data, err)
			}
		}
		if err != nil {
			if file != nil {
				t.Fatalf("Parse returned a File with error %v", err)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse error %v (%T) is not a non-empty Errors", err, err)
			}
			prev := 0
			for _, e := range errs {
				prefix := fmt.Sprintf("%s:%d: ", name, e.Line)
				if e.Line < 1 || e.Line > lines || e.Line < prev || !strings.HasPrefix(e.Error(), prefix) || e.Msg == "" {
					t.Fatalf("problem %q: want %q with a line in 1..%d, not before line %d", e.Error(), prefix, lines, prev)
				}
				prev = e.Line
			}
			return
		}
		users := file.Users()
		if len(users) != file.Len() || !slices.IsSorted(users) || len(slices.Compact(slices.Clone(users))) != len(users) {
			t.Fatalf("Users() = %q with Len() %d: want sorted, unique, Len long", users, file.Len())
		}
		src := strings.Split(data, "\n")
		for _, u := range users {
			e, ok := file.Lookup(u)
			if !ok || e.User != u || e.Line < 1 || e.Line > len(src) {
				t.Fatalf("Lookup(%q) = %+v, %v", u, e, ok)
			}
			if line := strings.TrimPrefix(src[e.Line-1], bom); !strings.HasPrefix(line, u+":"+e.Hash) {
				t.Fatalf("Lookup(%q) = line %d, which is %q", u, e.Line, line)
			}
			if again, err := NewEntry(u, e.Hash); err != nil || again.h != e.h {
				t.Fatalf("NewEntry(%q, %q) = %v, %v, want the parsed entry again", u, e.Hash, again, err)
			}
		}
	})
}

// FuzzVerify checks that any hash string and password are handled without
// panic: a refused hash says why (ErrInvalidHash); an accepted one reads
// back the same from a file line and verifies deterministically.
func FuzzVerify(f *testing.F) {
	// Known-good hashes of every format with their passwords.
	for _, v := range verifyVectors {
		f.Add(v.hash, v.password)
	}
	// Refused formats: DES, MD5-crypt, yescrypt, plain text, empty.
	for _, h := range []string{hashDES, hashMD5Crypt, hashYescrypt, "hunter2", ""} {
		f.Add(h, "password")
	}
	// Hashes of the empty password: Verify("") must be false.
	f.Add("{SHA}2jmj7l5rSw0yVb/vlWAYkK/YBwk=", "")
	f.Add("$apr1$12345678$sHuPAw7VA9xjRbJz7zKV7/", "")
	// Slow but valid hashes: NewEntry accepts them, Parse refuses them.
	f.Add(hashBcrypt18, "x")
	f.Add(hashSHA512Slow, "x")
	// Near misses: bad cost, bad rounds, long salt, truncated digest,
	// trailing line break, extra field.
	f.Add(hashBcryptLow, "U*U")
	f.Add("$5$rounds=999$salt$"+strings.Repeat("a", 43), "")
	f.Add("$6$rounds=01000$salt$"+strings.Repeat("a", 86), "")
	f.Add("$apr1$xxxxxxxxx$dxHfLAsjHkDRmG83UXe8K0", "password")
	f.Add(hashSHA256[:len(hashSHA256)-1], "Hello world!")
	f.Add(hashSHA1+"\n", "password")
	f.Add(hashSHA1+":staff", "password")
	f.Fuzz(func(t *testing.T, hash, password string) {
		e, err := NewEntry("u", hash)
		if err != nil {
			if !errors.Is(err, ErrInvalidHash) {
				t.Fatalf("NewEntry(u, %q) = %v, want ErrInvalidHash", hash, err)
			}
			return
		}
		// What NewEntry accepts, SetUser writes; it must read back as is
		// (slow hashes with AllowSlowHashes, and only with it).
		file, err := ParseWith("x", strings.NewReader("u:"+hash+"\n"), ParseConfig{AllowSlowHashes: true})
		if _, strictErr := Parse("x", strings.NewReader("u:"+hash+"\n")); (strictErr != nil) != e.Slow() || (strictErr != nil && !errors.Is(strictErr, ErrSlowHash)) {
			t.Fatalf("Parse of %q = %v, Slow() = %v: want ErrSlowHash exactly for slow hashes", hash, strictErr, e.Slow())
		}
		if err != nil {
			t.Fatalf("NewEntry accepts %q but Parse refuses its line: %v", hash, err)
		}
		if back, _ := file.Lookup("u"); back.Hash != hash || back.h != e.h {
			t.Fatalf("hash %q read back as %q", hash, back.Hash)
		}
		if e.Verify("") {
			t.Fatalf("Verify(\"\") against %q = true: the empty password must never verify", hash)
		}
		if (e.h.format == FormatBcrypt && e.h.cost > 6) || e.h.cost > 20000 {
			return // valid but too slow for a fuzz iteration
		}
		if got, again := e.Verify(password), e.Verify(password); got != again {
			t.Fatalf("Verify(%q) against %q = %v, then %v", password, hash, got, again)
		}
	})
}

// FuzzSHACrypt checks SHA-crypt end to end: a hash of any password at any
// rounds verifies that password and not a neighbour, and matches
// Drepper's front end given the same setting.
func FuzzSHACrypt(f *testing.F) {
	// Drepper's vectors, with small round counts.
	for i, v := range drepperVectors {
		f.Add(v.password, uint16(i*100), strings.HasPrefix(v.setting, "$6$"))
	}
	// The default round count (0), empty and block-sized passwords.
	f.Add("", uint16(0), false)
	f.Add(strings.Repeat("x", 32), uint16(0), false)
	f.Add(strings.Repeat("x", 64), uint16(1), true)
	// Non-ASCII and NUL bytes.
	f.Add("p\x00ss\xffwörd", uint16(7), true)
	f.Fuzz(func(t *testing.T, password string, r uint16, use512 bool) {
		rounds := 0 // the default
		if r != 0 {
			rounds = MinSHACryptRounds + int(r)%1500
		}
		hash, prefix := HashSHA256Crypt, "$5$"
		if use512 {
			hash, prefix = HashSHA512Crypt, "$6$"
		}
		h, err := hash(password, rounds)
		if len(password) > MaxPasswordLen {
			if !errors.Is(err, ErrPasswordTooLong) {
				t.Fatalf("hash of %d bytes = %q, %v, want ErrPasswordTooLong", len(password), h, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewEntry("u", h)
		if err != nil {
			t.Fatalf("NewEntry(%q) = %v", h, err)
		}
		if e.Verify(password) != (password != "") || e.EmptyPassword() != (password == "") {
			t.Fatalf("Verify(%q) against its own hash %q = %v, EmptyPassword() = %v; want the password verified unless empty",
				password, h, e.Verify(password), e.EmptyPassword())
		}
		if e.Verify(password + "\x00") {
			t.Fatalf("Verify(%q + NUL) against %q = true", password, h)
		}
		if password != "" && e.Verify(password[:len(password)-1]) {
			t.Fatalf("Verify(%q) against the hash of %q = true", password[:len(password)-1], password)
		}
		setting := prefix + e.h.salt
		if rounds != 0 {
			setting = prefix + "rounds=" + strconv.Itoa(rounds) + "$" + e.h.salt
		}
		if want := drepperCrypt(setting, password); h != want {
			t.Fatalf("hash = %q, Drepper's front end gives %q", h, want)
		}
	})
}

// FuzzEdit checks that editing never loses a byte: on any file SetUser
// accepts, adding a new user and deleting it again restores the file
// exactly, and the added entry is the only change Parse sees. It drives
// the in-memory editor SetUser and DeleteUser wrap (splitForEdit, set,
// remove, bytes); TestSetUser and TestDeleteUser cover the disk.
func FuzzEdit(f *testing.F) {
	// The editing table's files: comments, CRLF, no final newline, BOM.
	f.Add("# staging\n\nalice:" + h1 + "\n")
	f.Add("a:" + h1 + "\r\nb:" + h2 + "\n")
	f.Add("alice:" + h1 + "\r\nbob:" + h2)
	f.Add("\ufeffalice:" + h1 + "\n")
	f.Add("  # indented\n\t\n \r\nalice:" + h1 + "  \n#end")
	// Degenerate files: empty, a lone line end, a lone CR (which once
	// became half of a CRLF when a line was appended after it).
	f.Add("")
	f.Add("\n")
	f.Add("\r")
	// Entries gatehouse refuses but SetUser keeps.
	f.Add("old:" + hashMD5Crypt + "\ndes:" + hashDES + "\nslow:" + hashBcrypt31 + "\n")
	// Files that are not htpasswd files: refused.
	f.Add("plain:secret\n")
	f.Add("listen: :443\nhosts:\n")
	f.Add("root:x:0:0:root:/root:/bin/bash\n")
	f.Fuzz(func(t *testing.T, data string) {
		const user = "zz-fuzz"
		ef, err := splitForEdit("x", data)
		if _, perr := ParseWith("x", strings.NewReader(data), ParseConfig{AllowSlowHashes: true}); perr == nil && err != nil {
			t.Fatalf("%q loads but cannot be edited: %v", data, err)
		}
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("splitForEdit error %v (%T) is not Errors", err, err)
			}
			return // malformed lines: refused, checked by TestEditErrors
		}
		if slices.ContainsFunc(ef.lines, func(l editLine) bool { return l.user == user }) {
			return
		}
		if ef.set(user, user+":"+hNew) {
			t.Fatalf("set(%s) replaced a line in %q", user, data)
		}
		added := string(ef.bytes())
		if before, err := Parse("x", strings.NewReader(data)); err == nil {
			after, err := Parse("x", strings.NewReader(added))
			if err != nil {
				t.Fatalf("%q parsed before adding %s, %q not after: %v", data, user, added, err)
			}
			if want := slices.Sorted(slices.Values(append(before.Users(), user))); !slices.Equal(after.Users(), want) {
				t.Fatalf("users %q after adding %s to %q", after.Users(), user, before.Users())
			}
		}
		ef, err = splitForEdit("x", added)
		if err != nil {
			t.Fatalf("%q split before adding %s, %q not after: %v", data, user, added, err)
		}
		if !ef.remove(user) {
			t.Fatalf("remove(%s) found nothing in %q", user, added)
		}
		if got := string(ef.bytes()); got != data {
			t.Fatalf("add then delete turned\n%q\ninto\n%q", data, got)
		}
	})
}
