package htpasswd

import (
	"strconv"
	"strings"
	"testing"
)

// BenchmarkVerify measures one successful check per format: the cost a
// request pays when the auth cache misses.
func BenchmarkVerify(b *testing.B) {
	const pw = "correct horse battery staple"
	for _, bc := range []struct {
		name string
		hash func() (string, error)
	}{
		{"bcrypt-10", func() (string, error) { return HashBcrypt(pw, 10) }},
		{"bcrypt-5", func() (string, error) { return HashBcrypt(pw, 5) }},
		{"apr1", func() (string, error) { return HashAPR1(pw) }},
		{"sha1", func() (string, error) { return HashSHA1(pw) }},
		{"sha256crypt-5000", func() (string, error) { return HashSHA256Crypt(pw, 0) }},
		{"sha512crypt-5000", func() (string, error) { return HashSHA512Crypt(pw, 0) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h, err := bc.hash()
			if err != nil {
				b.Fatal(err)
			}
			e, err := NewEntry("u", h)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if !e.Verify(pw) {
					b.Fatal("Verify = false")
				}
			}
		})
	}
}

// benchFile returns a parsed file of n users with {SHA} hashes (the
// format does not matter to Lookup).
func benchFile(tb testing.TB, n int) *File {
	tb.Helper()
	var sb strings.Builder
	for i := range n {
		sb.WriteString("user" + strconv.Itoa(i) + ":" + hashSHA1 + "\n")
	}
	f, err := Parse("bench", strings.NewReader(sb.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		f := benchFile(b, n)
		hit := "user" + strconv.Itoa(n/2)
		b.Run("users="+strconv.Itoa(n)+"/hit", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := f.Lookup(hit); !ok {
					b.Fatal("miss")
				}
			}
		})
		b.Run("users="+strconv.Itoa(n)+"/miss", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := f.Lookup("mallory"); ok {
					b.Fatal("hit")
				}
			}
		})
	}
}
