package htpasswd

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

const (
	// MaxPasswordLen is the longest password, in bytes, that Verify checks
	// and the Hash functions accept. SHA-crypt's work grows with the
	// password's length, so an unbounded one would let a client buy
	// seconds of CPU per request.
	MaxPasswordLen = 1024
	// MaxBcryptPasswordLen is the longest password bcrypt uses: it ignores
	// later bytes. HashBcrypt refuses longer passwords rather than silently
	// truncating them; Verify truncates, as Apache and crypt_blowfish do,
	// so entries Apache made from longer passwords still verify.
	MaxBcryptPasswordLen = 72
	// DefaultBcryptCost is HashBcrypt's cost when given 0. Apache's
	// htpasswd defaults to 5, which today's hardware checks far too fast.
	DefaultBcryptCost = 10
	// DefaultSHACryptRounds is SHA-crypt's round count when a hash does
	// not name one (Drepper's spec).
	DefaultSHACryptRounds = 5000
	// MinSHACryptRounds and MaxSHACryptRounds bound SHA-crypt's rounds
	// (Drepper's spec); requests outside are clamped when hashing.
	MinSHACryptRounds = 1000
	MaxSHACryptRounds = 999999999
	// MaxSafeBcryptCost is the highest bcrypt cost Parse accepts unless
	// ParseConfig.AllowSlowHashes, and the highest `gatehouse htpasswd -C`
	// makes (Apache's htpasswd refuses -C 18 too). One check at cost 17
	// takes seconds of CPU, and each step doubles it: at 31 a single wrong
	// password holds a verification slot for days.
	MaxSafeBcryptCost = 17
	// MaxSafeSHACryptRounds is the highest SHA-crypt round count Parse
	// accepts unless ParseConfig.AllowSlowHashes, and the highest
	// `gatehouse htpasswd -r` makes: 200 times the default, about a
	// second per check, where the format allows 999,999,999.
	MaxSafeSHACryptRounds = 1_000_000
)

var (
	// ErrPasswordTooLong is wrapped by the Hash functions' error for a
	// password longer than MaxPasswordLen, or MaxBcryptPasswordLen for
	// bcrypt.
	ErrPasswordTooLong = errors.New("password too long")
	// ErrInvalidHash matches (errors.Is) every error about a hash string
	// that gatehouse does not verify: malformed, unsupported or plain text.
	ErrInvalidHash = errors.New("invalid password hash")
	// ErrSlowHash matches (errors.Is) Parse's error for a hash above
	// MaxSafeBcryptCost or MaxSafeSHACryptRounds: valid, but too slow to
	// verify on the request path.
	ErrSlowHash = errors.New("password hash too slow to verify")
)

// slowHashError is Parse's error for a hash above the safe cost; it
// matches ErrSlowHash.
type slowHashError string

func (e slowHashError) Error() string        { return string(e) }
func (e slowHashError) Is(target error) bool { return target == ErrSlowHash }

// hashError is a problem with a hash string; it matches ErrInvalidHash
// without repeating its text in every file:line message.
type hashError string

func (e hashError) Error() string        { return string(e) }
func (e hashError) Is(target error) bool { return target == ErrInvalidHash }

// Format is a password hash format gatehouse verifies.
type Format uint8

// The formats. The zero Format is none: the zero Entry has it.
const (
	FormatBcrypt      Format = iota + 1 // $2y$, $2a$, $2b$
	FormatAPR1                          // $apr1$, Apache's MD5 (1000 rounds)
	FormatSHA1                          // {SHA}, unsalted SHA-1
	FormatSHA256Crypt                   // $5$
	FormatSHA512Crypt                   // $6$
)

