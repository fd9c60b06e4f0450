package proxy

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"

	"gatehouse/rules/watch"
)

// TestCheckpointPositions: a judged line's position is never moved back
// by the source's own, lazier, save of the same file; a source's save
// that moves on (another file after a rotation, a tail start) is taken.
func TestCheckpointPositions(t *testing.T) {
	t.Parallel()
	const key = "file\x00sshd\x00/var/log/auth.log"
	c := newCheckpointPositions(nil)
	at := func(ino uint64, off int64) watch.Position { return watch.Position{Dev: 1, Ino: ino, Offset: off} }
	check := func(what string, want watch.Position) {
		t.Helper()
		if got, _ := c.Position(key); got != want {
			t.Errorf("%s: position %+v, want %+v", what, got, want)
		}
	}
	_ = c.SetPosition(key, at(7, 0)) // tail start
	check("a source's first position", at(7, 0))
	c.advance(key, at(7, 100))
	c.advance(key, at(7, 200))
	_ = c.SetPosition(key, at(7, 100)) // the source saving lazily
	check("a lagging save", at(7, 200))
	_ = c.SetPosition(key, at(7, 300))
	check("a save past the judged lines", at(7, 300))
	c.advance(key, at(7, 400))
	_ = c.SetPosition(key, at(8, 0)) // rotated: a new file
	check("a new file", at(8, 0))

	const jkey = "journal\x00sshd"
	c.advance(jkey, watch.Position{Cursor: "s=2"})
	_ = c.SetPosition(jkey, watch.Position{Cursor: "s=1"})
	if got, _ := c.Position(jkey); got.Cursor != "s=2" {
		t.Errorf("journal cursor %q after a lagging save, want s=2", got.Cursor)
	}

	c.advance("file\x00other\x00/var/log/x.log", at(9, 10))
	c.keep(map[string]bool{"sshd": true})
	if _, ok := c.Position("file\x00other\x00/var/log/x.log"); ok {
		t.Error("the position of a removed source was kept")
	}
	if _, ok := c.Position(key); !ok {
		t.Error("the position of a kept source was dropped")
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	pos := []byte(`{"file\u0000a\u0000/x":{"dev":1,"ino":2,"offset":3}}`)
	same := func(b []byte) []byte { return b }
	f.Add(encodeCheckpoint(pos, same))
	f.Add(encodeCheckpoint(pos, func(b []byte) []byte { return append(b, "jails"...) }))
	f.Add([]byte(checkpointMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, rest, err := parseCheckpoint(data, nil)
		if err != nil {
			return
		}
		// One flipped bit anywhere is caught.
		for i := range data {
			bad := bytes.Clone(data)
			bad[i] ^= 1
			if _, _, err := parseCheckpoint(bad, nil); err == nil {
				t.Fatalf("byte %d flipped in %q: parsed", i, data)
			}
		}
		// What parses is written back the same way.
		js, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		again := encodeCheckpoint(js, func(b []byte) []byte { return append(b, rest...) })
		p2, rest2, err := parseCheckpoint(again, nil)
		if err != nil || !maps.Equal(p, p2) || !bytes.Equal(rest, rest2) {
			t.Fatalf("round trip of %q: %v, %v", data, p2, err)
		}
	})
}
