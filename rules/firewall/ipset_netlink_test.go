//go:build linux

package firewall

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse/rules"
	"gatehouse/rules/testenv"

	"golang.org/x/sys/unix"
)

// newIPSetNS returns an ipset backend working in a namespace of its own,
// with its objects in place.
func newIPSetNS(t *testing.T, ctx context.Context) (*ipsetBackend, string) {
	t.Helper()
	ns := newNetNS(t, "ipset")
	b, err := New(Config{Backend: "ipset", NetNS: ns})
	if err != nil {
		t.Fatalf("New(ipset) = %v", err)
	}
	if err := b.Ensure(ctx); err != nil {
		t.Fatalf("Ensure() = %v", err)
	}
	return b.(*ipsetBackend), ns
}

// TestIPSetNetlinkListsAsTheTool: the sets and entries made over netlink
// are what `ipset create` and `ipset restore` made before, as `ipset list`
// and `ipset save` show them (less a set's random initval and its
// memory size, and a second of timeout either way).
func TestIPSetNetlinkListsAsTheTool(t *testing.T) {
	testenv.Netns(t, kernelTools...)
	t.Parallel()
	ctx := t.Context()
	b, ns := newIPSetNS(t, ctx)
	tool := newNetNS(t, "ipset-tool")
	for _, s := range ipsetSets {
		inNS(t, tool, "ipset", "create", s.name, "hash:net", "family", s.family, "timeout", "0", "maxelem", strconv.Itoa(maxSetSize))
	}
	hour := time.Now().Add(time.Hour)
	entries := []Entry{
		{netip.MustParsePrefix("192.0.2.7/32"), hour},
		{netip.MustParsePrefix("198.51.100.0/24"), hour.Add(time.Hour)},
		{netip.MustParsePrefix("203.0.113.0/25"), time.Time{}}, // no timeout
		{netip.MustParsePrefix("2001:db8:1:2::/64"), hour},
		{netip.MustParsePrefix("2001:db8::1/128"), hour},
	}
	if err := b.Apply(ctx, entries, nil); err != nil {
		t.Fatalf("Apply() = %v", err)
	}
	var stream strings.Builder
	for _, e := range entries {
		set, secs := IPSetName6, 0
		if e.Prefix.Addr().Is4() {
			set = IPSetName4
		}
		if !e.Expires.IsZero() {
			secs = int(time.Until(e.Expires).Seconds()) + 1
		}
		fmt.Fprintf(&stream, "add %s %s timeout %d\n", set, e.Prefix, secs)
	}
	cmd := []string{"ip", "netns", "exec", tool, "ipset", "restore", "-exist"}
	if out, err := runStdin(ctx, stream.String(), cmd...); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(cmd, " "), err, out)
	}

	volatile := regexp.MustCompile(`initval 0x[0-9a-f]+|Size in memory: \d+|References: \d+|timeout \d+`)
	timeouts := regexp.MustCompile(`timeout (\d+)`)
	for _, s := range ipsetSets {
		got := inNS(t, ns, "ipset", "list", "-t", s.name)
		want := inNS(t, tool, "ipset", "list", "-t", s.name)
		if volatile.ReplaceAllString(got, "") != volatile.ReplaceAllString(want, "") {
			t.Errorf("ipset list -t %s of the netlink set:\n%s\nwant as the tool makes it:\n%s", s.name, got, want)
		}
		gotSave := strings.Split(strings.TrimSpace(inNS(t, ns, "ipset", "save", s.name)), "\n")
		wantSave := strings.Split(strings.TrimSpace(inNS(t, tool, "ipset", "save", s.name)), "\n")
		slices.Sort(gotSave)
		slices.Sort(wantSave)
		if len(gotSave) != len(wantSave) {
			t.Fatalf("ipset save %s:\n%s\nwant:\n%s", s.name, strings.Join(gotSave, "\n"), strings.Join(wantSave, "\n"))
		}
		for i := range gotSave {
			g, w := gotSave[i], wantSave[i]
			if volatile.ReplaceAllString(g, "") != volatile.ReplaceAllString(w, "") {
				t.Errorf("ipset save line %q, want %q", g, w)
				continue
			}
			gm, wm := timeouts.FindStringSubmatch(g), timeouts.FindStringSubmatch(w)
			if gm == nil || wm == nil {
				continue
			}
			gs, _ := strconv.Atoi(gm[1])
			ws, _ := strconv.Atoi(wm[1])
			if d := gs - ws; d < -2 || d > 2 {
				t.Errorf("ipset save line %q, want a timeout of about %d s as in %q", g, ws, w)
			}
		}
	}
}

