package htpasswd

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

// verifyVectors are known (hash, password) pairs from outside this
// package; every one was also checked with Apache's `htpasswd -vb`.
var verifyVectors = []struct {
	name, hash, password string
}{
	// bcrypt: crypt_blowfish's test vectors (Openwall wrapper.c).
	{"bcrypt U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
	{"bcrypt U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK", "U*U*"},
	{"bcrypt U*U*U", "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a", "U*U*U"},
	{"bcrypt empty", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy", ""},
	{"bcrypt over 72", "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui",
		"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored"},
	{"bcrypt 2y 8-bit", "$2y$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e", "\xff\xff\xa3"},
	{"bcrypt 2b 8-bit", "$2b$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e", "\xff\xff\xa3"},

	// apr1: OpenSSL's test suite (test/recipes/20-test_passwd.t) and
	// `openssl passwd -apr1 -salt S P`.
	{"apr1 openssl suite", "$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K0", "password"},
	{"apr1 short salt", "$apr1$abc$51YrpNiEtKAQp4coykJmu.", "x"},
	{"apr1 long password", "$apr1$rOl.Y/..$Bw/iFurFtcu5zv/RCl./A.", "correct horse battery staple, 40 chars!"},
	{"apr1 empty password", "$apr1$12345678$sHuPAw7VA9xjRbJz7zKV7/", ""},

	// {SHA}: base64(SHA-1(password)).
	{"SHA password", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "password"},
	{"SHA empty", "{SHA}2jmj7l5rSw0yVb/vlWAYkK/YBwk=", ""},

	// SHA-crypt: the outputs of Drepper's test vectors (see
	// drepperVectors), stored as crypt prints them.
	{"sha256 drepper 1", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", "Hello world!"},
	{"sha256 drepper 2", "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA", "Hello world!"},
	{"sha256 drepper 7", "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC", "the minimum number is still observed"},
	{"sha512 drepper 1", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", "Hello world!"},
	{"sha512 drepper 3", "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0", "This is just a test"},
	{"sha512 drepper 4", "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1",
		"a very much longer text to encrypt.  This one even stretches over morethan one line."},
	// `mkpasswd -m sha-512 -R 5000 -S saltsaltsaltsalt pw` (libxcrypt).
	{"sha512 mkpasswd", "$6$rounds=5000$saltsaltsaltsalt$.NRdXhGF7aIqFA0V3MOlnN0T8ecsXGrF.lehfnGm0TwFsNB8VWqs56ykUfVXu8cUgatHwmmkJO5fbOI6RoZAN0", "pw"},
	// `mkpasswd -m sha-256 -S saltsalt pw`.
	{"sha256 mkpasswd", "$5$saltsalt$0rl.MZtoLLPP3X0Rdl8riRnphIcAXJY27/aOAyK2hB5", "pw"},
}

func TestVerifyVectors(t *testing.T) {
	t.Parallel()
	for _, tc := range verifyVectors {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := NewEntry("u", tc.hash)
			if err != nil {
				t.Fatalf("NewEntry(%q) = %v", tc.hash, err)
			}
			// the empty password never verifies, though
			// EmptyPassword recognises its hash.
			if got, want := e.Verify(tc.password), tc.password != ""; got != want {
				t.Errorf("Verify(%q) against %q = %v, want %v", tc.password, tc.hash, got, want)
			}
			if got, want := e.EmptyPassword(), tc.password == ""; got != want {
				t.Errorf("EmptyPassword() of %q = %v, want %v", tc.hash, got, want)
			}
			for _, wrong := range []string{tc.password + "x", "x" + tc.password, strings.ToUpper(tc.password) + "!", ""} {
				if wrong == tc.password {
					continue
				}
				if e.Format() == FormatBcrypt && len(tc.password) >= MaxBcryptPasswordLen && strings.HasPrefix(wrong, tc.password) {
					continue // bcrypt ignores bytes past 72: see TestVerifyBcryptLongPassword
				}
				if e.Verify(wrong) {
					t.Errorf("Verify(%q) against %q = true, want false", wrong, tc.hash)
				}
			}
		})
	}
}

// TestVerifyBcryptLongPassword pins bcrypt's 72-byte limit: later bytes
// are ignored by every implementation (Apache's included), so Verify must
// ignore them too, or such entries made by Apache would never verify.
func TestVerifyBcryptLongPassword(t *testing.T) {
	t.Parallel()
	const hash = "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"
	const pw = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored"
	e, err := NewEntry("u", hash)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, password string
		want           bool
	}{
		{"full", pw, true},
		{"first 72 bytes", pw[:72], true},
		{"other tail", pw[:72] + "anything else", true},
		{"71 bytes", pw[:71], false},
		{"72nd byte changed", pw[:71] + "X", false},
		{"over MaxPasswordLen", pw[:72] + strings.Repeat("x", MaxPasswordLen), false},
	} {
		if got := e.Verify(tc.password); got != tc.want {
			t.Errorf("%s: Verify = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestHashBcrypt(t *testing.T) {
	t.Parallel()
	h, err := HashBcrypt("s3cret", 4)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$2y$04$") || len(h) != bcryptLen {
		t.Errorf("HashBcrypt(s3cret, 4) = %q, want $2y$04$ and %d characters", h, bcryptLen)
	}
	e, err := NewEntry("u", h)
	if err != nil || !e.Verify("s3cret") || e.Verify("s3cret ") {
		t.Errorf("HashBcrypt output %q: NewEntry err %v, or Verify wrong", h, err)
	}
	if h2, _ := HashBcrypt("s3cret", 4); h2 == h {
		t.Errorf("HashBcrypt twice = %q both times, want random salts", h)
	}
	if h, err := HashBcrypt(strings.Repeat("x", 72), 4); err != nil {
		t.Errorf("HashBcrypt(72 bytes) = %q, %v, want a hash", h, err)
	}
	for _, tc := range []struct {
		name     string
		password string
		cost     int
		wantErr  string
	}{
		{"cost too low", "x", 3, "hash bcrypt: cost 3 outside 4..31"},
		{"cost too high", "x", 32, "hash bcrypt: cost 32 outside 4..31"},
		{"negative cost", "x", -1, "cost -1 outside"},
		{"73 bytes", strings.Repeat("x", 73), 4, "hash bcrypt: password too long: 73 bytes, at most 72 allowed"},
	} {
		_, err := HashBcrypt(tc.password, tc.cost)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: HashBcrypt error = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	if _, err := HashBcrypt(strings.Repeat("x", 73), 4); !errors.Is(err, ErrPasswordTooLong) {
		t.Errorf("HashBcrypt(73 bytes) error = %v, want ErrPasswordTooLong", err)
	}
}

func TestHashBcryptDefaultCost(t *testing.T) {
	t.Parallel()
	h, err := HashBcrypt("x", 0)
	if err != nil || !strings.HasPrefix(h, "$2y$10$") {
		t.Errorf("HashBcrypt(x, 0) = %q, %v, want cost %d", h, err, DefaultBcryptCost)
	}
}

func TestHashAPR1(t *testing.T) {
	t.Parallel()
	h, err := HashAPR1("pässword")
	if err != nil {
		t.Fatal(err)
	}
	salt, _, ok := strings.Cut(strings.TrimPrefix(h, "$apr1$"), "$")
	if !strings.HasPrefix(h, "$apr1$") || !ok || len(salt) != apr1SaltLen || !allCryptChars(salt) {
		t.Errorf("HashAPR1 = %q, want $apr1$, an 8-character salt of ./0-9A-Za-z", h)
	}
	e, err := NewEntry("u", h)
	if err != nil || !e.Verify("pässword") || e.Verify("passwort") {
		t.Errorf("HashAPR1 output %q: NewEntry err %v, or Verify wrong", h, err)
	}
	if h2, _ := HashAPR1("pässword"); h2 == h {
		t.Errorf("HashAPR1 twice = %q both times, want random salts", h)
	}
}

func TestHashSHA1(t *testing.T) {
	t.Parallel()
	if h, err := HashSHA1("password"); err != nil || h != hashSHA1 {
		t.Errorf("HashSHA1(password) = %q, %v, want %q", h, err, hashSHA1)
	}
}

func TestHashSHACryptRounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		rounds     int
		wantPrefix string // after $5$ / $6$
	}{
		{"default", 0, ""},
		{"explicit default", DefaultSHACryptRounds, ""},
		{"custom", 6000, "rounds=6000$"},
		{"minimum", 1000, "rounds=1000$"},
		{"too low: clamped as in Drepper's rounds=10 vector", 10, "rounds=1000$"},
		{"negative: clamped", -5, "rounds=1000$"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, hf := range []struct {
				id   string
				hash func(string, int) (string, error)
			}{{"$5$", HashSHA256Crypt}, {"$6$", HashSHA512Crypt}} {
				h, err := hf.hash("pw", tc.rounds)
				if err != nil {
					t.Fatal(err)
				}
				rest, ok := strings.CutPrefix(h, hf.id+tc.wantPrefix)
				salt, _, _ := strings.Cut(rest, "$")
				if !ok || strings.HasPrefix(rest, "rounds=") || len(salt) != shaSaltLen || !allCryptChars(salt) {
					t.Errorf("Hash%sCrypt(pw, %d) = %q, want %s%s and a 16-character salt", hf.id, tc.rounds, h, hf.id, tc.wantPrefix)
				}
				e, err := NewEntry("u", h)
				if err != nil || !e.Verify("pw") || e.Verify("pW") {
					t.Errorf("Hash%sCrypt output %q: NewEntry err %v, or Verify wrong", hf.id, h, err)
				}
			}
		})
	}
	// Hashing at the top of the range takes minutes; check the arithmetic.
	if r, custom := shaRounds(2_000_000_000); r != MaxSHACryptRounds || !custom {
		t.Errorf("shaRounds(2e9) = %d, %v, want %d, true", r, custom, MaxSHACryptRounds)
	}
}

func TestHashPasswordTooLong(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxPasswordLen+1)
	for name, hash := range map[string]func(string) (string, error){
		"apr1":   HashAPR1,
		"sha1":   HashSHA1,
		"sha256": func(p string) (string, error) { return HashSHA256Crypt(p, 0) },
		"sha512": func(p string) (string, error) { return HashSHA512Crypt(p, 0) },
	} {
		if h, err := hash(long); !errors.Is(err, ErrPasswordTooLong) {
			t.Errorf("%s(%d bytes) = %q, %v, want ErrPasswordTooLong", name, len(long), h, err)
		}
		h, err := hash(long[1:])
		if err != nil {
			t.Fatalf("%s(%d bytes) = %v", name, MaxPasswordLen, err)
		}
		e, err := NewEntry("u", h)
		if err != nil || !e.Verify(long[1:]) {
			t.Errorf("%s: a %d-byte password does not verify (err %v)", name, MaxPasswordLen, err)
		}
		if e.Verify(long) {
			t.Errorf("%s: Verify(%d bytes) = true, want false", name, len(long))
		}
	}
}

