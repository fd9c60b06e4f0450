package htpasswd

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
)

const (
	shaSaltLen      = 16 // longer salts are cut to 16 by the reference code
	sha256DigestLen = 43 // 32 bytes in crypt base64
	sha512DigestLen = 86 // 64 bytes in crypt base64
)

// Byte orders of the final encoding, from Drepper's reference code: each
// triple is encoded as one 24-bit group (b64From24), most significant byte
// first. The last one or two bytes follow in a short group.
var (
	sha256Order = [...][3]byte{
		{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14},
		{15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29},
	}
	sha512Order = [...][3]byte{
		{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4},
		{47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51},
		{31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35},
		{15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19},
		{62, 20, 41},
	}
)

// shaCrypt appends to dst the encoded digest of SHA-crypt (SHA-512 when
// use512, else SHA-256) for password, salt (at most shaSaltLen bytes) and
// rounds, following Ulrich Drepper's "Unix crypt using SHA-256 and
// SHA-512" (https://www.akkadia.org/drepper/SHA-crypt.txt); the step
// numbers below are the spec's. The caller validates salt and rounds.
func shaCrypt(dst []byte, use512 bool, password, salt string, rounds int) []byte {
	var h hash.Hash
	if use512 {
		h = sha512.New()
	} else {
		h = sha256.New()
	}
	size := h.Size()
	pw, s := []byte(password), []byte(salt)
	var sum [sha512.Size]byte

	// Steps 4-8: digest B = H(password, salt, password).
	h.Write(pw)
	h.Write(s)
	h.Write(pw)
	b := h.Sum(sum[:0])

	// Steps 1-3, 9-12: digest A.
	h.Reset()
	h.Write(pw)
	h.Write(s)
	n := len(pw)
	for ; n > size; n -= size {
		h.Write(b)
	}
	h.Write(b[:n])
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(pw)
		}
	}
	a := h.Sum(sum[:0])

	// Steps 13-16: byte sequence P, len(password) bytes of
	// H(password repeated len(password) times).
	h.Reset()
	for range len(pw) {
		h.Write(pw)
	}
	var dp [sha512.Size]byte
	p := repeat(h.Sum(dp[:0]), len(pw))

	// Steps 17-20: byte sequence S, len(salt) bytes of H(salt repeated
	// 16+A[0] times).
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(s)
	}
	var ds [sha512.Size]byte
	sseq := h.Sum(ds[:0])[:len(s)] // len(s) ≤ 16 < size

	// Step 21: the rounds.
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(a)
		}
		if i%3 != 0 {
			h.Write(sseq)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(a)
		} else {
			h.Write(p)
		}
		a = h.Sum(sum[:0])
	}

	// Step 22: encode.
	if use512 {
		for _, t := range sha512Order {
			dst = b64From24(dst, a[t[0]], a[t[1]], a[t[2]], 4)
		}
		return b64From24(dst, 0, 0, a[63], 2)
	}
	for _, t := range sha256Order {
		dst = b64From24(dst, a[t[0]], a[t[1]], a[t[2]], 4)
	}
	return b64From24(dst, 0, a[31], a[30], 3)
}

// repeat returns n bytes of d repeated.
func repeat(d []byte, n int) []byte {
	out := make([]byte, n)
	for i := 0; i < n; i += len(d) {
		copy(out[i:], d)
	}
	return out
}