// TestIPSetNetlinkBatch: a batch of many additions with bad prefixes
// among them applies every good one, names every bad one, and deletes
// in batches as well.
func TestIPSetNetlinkBatch(t *testing.T) {
	testenv.Netns(t, kernelTools...)
	t.Parallel()
	ctx := t.Context()
	b, _ := newIPSetNS(t, ctx)
	hour := time.Now().Add(time.Hour)
	good := benchEntries(benchBans(40_000, hour)) // several sendmsgs' worth
	bad := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	add := slices.Clone(good)
	add = slices.Insert(add, 5, Entry{bad[0], hour})
	add = slices.Insert(add, 30_000, Entry{bad[1], hour})
	err := b.Apply(ctx, add, nil)
	var oe *OpError
	if !errors.As(err, &oe) {
		t.Fatalf("Apply() with 2 bad prefixes = %v, want *OpErrors", err)
	}
	for _, p := range bad {
		if !strings.Contains(err.Error(), p.String()) {
			t.Errorf("Apply() = %v, want %s named", err, p)
		}
	}
	got := listed(t, ctx, b)
	if len(got) != len(good) {
		t.Errorf("List() = %d entries, want %d", len(got), len(good))
	}
	for _, e := range good {
		exp, ok := got[e.Prefix]
		if !ok {
			t.Fatalf("List() lacks %s", e.Prefix)
		}
		if exp.Before(hour.Add(-earlyTolerance)) || exp.After(hour.Add(lateTolerance)) {
			t.Fatalf("List()[%s] expires %s, want about %s", e.Prefix, exp, hour)
		}
	}
	var del []netip.Prefix
	for _, e := range good[:30_000] {
		del = append(del, e.Prefix)
	}
	if err := b.Apply(ctx, nil, del); err != nil {
		t.Fatalf("Apply() deleting 30,000 = %v", err)
	}
	if got := listed(t, ctx, b); len(got) != len(good)-len(del) {
		t.Errorf("List() after deleting = %d entries, want %d", len(got), len(good)-len(del))
	}
}

