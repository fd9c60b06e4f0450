package store

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"gatehouse/rules"
)

// FuzzDecodeBan: decoding a ban record never panics, and what decodes
// encodes back to the same key and value (the format has one spelling
// per ban).
func FuzzDecodeBan(f *testing.F) {
	// Seeds: records Put writes (IPv4 jail ban, IPv6 manual ban with a
	// reason, zero Created), and broken ones (short value, wrong version,
	// jail length past the end, key with trailing bytes, unmasked key).
	for _, b := range []rules.Ban{
		{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Jail: "probes", Reason: "/.env", Count: 2, Until: t0, Created: t0.Add(-time.Hour)},
		{Prefix: netip.MustParsePrefix("2001:db8::/48"), Reason: "operator: scanner", Until: t0},
	} {
		v, err := encodeBan(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(appendPrefixKey(nil, b.Prefix), v)
	}
	k := appendPrefixKey(nil, netip.MustParsePrefix("203.0.113.0/24"))
	f.Add(k, []byte{banVersion, 1, 2})
	f.Add(k, append([]byte{banVersion + 1}, make([]byte, banHeaderLen)...))
	f.Add(k, append(append([]byte{banVersion}, make([]byte, banHeaderLen-1)...), 9, 'a'))
	f.Add(append(k, 'x'), append([]byte{banVersion}, make([]byte, banHeaderLen)...))
	f.Add([]byte{family4, 203, 0, 113, 7, 24}, append([]byte{banVersion}, make([]byte, banHeaderLen)...))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		b, err := decodeBan(k, v)
		if err != nil {
			return
		}
		v2, err := encodeBan(b)
		if err != nil {
			t.Fatalf("encodeBan(decodeBan(%x, %x)) = %v", k, v, err)
		}
		if k2 := appendPrefixKey(nil, b.Prefix); !bytes.Equal(k2, k) || !bytes.Equal(v2, v) {
			t.Errorf("decodeBan(%x, %x) = %+v, which encodes as %x, %x", k, v, b, k2, v2)
		}
	})
}

// FuzzDecodeHistory: as FuzzDecodeBan, for history records.
func FuzzDecodeHistory(f *testing.F) {
	h := rules.Ban{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), Jail: "auth", Count: 3, Until: t0, Created: t0.Add(-time.Hour)}
	f.Add(append(appendPrefixKey(nil, h.Prefix), h.Jail...), encodeHistory(h))
	f.Add(appendPrefixKey(nil, h.Prefix), encodeHistory(h)) // no jail
	f.Add(append(appendPrefixKey(nil, h.Prefix), 'a'), []byte{historyVersion})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		h, err := decodeHistory(k, v)
		if err != nil {
			return
		}
		k2 := append(appendPrefixKey(nil, h.Prefix), h.Jail...)
		if v2 := encodeHistory(h); !bytes.Equal(k2, k) || !bytes.Equal(v2, v) {
			t.Errorf("decodeHistory(%x, %x) = %+v, which encodes as %x, %x", k, v, h, k2, v2)
		}
	})
}