func TestExpensive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hash string
		want bool
	}{
		{hashBcryptUU, true}, {hashSHA256, true}, {hashSHA512, true},
		{hashAPR1, true}, {hashSHA1, false},
	} {
		e, err := NewEntry("u", tc.hash)
		if err != nil {
			t.Fatal(err)
		}
		if e.Expensive() != tc.want {
			t.Errorf("Expensive(%s) = %v, want %v", e.Format(), e.Expensive(), tc.want)
		}
	}
	if (Entry{}).Expensive() {
		t.Error("Entry{}.Expensive() = true, want false")
	}
}

func TestFormatString(t *testing.T) {
	t.Parallel()
	for f, want := range map[Format]string{
		FormatBcrypt: "bcrypt", FormatAPR1: "apr1-MD5", FormatSHA1: "{SHA}",
		FormatSHA256Crypt: "SHA-256-crypt", FormatSHA512Crypt: "SHA-512-crypt", 0: "Format(0)",
	} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", f, got, want)
		}
	}
}

func TestDummyEntry(t *testing.T) {
	t.Parallel()
	for _, hash := range []string{
		hashBcryptUU, // cost 5
		hashAPR1,
		hashSHA1,
		"$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1",
		hashSHA512,
	} {
		like, err := NewEntry("alice", hash)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(like.Format().String(), func(t *testing.T) {
			t.Parallel()
			d := DummyEntry(like)
			if d.Format() != like.Format() || d.h.cost != like.h.cost || d.h.custom != like.h.custom {
				t.Errorf("DummyEntry(%q) = %q, want the same format and cost", like.Hash, d.Hash)
			}
			if d.Hash == like.Hash || d.User != "" || d.Line != 0 {
				t.Errorf("DummyEntry(%q) = %+v, want a fresh hash, no user, no line", like.Hash, d)
			}
			if _, err := parseHash(d.Hash); err != nil {
				t.Errorf("DummyEntry(%q).Hash = %q does not parse: %v", like.Hash, d.Hash, err)
			}
			for _, pw := range []string{"", "password", "U*U", "Hello world!"} {
				if d.Verify(pw) {
					t.Errorf("DummyEntry(%q).Verify(%q) = true, want false", like.Hash, pw)
				}
			}
		})
	}
}