// TestIPSetNetlinkSocketDies: when the backend's socket dies between
// operations or under a running Reconciler, the next operation opens a
// new one and succeeds.
func TestIPSetNetlinkSocketDies(t *testing.T) {
	testenv.Netns(t, kernelTools...)
	t.Parallel()
	ctx := t.Context()
	b, _ := newIPSetNS(t, ctx)
	// kill closes the socket under the backend's feet (the backend
	// still holds it: its next send or receive fails) and returns a
	// check that a later operation opened another.
	kill := func() (reopened func() bool) {
		b.nl.mu.Lock()
		defer b.nl.mu.Unlock()
		dead := b.nl.nl
		if dead == nil {
			t.Fatal("the backend holds no socket to kill")
		}
		if err := dead.Close(); err != nil {
			t.Fatal(err)
		}
		return func() bool {
			b.nl.mu.Lock()
			defer b.nl.mu.Unlock()
			return b.nl.nl != nil && b.nl.nl != dead
		}
	}
	hour := time.Now().Add(time.Hour)
	pA := netip.MustParsePrefix("192.0.2.1/32")
	reopened := kill()
	if err := b.Apply(ctx, []Entry{{pA, hour}}, nil); err != nil {
		t.Fatalf("Apply() on a dead socket = %v, want it retried on a new one", err)
	}
	if !reopened() {
		t.Errorf("Apply() on a dead socket opened no new one")
	}
	reopened = kill()
	if got := listed(t, ctx, b); len(got) != 1 {
		t.Fatalf("List() on a dead socket = %v, want %s", got, pA)
	}
	if !reopened() {
		t.Errorf("List() on a dead socket opened no new one")
	}

	bans := rules.NewBanList(rules.BanListConfig{})
	nb := &notifyBackend{Backend: b, waiting: map[netip.Prefix]chan struct{}{}}
	r, err := NewReconciler(ReconcilerConfig{Backend: nb, Bans: bans, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stop := startRun(t, ctx, r)
	defer stop()
	// Prefixes the kernel does not hold yet: whether the first full pass
	// or a change pass takes them, an Apply adds them.
	pA, pB := netip.MustParsePrefix("192.0.2.3/32"), netip.MustParsePrefix("2001:db8::/64")
	for _, p := range []netip.Prefix{pA, pB} {
		c := nb.wait(p)
		if _, err := bans.Ban(rules.Ban{Prefix: p, Until: hour}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c:
		case <-time.After(30 * time.Second):
			t.Fatalf("ban of %s not applied", p)
		}
		kill()
	}
	waitFor(t, "both bans in the kernel", 10*time.Second, func() bool {
		got := listed(t, ctx, b)
		_, okA := got[pA]
		_, okB := got[pB]
		return len(got) == 2 && okA && okB
	})
	if st, err := r.Status(ctx); err != nil || st.LastError != nil {
		t.Errorf("Status() = %+v, %v; want no error after the socket died", st, err)
	}
}

func TestIPSetErrno(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e      ipsetErrno
		target error
		want   bool
		text   string
	}{
		{ipsetErrno(syscall.EPERM), os.ErrPermission, true, "operation not permitted"},
		{ipsetErrno(syscall.ENOENT), syscall.ENOENT, true, "no such file"},
		{ipsetErrno(syscall.ENOENT), os.ErrNotExist, true, "no such file"},
		{ipsetBusy, ipsetBusy, true, "busy"},
		{ipsetErrno(ipsetErrPrivate + 8), syscall.Errno(ipsetErrPrivate + 8), false, "invalid CIDR"},
		{ipsetErrno(ipsetErrTypeSpecial), os.ErrPermission, false, "hash is full"},
		{ipsetErrno(5000), os.ErrPermission, false, "ipset error 5000"},
	} {
		if got := errors.Is(tc.e, tc.target); got != tc.want {
			t.Errorf("errors.Is(%d, %v) = %v, want %v", int(tc.e), tc.target, got, tc.want)
		}
		if got := tc.e.Error(); !strings.Contains(got, tc.text) {
			t.Errorf("ipsetErrno(%d).Error() = %q, want it to contain %q", int(tc.e), got, tc.text)
		}
	}
}

func TestIPSetHeaderFits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		h       ipsetListMsg
		nfproto uint8
		want    bool
	}{
		{ipsetListMsg{typ: "hash:net", family: unix.NFPROTO_IPV4, timeout: true, maxelem: maxSetSize}, unix.NFPROTO_IPV4, true},
		{ipsetListMsg{typ: "hash:net", family: unix.NFPROTO_IPV6, timeout: true, maxelem: 2 * maxSetSize}, unix.NFPROTO_IPV6, true},
		{ipsetListMsg{typ: "hash:ip", family: unix.NFPROTO_IPV4, timeout: true, maxelem: maxSetSize}, unix.NFPROTO_IPV4, false},
		{ipsetListMsg{typ: "hash:net", family: unix.NFPROTO_IPV4, maxelem: maxSetSize}, unix.NFPROTO_IPV4, false},
		{ipsetListMsg{typ: "hash:net", family: unix.NFPROTO_IPV4, timeout: true, maxelem: 65536}, unix.NFPROTO_IPV4, false},
		{ipsetListMsg{typ: "hash:net", family: unix.NFPROTO_IPV6, timeout: true, maxelem: maxSetSize}, unix.NFPROTO_IPV4, false},
	} {
		if got := tc.h.fits(tc.nfproto); got != tc.want {
			t.Errorf("%+v.fits(%d) = %v, want %v", tc.h, tc.nfproto, got, tc.want)
		}
	}
}