// String returns the format's usual name, e.g. "bcrypt" or "SHA-512-crypt".
func (f Format) String() string {
	switch f {
	case FormatBcrypt:
		return "bcrypt"
	case FormatAPR1:
		return "apr1-MD5"
	case FormatSHA1:
		return "{SHA}"
	case FormatSHA256Crypt:
		return "SHA-256-crypt"
	case FormatSHA512Crypt:
		return "SHA-512-crypt"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Entry is one user of an htpasswd file. Entries come from a File, from
// NewEntry or from DummyEntry; any other Entry (such as the zero one)
// verifies no password. Entry is a small value, safe to copy and to use
// concurrently.
type Entry struct {
	User string // the user name, case-sensitive
	Hash string // the hash as stored in the file
	Line int    // 1-based line in the file; 0 when not from a file

	h parsedHash
}

// parsedHash is a validated hash string, split for Verify.
type parsedHash struct {
	format Format
	cost   int    // bcrypt cost or SHA-crypt rounds; 0 for the others
	custom bool   // SHA-crypt: the hash names its rounds (rounds=N$)
	salt   string // apr1 and SHA-crypt
	digest string // apr1 and SHA-crypt: encoded; {SHA}: the raw 20 bytes
}

// slow reports whether h is above MaxSafeBcryptCost or
// MaxSafeSHACryptRounds.
func (h parsedHash) slow() bool {
	switch h.format {
	case FormatBcrypt:
		return h.cost > MaxSafeBcryptCost
	case FormatSHA256Crypt, FormatSHA512Crypt:
		return h.cost > MaxSafeSHACryptRounds
	}
	return false
}

// slowError is the error for a slow h, for Parse.
func (h parsedHash) slowError() error {
	what, limit := fmt.Sprintf("bcrypt cost %d", h.cost), strconv.Itoa(MaxSafeBcryptCost)
	if h.format != FormatBcrypt {
		what, limit = fmt.Sprintf("%s rounds=%d", h.format, h.cost), strconv.Itoa(MaxSafeSHACryptRounds)
	}
	return slowHashError(what + " is above " + limit + ": every wrong password would hold a verification slot for seconds to days; " +
		"rehash with gatehouse htpasswd -B, or set basic_auth.allow_slow_hashes: true")
}

// moreExpensive reports whether h costs more to verify than o.
func (h parsedHash) moreExpensive(o parsedHash) bool {
	if h.format.expensive() != o.format.expensive() {
		return h.format.expensive()
	}
	if h.format == FormatBcrypt && o.format == FormatBcrypt {
		return h.cost > o.cost
	}
	if h.format == FormatBcrypt || o.format == FormatBcrypt {
		return h.format == FormatBcrypt // bcrypt at cost ≥ 4 vs 5000 SHA rounds
	}
	return h.cost > o.cost || (h.cost == o.cost && h.format > o.format)
}

func (f Format) expensive() bool {
	return f == FormatBcrypt || f == FormatSHA256Crypt || f == FormatSHA512Crypt || f == FormatAPR1
}

// NewEntry validates user (see ValidateUser) and hash and returns the
// entry, with Line 0. Hash errors match ErrInvalidHash.
func NewEntry(user, hash string) (Entry, error) {
	if err := ValidateUser(user); err != nil {
		return Entry{}, err
	}
	return newEntry(user, hash, 0)
}

// newEntry returns the entry for an already validated user.
func newEntry(user, hash string, line int) (Entry, error) {
	h, err := parseHash(hash)
	if err != nil {
		return Entry{}, fmt.Errorf("user %q: %w", user, err)
	}
	return Entry{User: user, Hash: hash, Line: line, h: h}, nil
}

// Format returns the entry's hash format; zero for an Entry that verifies
// nothing.
func (e Entry) Format() Format {
	return e.h.format
}

// Expensive reports whether Verify is deliberately slow for e (bcrypt and
// SHA-crypt: milliseconds; apr1's 1000 MD5 rounds: hundreds of
// microseconds; only {SHA} is cheap), so callers can bound how many such
// checks run at once.
func (e Entry) Expensive() bool {
	return e.h.format.expensive()
}

// Slow reports whether e's hash is above MaxSafeBcryptCost or
// MaxSafeSHACryptRounds: Parse accepts such entries only with
// ParseConfig.AllowSlowHashes.
func (e Entry) Slow() bool {
	return e.h.slow()
}

// Verify reports whether password matches the entry's hash. The derived
// value is compared in constant time. The empty password never matches,
// even when the hash was made from it (Apache's `htpasswd -b file user ""`
// makes such entries): an empty password is no credential, and
// it is refused without hashing. A password longer than MaxPasswordLen
// never matches either; bcrypt looks at the first MaxBcryptPasswordLen
// bytes only, like every bcrypt implementation.
func (e Entry) Verify(password string) bool {
	if password == "" || len(password) > MaxPasswordLen {
		return false
	}
	return e.verify(password)
}

// EmptyPassword reports whether e's hash was made from the empty
// password, which Verify never accepts: such a user cannot log in. It
// costs one hash, as long as a Verify of e.
func (e Entry) EmptyPassword() bool {
	return e.verify("")
}

// verify is Verify without the password checks.
func (e Entry) verify(password string) bool {
	h := &e.h
	switch h.format {
	case FormatBcrypt:
		if len(password) > MaxBcryptPasswordLen {
			// Same result as bcrypt's own key schedule, which never reads
			// further; saves copying a long password.
			password = password[:MaxBcryptPasswordLen]
		}
		return bcrypt.CompareHashAndPassword([]byte(e.Hash), []byte(password)) == nil
	case FormatAPR1:
		var buf [apr1DigestLen]byte
		return subtle.ConstantTimeCompare(apr1(buf[:0], password, h.salt), []byte(h.digest)) == 1
	case FormatSHA1:
		sum := sha1.Sum([]byte(password))
		return subtle.ConstantTimeCompare(sum[:], []byte(h.digest)) == 1
	case FormatSHA256Crypt, FormatSHA512Crypt:
		var buf [sha512DigestLen]byte
		d := shaCrypt(buf[:0], h.format == FormatSHA512Crypt, password, h.salt, h.cost)
		return subtle.ConstantTimeCompare(d, []byte(h.digest)) == 1
	}
	return false
}

// unsupported names crypt(3) schemes that parseHash recognises only to
// refuse them with a useful message.
var unsupported = []struct{ prefix, name string }{
	{"$y$", "yescrypt"},
	{"$gy$", "gost-yescrypt"},
	{"$7$", "scrypt"},
	{"$argon2", "Argon2"},
	{"$2x$", "bcrypt $2x$ (crypt_blowfish's buggy-8-bit variant)"},
	{"$2$", "bcrypt $2$ (the original, pre-$2a$ variant)"},
	{"$sha1$", "NetBSD SHA-1 crypt"},
	{"$md5", "SunMD5"},
	{"$3$", "NT hash"},
	{"{SSHA}", "LDAP salted SHA-1"},
	{"{SHA256}", "LDAP SHA-256"},
	{"{SHA512}", "LDAP SHA-512"},
}

// supportedFormats ends messages about hashes gatehouse refuses.
const supportedFormats = "use bcrypt (gatehouse htpasswd -B); also verified: $apr1$, {SHA}, $5$, $6$"

const plainText = "plain-text password or unknown hash format; plain text is not supported; " + supportedFormats

// parseHash validates a stored hash string. Messages never repeat the
// string: it may be a plain-text password.
func parseHash(s string) (parsedHash, error) {
	if strings.Contains(s, ":") {
		return parsedHash{}, hashError("unexpected ':' after the hash (extra fields are not supported)")
	}
	// Every supported format is printable ASCII. Checking here also keeps
	// line breaks, which base64 decoding would skip, out of SetUser.
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return parsedHash{}, hashError(plainText)
		}
	}
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return parseBcrypt(s)
	case strings.HasPrefix(s, "$apr1$"):
		return parseAPR1(s)
	case strings.HasPrefix(s, "{SHA}"):
		return parseSHA1(s)
	case strings.HasPrefix(s, "$5$"):
		return parseSHACrypt(s, FormatSHA256Crypt)
	case strings.HasPrefix(s, "$6$"):
		return parseSHACrypt(s, FormatSHA512Crypt)
	case strings.HasPrefix(s, "$1$"):
		return parsedHash{}, hashError("MD5-crypt ($1$) hashes are not supported; " + supportedFormats)
	}
	for _, u := range unsupported {
		if strings.HasPrefix(s, u.prefix) {
			return parsedHash{}, hashError(u.name + " hashes are not supported; " + supportedFormats)
		}
	}
	if len(s) == 13 && allCryptChars(s) {
		return parsedHash{}, hashError("DES crypt hashes are not supported (insecure: only 8 password characters count); " + supportedFormats)
	}
	return parsedHash{}, hashError(plainText)
}