// TestEmptyPassword: an entry made from the empty password
// loads, EmptyPassword reports it, and Verify never accepts "" — for
// every format — while the same entry's other passwords still fail.
func TestEmptyPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		hash func(string) (string, error)
	}{
		{"bcrypt", func(p string) (string, error) { return HashBcrypt(p, 4) }},
		{"apr1", HashAPR1},
		{"SHA", HashSHA1},
		{"SHA-256-crypt", func(p string) (string, error) { return HashSHA256Crypt(p, 0) }},
		{"SHA-512-crypt", func(p string) (string, error) { return HashSHA512Crypt(p, 1000) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			empty, err := tc.hash("")
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse("t", strings.NewReader("nopw:"+empty+"\n"))
			if err != nil {
				t.Fatalf("Parse(empty-password entry) = %v, want it loaded", err)
			}
			e, _ := f.Lookup("nopw")
			if e.Verify("") {
				t.Errorf("Verify(\"\") against %q = true, want false", e.Hash)
			}
			if !e.EmptyPassword() {
				t.Errorf("EmptyPassword() of %q = false, want true", e.Hash)
			}
			other, err := tc.hash("x")
			if err != nil {
				t.Fatal(err)
			}
			o, err := NewEntry("x", other)
			if err != nil {
				t.Fatal(err)
			}
			if o.EmptyPassword() || !o.Verify("x") {
				t.Errorf("entry for %q: EmptyPassword() = %v, Verify(\"x\") = %v, want false, true", "x", o.EmptyPassword(), o.Verify("x"))
			}
		})
	}
}