// appendListMsg encodes the attributes of a list dump message as the
// kernel sends them: the set's name, type and family, its header when
// header is set, and elems.
func appendListMsg(w *nlWriter, name string, nfproto uint8, header bool, elems []ipsetElem) {
	w.u8(ipsetAttrProtocol, ipsetProtocol)
	w.str(ipsetAttrSetName, name)
	w.str(ipsetAttrTypeName, "hash:net")
	w.u8(ipsetAttrRevision, 7)
	w.u8(ipsetAttrFamily, nfproto)
	if header {
		d := w.nest(ipsetAttrData)
		w.be32(ipsetAttrHashSize, 1024)
		w.be32(ipsetAttrMaxElem, maxSetSize)
		w.be32(ipsetAttrTimeout, 0)
		w.be32(ipsetAttrElements, uint32(len(elems)))
		w.unnest(d)
	}
	if elems == nil {
		return
	}
	adt := w.nest(ipsetAttrADT)
	for _, e := range elems {
		d := w.nest(ipsetAttrData)
		w.addr(e.prefix.Addr())
		w.u8(ipsetAttrCIDR, uint8(e.prefix.Bits()))
		w.be32(ipsetAttrTimeout, e.timeout)
		if e.nomatch {
			w.be32(ipsetAttrCADTFlags, 1<<2)
		}
		w.unnest(d)
	}
	w.unnest(adt)
}

// parseAll parses a list message and its elements.
func parseAll(attrs []byte) (ipsetListMsg, []ipsetElem, error) {
	m, err := parseIPSetList(attrs)
	if err != nil {
		return m, nil, err
	}
	var elems []ipsetElem
	err = eachIPSetElem(m.adt, func(e ipsetElem) { elems = append(elems, e) })
	return m, elems, err
}

func TestParseIPSetList(t *testing.T) {
	t.Parallel()
	elems := []ipsetElem{
		{prefix: netip.MustParsePrefix("192.0.2.7/32"), timeout: 99},
		{prefix: netip.MustParsePrefix("198.51.100.0/24")},
		{prefix: netip.MustParsePrefix("203.0.113.0/25"), timeout: 2147483, nomatch: true},
	}
	var w nlWriter
	appendListMsg(&w, IPSetName4, unix.NFPROTO_IPV4, true, elems)
	m, got, err := parseAll(w.b)
	if err != nil || !slices.Equal(got, elems) {
		t.Errorf("parse = %v, %v; want %v", got, err, elems)
	}
	want := ipsetListMsg{name: IPSetName4, typ: "hash:net", family: unix.NFPROTO_IPV4, header: true, timeout: true, maxelem: maxSetSize, elems: uint32(len(elems))}
	m.adt = nil
	if fmt.Sprintf("%+v", m) != fmt.Sprintf("%+v", want) {
		t.Errorf("parseIPSetList() = %+v, want %+v", m, want)
	}
	v6 := []ipsetElem{{prefix: netip.MustParsePrefix("2001:db8::/64"), timeout: 12}, {prefix: netip.MustParsePrefix("2001:db8::1/128")}}
	w = nlWriter{}
	appendListMsg(&w, IPSetName6, unix.NFPROTO_IPV6, false, v6)
	if _, got, err := parseAll(w.b); err != nil || !slices.Equal(got, v6) {
		t.Errorf("parse(v6) = %v, %v; want %v", got, err, v6)
	}
	for i := 1; i < len(w.b); i++ { // every cut is reported, never a panic
		_, _, _ = parseAll(w.b[:i])
	}
	bad := []byte{8, 0, ipsetAttrADT, 0x80, 4, 0, ipsetAttrData, 0x80} // data without an address
	if _, _, err := parseAll(bad); err == nil {
		t.Errorf("parse(element without address) = nil error")
	}
}