// bcryptLen is the length of a bcrypt hash: "$2y$10$", 22 characters of
// salt and 31 of digest.
const bcryptLen = 60

func parseBcrypt(s string) (parsedHash, error) {
	if len(s) != bcryptLen {
		return parsedHash{}, hashError(fmt.Sprintf("malformed bcrypt hash: %d characters, want %d", len(s), bcryptLen))
	}
	if !isDigit(s[4]) || !isDigit(s[5]) || s[6] != '$' {
		return parsedHash{}, hashError("malformed bcrypt hash: want a two-digit cost after " + s[:4])
	}
	cost := int(s[4]-'0')*10 + int(s[5]-'0')
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return parsedHash{}, hashError(fmt.Sprintf("bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost))
	}
	if !allCryptChars(s[7:]) {
		return parsedHash{}, hashError("malformed bcrypt hash: salt and digest must be bcrypt base64 (./A-Za-z0-9)")
	}
	return parsedHash{format: FormatBcrypt, cost: cost}, nil
}

func parseAPR1(s string) (parsedHash, error) {
	salt, digest, ok := strings.Cut(s[len("$apr1$"):], "$")
	switch {
	case !ok:
		return parsedHash{}, hashError("malformed apr1 hash: no '$' after the salt")
	case len(salt) > apr1SaltLen:
		return parsedHash{}, hashError(fmt.Sprintf("malformed apr1 hash: salt longer than %d characters", apr1SaltLen))
	case len(digest) != apr1DigestLen || !allCryptChars(digest):
		return parsedHash{}, hashError(fmt.Sprintf("malformed apr1 hash: digest must be %d characters of ./0-9A-Za-z", apr1DigestLen))
	}
	return parsedHash{format: FormatAPR1, salt: salt, digest: digest}, nil
}

func parseSHA1(s string) (parsedHash, error) {
	sum, err := base64.StdEncoding.Strict().DecodeString(s[len("{SHA}"):])
	if err != nil || len(sum) != sha1.Size {
		return parsedHash{}, hashError("malformed {SHA} hash: want the base64 of 20 bytes")
	}
	return parsedHash{format: FormatSHA1, digest: string(sum)}, nil
}

// parseSHACrypt parses "$5$[rounds=N$]salt$digest" (or $6$). It is
// stricter than Drepper's reference code, like libxcrypt (the crypt(3)
// Debian's Apache uses): rounds must be written canonically and within
// range rather than clamped, and the salt at most 16 characters rather
// than truncated, since a stored hash that differs from what crypt would
// print was not made by crypt.
func parseSHACrypt(s string, f Format) (parsedHash, error) {
	name, digestLen := "$5$", sha256DigestLen
	if f == FormatSHA512Crypt {
		name, digestLen = "$6$", sha512DigestLen
	}
	rest := s[3:]
	rounds, custom := DefaultSHACryptRounds, false
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, ok := strings.Cut(r, "$")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || num[0] < '1' || num[0] > '9' {
			return parsedHash{}, hashError("malformed " + name + " hash: want rounds=N$ with N a decimal number")
		}
		if n < MinSHACryptRounds || n > MaxSHACryptRounds {
			return parsedHash{}, hashError(fmt.Sprintf("malformed %s hash: rounds=%d outside %d..%d", name, n, MinSHACryptRounds, MaxSHACryptRounds))
		}
		rounds, custom, rest = n, true, after
	}
	salt, digest, ok := strings.Cut(rest, "$")
	switch {
	case !ok:
		return parsedHash{}, hashError("malformed " + name + " hash: no '$' after the salt")
	case len(salt) > shaSaltLen:
		return parsedHash{}, hashError(fmt.Sprintf("malformed %s hash: salt longer than %d characters", name, shaSaltLen))
	case len(digest) != digestLen || !allCryptChars(digest):
		return parsedHash{}, hashError(fmt.Sprintf("malformed %s hash: digest must be %d characters of ./0-9A-Za-z", name, digestLen))
	}
	return parsedHash{format: f, cost: rounds, custom: custom, salt: salt, digest: digest}, nil
}