// TestDummyEntryCapsSlowHashes: DummyEntry of a slow entry is at the cap,
// so unknown users never cost minutes.
func TestDummyEntryCapsSlowHashes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hash     string
		wantCost int
	}{
		{hashSHA256Slow, MaxSafeSHACryptRounds},
		{hashSHA512Slow, MaxSafeSHACryptRounds},
	} {
		like, err := NewEntry("u", tc.hash)
		if err != nil {
			t.Fatal(err)
		}
		d := DummyEntry(like)
		if d.Slow() || d.h.cost != tc.wantCost || d.Format() != like.Format() {
			t.Errorf("DummyEntry(%q) = %q (cost %d), want %v at %d", tc.hash, d.Hash, d.h.cost, like.Format(), tc.wantCost)
		}
	}
}

func TestFileDummy(t *testing.T) {
	t.Parallel()
	bcrypt4, err := HashBcrypt("x", 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		in         string
		wantFormat Format
		wantCost   int
	}{
		{"empty file: bcrypt at the default cost", "", FormatBcrypt, DefaultBcryptCost},
		{"most common format", "a:" + hashAPR1 + "\nb:" + hashAPR1 + "\nc:" + bcrypt4, FormatAPR1, 0},
		{"tie: the expensive one", "a:" + hashAPR1 + "\nb:" + hashSHA256, FormatSHA256Crypt, DefaultSHACryptRounds},
		{"tie: the higher bcrypt cost", "a:" + bcrypt4 + "\nb:" + hashBcryptUU, FormatBcrypt, 5},
		// a slow hash is never the dummy, however common.
		{"slow entries not counted", "a:" + hashBcrypt31 + "\nb:" + hashBcrypt31 + "\nc:" + bcrypt4, FormatBcrypt, 4},
		{"slow SHA-crypt not counted", "a:" + hashSHA512Slow + "\nb:" + hashSHA512Slow + "\nc:" + hashAPR1, FormatAPR1, 0},
		{"only slow bcrypt: capped", "a:" + hashBcrypt31 + "\nb:" + hashBcrypt18, FormatBcrypt, MaxSafeBcryptCost},
		{"only slow SHA-crypt: capped", "a:" + hashSHA256Slow, FormatSHA256Crypt, MaxSafeSHACryptRounds},
		{"rounds count as a kind", "a:" + hashSHA256 + "\nb:" + hashSHA256 + "\nc:$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
			FormatSHA256Crypt, DefaultSHACryptRounds},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseWith("x", strings.NewReader(tc.in), ParseConfig{AllowSlowHashes: true})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			hashes := make([]string, 4)
			for i := range hashes {
				wg.Go(func() { hashes[i] = f.Dummy().Hash })
			}
			wg.Wait()
			d := f.Dummy()
			if d.Format() != tc.wantFormat || d.h.cost != tc.wantCost {
				t.Errorf("Dummy() = %q (%v, cost %d), want %v at cost %d", d.Hash, d.Format(), d.h.cost, tc.wantFormat, tc.wantCost)
			}
			for _, h := range hashes {
				if h != d.Hash {
					t.Errorf("Dummy() returned %q and %q, want one entry computed once", h, d.Hash)
				}
			}
		})
	}
}
