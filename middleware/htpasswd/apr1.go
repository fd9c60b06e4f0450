package htpasswd

import "crypto/md5"

const (
	apr1SaltLen   = 8  // longer salts are cut to 8 by Apache
	apr1DigestLen = 22 // 16 bytes in crypt base64
	apr1Magic     = "$apr1$"
)

// apr1 appends to dst the encoded digest of Apache's apr1 variant of
// Poul-Henning Kamp's MD5-crypt (apr_md5.c, apr_md5_encode): MD5-crypt
// with "$apr1$" for "$1$" as the magic string.
func apr1(dst []byte, password, salt string) []byte {
	h := md5.New()
	h.Write([]byte(password))
	h.Write([]byte(salt))
	h.Write([]byte(password))
	var final [md5.Size]byte
	h.Sum(final[:0])

	h.Reset()
	h.Write([]byte(password))
	h.Write([]byte(apr1Magic))
	h.Write([]byte(salt))
	for n := len(password); n > 0; n -= md5.Size {
		h.Write(final[:min(n, md5.Size)])
	}
	// Odd, but the reference does it: one NUL or the first password byte
	// per bit of the length.
	for n := len(password); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write([]byte{0})
		} else {
			h.Write([]byte(password[:1]))
		}
	}
	h.Sum(final[:0])

	// 1000 rounds, "to slow things down".
	for i := range 1000 {
		h.Reset()
		if i&1 != 0 {
			h.Write([]byte(password))
		} else {
			h.Write(final[:])
		}
		if i%3 != 0 {
			h.Write([]byte(salt))
		}
		if i%7 != 0 {
			h.Write([]byte(password))
		}
		if i&1 != 0 {
			h.Write(final[:])
		} else {
			h.Write([]byte(password))
		}
		h.Sum(final[:0])
	}

	f := &final
	dst = b64From24(dst, f[0], f[6], f[12], 4)
	dst = b64From24(dst, f[1], f[7], f[13], 4)
	dst = b64From24(dst, f[2], f[8], f[14], 4)
	dst = b64From24(dst, f[3], f[9], f[15], 4)
	dst = b64From24(dst, f[4], f[10], f[5], 4)
	return b64From24(dst, 0, 0, f[11], 2)
}

// b64From24 appends the n low 6-bit groups of the 24-bit value b2:b1:b0,
// least significant first, in cryptAlphabet — crypt(3)'s encoding.
func b64From24(dst []byte, b2, b1, b0 byte, n int) []byte {
	w := uint32(b2)<<16 | uint32(b1)<<8 | uint32(b0)
	for ; n > 0; n-- {
		dst = append(dst, cryptAlphabet[w&0x3f])
		w >>= 6
	}
	return dst
}