// looksLikeHash reports whether s is a password hash: one parseHash
// accepts, or one of a scheme it recognises (malformed, or refused like
// DES and MD5-crypt) — anything but plain text or an unknown format.
func looksLikeHash(s string) bool {
	_, err := parseHash(s)
	return err == nil || !errors.Is(err, hashError(plainText))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// allCryptChars reports whether s is all crypt(3) base64: ./0-9A-Za-z
// (bcrypt uses the same characters in another order).
func allCryptChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '/' || isDigit(c) || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z')) {
			return false
		}
	}
	return true
}

// cryptAlphabet is crypt(3)'s base64 alphabet, in its encoding order.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomSalt returns n characters drawn uniformly from cryptAlphabet.
func randomSalt(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error: it crashes the program
	// when the kernel's generator fails (Go 1.24+).
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = cryptAlphabet[b[i]&63] // 256 is a multiple of 64: no bias
	}
	return string(b)
}

func checkLen(password string, max int) error {
	if len(password) > max {
		return fmt.Errorf("%w: %d bytes, at most %d allowed", ErrPasswordTooLong, len(password), max)
	}
	return nil
}

// HashBcrypt hashes password with bcrypt at cost (4..31; 0 means
// DefaultBcryptCost) and a random salt, printed with Apache's "$2y$"
// prefix. Passwords longer than MaxBcryptPasswordLen are refused
// (ErrPasswordTooLong).
func HashBcrypt(password string, cost int) (string, error) {
	if err := checkLen(password, MaxBcryptPasswordLen); err != nil {
		return "", fmt.Errorf("hash bcrypt: %w", err)
	}
	if cost == 0 {
		cost = DefaultBcryptCost
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return "", fmt.Errorf("hash bcrypt: cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash bcrypt: %w", err)
	}
	// x/crypto prints $2a$; its algorithm is that of $2b$/$2y$ (no 8-bit
	// bug), and $2y$ is what Apache writes.
	return "$2y$" + string(b[4:]), nil
}