// FuzzParseIPSetList feeds the list-dump parser arbitrary attributes.
// Properties: it never panics; every element it yields is a valid
// prefix of at least one bit; and the elements, encoded again as the
// kernel would, parse back to the same.
func FuzzParseIPSetList(f *testing.F) {
	// A header message, an IPv4 and an IPv6 element message, as the
	// kernel sends them.
	for _, seed := range []struct {
		nfproto uint8
		header  bool
		elems   []ipsetElem
	}{
		{unix.NFPROTO_IPV4, true, nil},
		{unix.NFPROTO_IPV4, false, []ipsetElem{{prefix: netip.MustParsePrefix("192.0.2.7/32"), timeout: 99}, {prefix: netip.MustParsePrefix("10.0.0.0/8")}}},
		{unix.NFPROTO_IPV6, false, []ipsetElem{{prefix: netip.MustParsePrefix("2001:db8::/64"), timeout: 1, nomatch: true}}},
	} {
		var w nlWriter
		appendListMsg(&w, IPSetName4, seed.nfproto, seed.header, seed.elems)
		f.Add(w.b)
	}
	// Malformed: a length past the end; a zero-length attribute.
	f.Add([]byte{200, 0, 8, 0x80, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, attrs []byte) {
		m, elems, err := parseAll(attrs)
		if err != nil {
			return
		}
		for _, e := range elems {
			if !e.prefix.IsValid() || e.prefix.Bits() < 1 {
				t.Fatalf("element %+v is no prefix of at least one bit", e)
			}
		}
		var w nlWriter
		appendListMsg(&w, m.name, m.family, false, elems)
		_, again, err := parseAll(w.b)
		if err != nil || !slices.Equal(again, elems) {
			t.Fatalf("elements %v encoded again parse as %v, %v", elems, again, err)
		}
	})
}

// runStdin runs a command with stdin and returns its combined output.
func runStdin(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Stdin = strings.NewReader(stdin)
	return c.CombinedOutput()
}

// TestNFTListCacheFollowsApply: after the backend's own Apply, List
// answers from its copy of the last dump brought up to date, and that
// answer is what a dump shows; a change by another program is seen.
func TestNFTListCacheFollowsApply(t *testing.T) {
	testenv.Netns(t, kernelTools...)
	t.Parallel()
	ctx := t.Context()
	ns := newNetNS(t, "nftcache")
	be, err := New(Config{Backend: "nftables", NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	b := be.(*nftBackend)
	if err := b.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	hour := time.Now().Add(time.Hour)
	pA, pB, pC := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/64")
	if err := b.Apply(ctx, []Entry{{pA, hour}, {pB, hour}}, nil); err != nil {
		t.Fatal(err)
	}
	listed(t, ctx, b) // a dump: the copy is taken
	if err := b.Apply(ctx, []Entry{{pC, hour}, {pA, hour.Add(time.Hour)}}, []netip.Prefix{pB, pA}); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	gen, ok := b.cacheGen, b.cacheOK
	b.mu.Unlock()
	got := listed(t, ctx, b)
	b.mu.Lock()
	dumped := b.cacheGen != gen || !b.cacheOK || !ok
	b.mu.Unlock()
	if dumped {
		t.Errorf("List() after the backend's own Apply dumped the sets, want the copy used")
	}
	fresh, err := New(Config{Backend: "nftables", NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	want := listed(t, ctx, fresh) // a new backend has no copy: a dump
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("List() = %v, dump = %v; want %s and %s", got, want, pA, pC)
	}
	for p, exp := range want {
		if g, ok := got[p]; !ok || g.Sub(exp).Abs() > lateTolerance {
			t.Errorf("List()[%s] = %s, %v; the dump says %s", p, g, ok, exp)
		}
	}
	inNS(t, ns, "nft", "delete", "element", "inet", NFTTable, NFTSet4, "{ "+pA.String()+" }")
	if got := listed(t, ctx, b); len(got) != 1 {
		t.Errorf("List() after a hand deletion = %v, want only %s", got, pC)
	}
	// Enough changes to be merged into a new copy (pC is among them).
	many := benchEntries(benchBans(10_000, hour))
	if err := b.Apply(ctx, many, nil); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	gen, merged := b.cacheGen, b.changes == nil
	b.mu.Unlock()
	if !merged {
		t.Errorf("10,000 changes were not merged into the copy")
	}
	got = listed(t, ctx, b)
	b.mu.Lock()
	dumped = b.cacheGen != gen
	b.mu.Unlock()
	if _, ok := got[pC]; dumped || len(got) != len(many) || !ok {
		t.Errorf("List() after 10,000 additions = %d entries (dumped: %v), want %d from the copy", len(got), dumped, len(many))
	}
}
