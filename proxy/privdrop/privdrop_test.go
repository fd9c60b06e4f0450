package privdrop

import (
	"errors"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// lookupUID returns the uid of name from the user database, skipping the
// test when the account does not exist.
func lookupUID(t *testing.T, name string) int {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("no %s account: %v", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

func TestResolveRunAs(t *testing.T) {
	t.Parallel()
	nobody := lookupUID(t, "nobody")
	tests := []struct {
		name      string
		user      string
		allowRoot bool
		euid      int
		wantUID   int    // -1: no switch (nil credential)
		wantErr   string // substring; "" for none
		wantRoot  bool   // the error wraps ErrRunAsRoot
	}{
		{name: "root without flags", euid: 0, wantErr: "refusing to run as root: start gatehouse as an unprivileged user", wantRoot: true},
		{name: "root error names both ways out", euid: 0, wantErr: "pass --user NAME to switch to NAME once the listeners are bound, or --allow-root", wantRoot: true},
		{name: "root with --allow-root", euid: 0, allowRoot: true, wantUID: -1},
		{name: "unprivileged without flags", euid: 1000, wantUID: -1},
		{name: "unprivileged with --allow-root", euid: 1000, allowRoot: true, wantUID: -1},
		{name: "root to nobody", user: "nobody", euid: 0, wantUID: nobody},
		{name: "root to nobody by uid", user: strconv.Itoa(nobody), euid: 0, wantUID: nobody},
		{name: "root to nobody with --allow-root", user: "nobody", allowRoot: true, euid: 0, wantUID: nobody},
		{name: "already nobody", user: "nobody", euid: nobody, wantUID: -1},
		{name: "another user needs root", user: "nobody", euid: nobody + 1, wantErr: "--user nobody: switching to uid " + strconv.Itoa(nobody) + " needs root, and gatehouse runs as uid " + strconv.Itoa(nobody+1)},
		{name: "--user root", user: "root", euid: 0, wantErr: "refusing to run as root: --user root is root", wantRoot: true},
		{name: "--user 0", user: "0", euid: 0, wantErr: "--user 0 is root", wantRoot: true},
		{name: "--user root with --allow-root", user: "root", allowRoot: true, euid: 0, wantUID: -1},
		{name: "unknown user", user: "gatehouse-no-such-user", euid: 0, wantErr: "--user gatehouse-no-such-user: user: unknown user gatehouse-no-such-user"},
		{name: "unknown uid", user: "4000000000", euid: 0, wantErr: "--user 4000000000: user: unknown userid 4000000000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ResolveRunAs(tc.user, tc.allowRoot, tc.euid)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ResolveRunAs(%q, %v, %d) = %v, %v; want error containing %q", tc.user, tc.allowRoot, tc.euid, c, err, tc.wantErr)
				}
				if got := errors.Is(err, ErrRunAsRoot); got != tc.wantRoot {
					t.Errorf("errors.Is(%v, ErrRunAsRoot) = %v, want %v", err, got, tc.wantRoot)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveRunAs(%q, %v, %d) = %v", tc.user, tc.allowRoot, tc.euid, err)
			}
			switch {
			case tc.wantUID < 0 && c != nil:
				t.Errorf("ResolveRunAs(%q, %v, %d) = %+v, want no switch", tc.user, tc.allowRoot, tc.euid, *c)
			case tc.wantUID >= 0 && (c == nil || c.UID != tc.wantUID):
				t.Errorf("ResolveRunAs(%q, %v, %d) = %+v, want a switch to uid %d", tc.user, tc.allowRoot, tc.euid, c, tc.wantUID)
			}
		})
	}
}

// TestLookupCredential checks the credential against the user database
// as os/user reads it, group list included.
func TestLookupCredential(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"root", "nobody", "0"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u, err := user.Lookup(name)
			if err != nil {
				if u, err = user.LookupId(name); err != nil {
					t.Skipf("no account %s: %v", name, err)
				}
			}
			c, err := LookupCredential(name)
			if err != nil {
				t.Fatalf("LookupCredential(%q) = %v", name, err)
			}
			if c.User != name || strconv.Itoa(c.UID) != u.Uid || strconv.Itoa(c.GID) != u.Gid {
				t.Errorf("LookupCredential(%q) = %+v, want user %q uid %s gid %s", name, c, name, u.Uid, u.Gid)
			}
			ids, err := u.GroupIds()
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range append(ids, u.Gid) {
				g, _ := strconv.Atoi(id)
				if !slices.Contains(c.Groups, g) {
					t.Errorf("LookupCredential(%q).Groups = %v, want %s among them", name, c.Groups, id)
				}
			}
			if !slices.IsSorted(c.Groups) || len(slices.Compact(slices.Clone(c.Groups))) != len(c.Groups) {
				t.Errorf("LookupCredential(%q).Groups = %v, want sorted without repeats", name, c.Groups)
			}
		})
	}
}