// HashAPR1 hashes password with Apache's apr1-MD5 and a random 8-character
// salt. apr1 is 1000 rounds of MD5 — fast to brute-force; prefer bcrypt.
func HashAPR1(password string) (string, error) {
	if err := checkLen(password, MaxPasswordLen); err != nil {
		return "", fmt.Errorf("hash apr1: %w", err)
	}
	salt := randomSalt(apr1SaltLen)
	var buf [apr1DigestLen]byte
	return "$apr1$" + salt + "$" + string(apr1(buf[:0], password, salt)), nil
}

// HashSHA1 returns "{SHA}" and the base64 of password's SHA-1. It is
// unsalted and fast — identical passwords give identical hashes, and
// brute force is cheap; it exists only for files shared with old tools.
func HashSHA1(password string) (string, error) {
	if err := checkLen(password, MaxPasswordLen); err != nil {
		return "", fmt.Errorf("hash {SHA}: %w", err)
	}
	sum := sha1.Sum([]byte(password))
	return "{SHA}" + base64.StdEncoding.EncodeToString(sum[:]), nil
}

// HashSHA256Crypt hashes password with SHA-256-crypt ($5$) and a random
// 16-character salt. rounds 0 means DefaultSHACryptRounds; others are
// clamped to MinSHACryptRounds..MaxSHACryptRounds as Drepper's spec does.
// "rounds=N$" is written only when N is not the default.
func HashSHA256Crypt(password string, rounds int) (string, error) {
	if err := checkLen(password, MaxPasswordLen); err != nil {
		return "", fmt.Errorf("hash SHA-256-crypt: %w", err)
	}
	r, custom := shaRounds(rounds)
	return shaCryptString(false, password, randomSalt(shaSaltLen), r, custom), nil
}

