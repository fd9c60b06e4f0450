package rules

import (
	"hash/maphash"
	"net/netip"
	"testing"
)

// TestClientTableUpdateKey pins that keyed state lives beside client
// state: Key(ip) is the key Update uses, and hashed keys are apart.
func TestClientTableUpdateKey(t *testing.T) {
	c, err := NewClientTable[int](100, 64)
	if err != nil {
		t.Fatal(err)
	}
	inc := func(s *int, _ bool) bool { *s++; return *s > 1 }
	ip := netip.MustParseAddr("2001:db8::1")
	c.Update(ip, inc)
	if !c.UpdateKey(c.Key(netip.MustParseAddr("2001:db8::2")), inc) {
		t.Error("UpdateKey(Key(same /64)) did not see Update's state")
	}
	a, b := maphash.MakeSeed(), maphash.MakeSeed()
	k1 := HashKey(a, b, c.Key(ip), "a.example.com")
	if k1 != HashKey(a, b, c.Key(ip), "a.example.com") {
		t.Error("HashKey is not deterministic")
	}
	for _, k := range []TableKey{HashKey(a, b, c.Key(ip), "b.example.com"), HashKey(a, b, TableKey{}, "a.example.com"), c.Key(ip)} {
		if k == k1 {
			t.Errorf("HashKey collides with %v", k)
		}
	}
	if c.UpdateKey(k1, inc) {
		t.Error("a hashed key saw the client's state")
	}
	if c.Len() != 2 {
		t.Errorf("Len = %d, want 2", c.Len())
	}
}
