package ui

import (
	"testing"
	"time"
)

// TestSessionsBounded: sessions expire after sessionTTL, and signing in
// beyond maxSessions ends the oldest, so sign-ins cannot grow memory.
func TestSessionsBounded(t *testing.T) {
	t.Parallel()
	now := t0
	ss := newSessions(func() time.Time { return now })
	first, _ := ss.create("a")
	ids := []string{first}
	for range maxSessions - 1 {
		now = now.Add(time.Second)
		id, _ := ss.create("a")
		ids = append(ids, id)
	}
	if ss.get(first) == nil {
		t.Fatalf("session 1 of %d is gone", maxSessions)
	}
	now = now.Add(time.Second)
	ss.create("a")
	if ss.get(first) != nil {
		t.Errorf("the oldest session outlived session %d", maxSessions+1)
	}
	if ss.get(ids[1]) == nil {
		t.Errorf("session 2 is gone; only the oldest should be")
	}
	if n := len(ss.m); n != maxSessions {
		t.Errorf("%d sessions held, want %d", n, maxSessions)
	}
	now = now.Add(sessionTTL)
	if ss.get(ids[len(ids)-1]) != nil {
		t.Errorf("a session outlived sessionTTL")
	}
	if ss.get("") != nil || ss.get("unknown") != nil {
		t.Errorf("an empty or unknown id found a session")
	}
}