// HashSHA512Crypt is HashSHA256Crypt with SHA-512 ($6$).
func HashSHA512Crypt(password string, rounds int) (string, error) {
	if err := checkLen(password, MaxPasswordLen); err != nil {
		return "", fmt.Errorf("hash SHA-512-crypt: %w", err)
	}
	r, custom := shaRounds(rounds)
	return shaCryptString(true, password, randomSalt(shaSaltLen), r, custom), nil
}

// shaRounds applies HashSHA*Crypt's rounds rules: the count to use and
// whether to write it.
func shaRounds(rounds int) (int, bool) {
	switch {
	case rounds == 0:
		return DefaultSHACryptRounds, false
	case rounds < MinSHACryptRounds:
		rounds = MinSHACryptRounds
	case rounds > MaxSHACryptRounds:
		rounds = MaxSHACryptRounds
	}
	return rounds, rounds != DefaultSHACryptRounds
}

// shaCryptString returns the full "$5$…" or "$6$…" string.
func shaCryptString(sha512 bool, password, salt string, rounds int, custom bool) string {
	var b strings.Builder
	if sha512 {
		b.WriteString("$6$")
	} else {
		b.WriteString("$5$")
	}
	if custom {
		b.WriteString("rounds=")
		b.WriteString(strconv.Itoa(rounds))
		b.WriteByte('$')
	}
	b.WriteString(salt)
	b.WriteByte('$')
	var buf [sha512DigestLen]byte
	b.Write(shaCrypt(buf[:0], sha512, password, salt, rounds))
	return b.String()
}

// DummyEntry returns an entry whose hash is like's format and cost
// (bcrypt cost, SHA-crypt rounds) applied to a random 144-bit password
// that is never revealed, so its Verify is false for every password and
// takes as long as like's. Verify unknown users against it to make them
// cost what known ones do. It hashes once (as slow as one Verify of
// like): compute it when a file is loaded, not per request — File.Dummy
// does. A zero like gives bcrypt at DefaultBcryptCost. A slow like (see
// Entry.Slow) is capped at MaxSafeBcryptCost or MaxSafeSHACryptRounds: the
// dummy is what every unknown user costs, and must never be a hash that
// holds a verification slot for minutes. User is "" and Line 0.
func DummyEntry(like Entry) Entry {
	password := randomSalt(24)
	h := like.h
	if h.slow() {
		if h.format == FormatBcrypt {
			h.cost = MaxSafeBcryptCost
		} else {
			h.cost, h.custom = MaxSafeSHACryptRounds, true
		}
	}
	var s string
	var err error
	switch h.format {
	case FormatAPR1:
		s, err = HashAPR1(password)
	case FormatSHA1:
		s, err = HashSHA1(password)
	case FormatSHA256Crypt, FormatSHA512Crypt:
		s = shaCryptString(h.format == FormatSHA512Crypt, password, randomSalt(shaSaltLen), h.cost, h.custom)
	case FormatBcrypt:
		s, err = HashBcrypt(password, h.cost)
	default:
		s, err = HashBcrypt(password, DefaultBcryptCost)
	}
	if err == nil {
		h, err = parseHash(s)
	}
	if err != nil {
		// Unreachable: the password is short and like's cost was
		// validated when like was parsed.
		panic("htpasswd: DummyEntry: " + err.Error())
	}
	return Entry{Hash: s, h: h}
}
