//go:build linux

package firewall

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nftBackend keeps the bans in two sets of a table of its own, talking
// netlink to nf_tables (github.com/google/nftables; no nft binary):
//
//	table inet gatehouse {
//		set ban4 { type ipv4_addr; flags interval,timeout; }
//		set ban6 { type ipv6_addr; flags interval,timeout; }
//		chain prerouting {
//			type filter hook prerouting priority raw; policy accept;
//			meta nfproto ipv4 [tcp dport { 80, 443 }] ip saddr @ban4 drop comment "gatehouse: drop ban4 ..."
//			meta nfproto ipv6 [tcp dport { 80, 443 }] ip6 saddr @ban6 drop comment "gatehouse: drop ban6 ..."
//		}
//	}
//
// The sets hold prefixes as intervals (a start element and an interval
// end element), each with the ban's time left as its timeout. Every Apply
// is one netlink batch, which nf_tables commits as one transaction (a
// very large Apply is cut into batches of nftBatchItems prefixes).
//
// Interval sets refuse overlapping elements: a prefix inside another that
// the set holds cannot be added (nor the other way round). The Reconciler
// does not push a ban inside a longer-lasting ban of a shorter prefix;
// the remaining case, an inner ban outlasting the outer one, fails for
// that item and is retried on every pass until one of them ends.
type nftBackend struct {
	netns string
	ports []uint16
	log   *slog.Logger

	mu       sync.Mutex         // guards the cache of List
	cache    []keyed            // the last dump, or a merge of it with changes; never modified, only replaced
	changes  map[pkey]nftChange // the backend's own changes since cache, which they override
	cacheGen uint32             // the ruleset generation cache and changes stand for
	cacheOK  bool
}

func newNFTables(cfg Config, ports []uint16) (*nftBackend, error) {
	if cfg.NetNS != "" {
		if err := validNetNS(cfg.NetNS); err != nil {
			return nil, err
		}
	}
	return &nftBackend{netns: cfg.NetNS, ports: ports, log: discard(cfg.Log)}, nil
}

// Name returns "nftables".
func (b *nftBackend) Name() string { return "nftables" }

// Netlink socket buffers: a batch of nftBatchItems prefixes is a few
// megabytes, far above the default of 208 KiB.
const nftSockBuf = 16 << 20

// nftBatchItems is how many prefixes one netlink batch carries (about 9
// MiB: the kernel's commit of an interval set costs time in proportion
// to the set's size, so at a million prefixes fewer, bigger batches push
// faster; BenchmarkKernelPush), and nftMsgItems how many
// one message does (its element list is a nested attribute, whose length
// field is 16 bits: 64 KiB).
const (
	nftBatchItems = 131072
	nftMsgItems   = 256
)

// Set IDs within a batch. They are set explicitly: google/nftables would
// otherwise allocate them from an unsynchronised package variable.
const (
	nftID4 = 1 + iota
	nftID6
	nftIDPorts4
	nftIDPorts6
)

func (b *nftBackend) opError(op, object string, err error) error {
	return newOpError("nftables", op, object, "", err)
}

func nftTable() *nftables.Table {
	return &nftables.Table{Name: NFTTable, Family: nftables.TableFamilyINet}
}

func nftSet(t *nftables.Table, is4 bool) *nftables.Set {
	s := &nftables.Set{Table: t, Name: NFTSet6, ID: nftID6, KeyType: nftables.TypeIP6Addr, Interval: true, HasTimeout: true}
	if is4 {
		s.Name, s.ID, s.KeyType = NFTSet4, nftID4, nftables.TypeIPAddr
	}
	return s
}

// findTable reports whether table inet gatehouse exists. Its errors keep
// the netlink errno, so EPERM is recognised here.
func (b *nftBackend) findTable(c *nftables.Conn) (bool, error) {
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, b.opError("list tables", "inet", err)
	}
	for _, t := range ts {
		if t.Name == NFTTable {
			return true, nil
		}
	}
	return false, nil
}

// ruleComment is the comment of the rule that drops set's members; it
// says what the rule is, and Ensure compares it to know whether the rule
// is the one it would make.
func (b *nftBackend) ruleComment(set string) string {
	c := "gatehouse: drop " + set
	if len(b.ports) > 0 {
		ps := make([]string, len(b.ports))
		for i, p := range b.ports {
			ps[i] = strconv.Itoa(int(p))
		}
		c += " tcp dport " + strings.Join(ps, ",")
	}
	return c
}

// Ensure inspects the table and builds what is missing in one batch. A
// set or chain that is not what gatehouse makes gets the ban chain and
// sets deleted and built again in the same batch (the reconcile pass
// that follows refills them); the feeds' objects are left alone.
func (b *nftBackend) Ensure(ctx context.Context) error {
	c, done, err := b.conn(ctx)
	if err != nil {
		return err
	}
	defer done()
	exists, err := b.findTable(c)
	if err != nil {
		return err
	}
	t := nftTable()
	var have [2]*nftables.Set
	var chain *nftables.Chain
	var rules []*nftables.Rule
	rebuild := false
	if exists {
		sets, err := c.GetSets(t)
		if err != nil {
			return b.opError("list sets", "inet "+NFTTable, err)
		}
		for _, s := range sets {
			for i, is4 := range []bool{true, false} {
				if want := nftSet(t, is4); s.Name == want.Name {
					have[i] = s
					if s.KeyType.Name != want.KeyType.Name || !s.Interval || !s.HasTimeout || s.IsMap || s.Constant {
						rebuild = true
					}
				}
			}
		}
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
		if err != nil {
			return b.opError("list chains", "inet "+NFTTable, err)
		}
		for _, ch := range chains {
			if ch.Table == nil || ch.Table.Name != NFTTable || ch.Name != NFTChain {
				continue
			}
			chain = ch
			if ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookPrerouting ||
				ch.Priority == nil || *ch.Priority != *nftables.ChainPriorityRaw ||
				ch.Type != nftables.ChainTypeFilter ||
				(ch.Policy != nil && *ch.Policy != nftables.ChainPolicyAccept) {
				rebuild = true
			}
		}
		if chain != nil && !rebuild {
			chain.Table = t
			if rules, err = c.GetRules(t, chain); err != nil {
				return b.opError("list rules", "inet "+NFTTable+" "+NFTChain, err)
			}
		}
	}
	if exists && !rebuild && have[0] != nil && have[1] != nil && chain != nil && b.rulesFit(rules) {
		return nil
	}

	what := "created"
	if rebuild {
		// The ban chain and sets only: the table also holds the feed
		// sets and their chain (feeds_nftables_linux.go), which stay.
		// The chain's rules reference the sets: they go first.
		if chain != nil {
			chain.Table = t
			c.FlushChain(chain)
			c.DelChain(chain)
		}
		for _, s := range have {
			if s != nil {
				s.Table = t
				c.DelSet(s)
			}
		}
		have, chain = [2]*nftables.Set{}, nil
		what = "re-created: it was not what gatehouse creates"
	} else if exists {
		what = "repaired"
	}
	c.AddTable(t)
	for i, is4 := range []bool{true, false} {
		if have[i] == nil {
			if err := c.AddSet(nftSet(t, is4), nil); err != nil {
				return b.opError("add set", "inet "+NFTTable+" "+nftSet(t, is4).Name, err)
			}
		}
	}
	if chain == nil {
		chain = c.AddChain(&nftables.Chain{
			Name:     NFTChain,
			Table:    t,
			Type:     nftables.ChainTypeFilter,
			Hooknum:  nftables.ChainHookPrerouting,
			Priority: nftables.ChainPriorityRaw,
			Policy:   ref(nftables.ChainPolicyAccept),
		})
	} else {
		chain.Table = t
		c.FlushChain(chain)
	}
	for _, is4 := range []bool{true, false} {
		if err := b.addRule(c, t, chain, is4); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return b.opError("netlink batch", "inet "+NFTTable, err)
	}
	if rebuild {
		b.log.Warn("firewall table "+what, "backend", "nftables", "table", "inet "+NFTTable)
	} else {
		b.log.Info("firewall table "+what, "backend", "nftables", "table", "inet "+NFTTable)
	}
	return nil
}

func ref[T any](v T) *T { return &v }

// rulesFit reports whether the chain holds exactly the two rules Ensure
// makes, by their comments.
func (b *nftBackend) rulesFit(rules []*nftables.Rule) bool {
	if len(rules) != 2 {
		return false
	}
	for i, set := range []string{NFTSet4, NFTSet6} {
		got, _ := userdata.GetString(rules[i].UserData, userdata.TypeComment)
		if got != b.ruleComment(set) {
			return false
		}
	}
	return true
}

// addRule adds the rule dropping the sources in the set of one family,
// limited to TCP to b.ports when there are ports.
func (b *nftBackend) addRule(c *nftables.Conn, t *nftables.Table, chain *nftables.Chain, is4 bool) error {
	set := nftSet(t, is4)
	proto, off, n := byte(unix.NFPROTO_IPV6), uint32(8), uint32(16) // ip6 saddr
	portsID := uint32(nftIDPorts6)
	if is4 {
		proto, off, n = unix.NFPROTO_IPV4, 12, 4 // ip saddr
		portsID = nftIDPorts4
	}
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
	if len(b.ports) > 0 {
		ports := &nftables.Set{Table: t, Name: "__set%d", ID: portsID, Anonymous: true, Constant: true, KeyType: nftables.TypeInetService}
		elems := make([]nftables.SetElement, len(b.ports))
		for i, p := range b.ports {
			elems[i] = nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(p)}
		}
		if err := c.AddSet(ports, elems); err != nil {
			return b.opError("add set", "inet "+NFTTable+" ports", err)
		}
		exprs = append(exprs,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: ports.Name, SetID: ports.ID},
		)
	}
	exprs = append(exprs,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)
	c.AddRule(&nftables.Rule{
		Table:    t,
		Chain:    chain,
		Exprs:    exprs,
		UserData: userdata.AppendString(nil, userdata.TypeComment, b.ruleComment(set.Name)),
	})
	return nil
}

// List dumps both sets. A dump costs the kernel time in proportion to
// the square of the set's size (about a second for 100,000 entries), so
// List keeps the last dump with the ruleset generation it was taken at,
// and while the generation has not moved since (no commit by anyone:
// not ours, not a hand-deleted element, not a flushed set) it answers
// from that copy, less the entries that have expired since.
func (b *nftBackend) List(ctx context.Context) ([]Entry, error) {
	var entries []Entry
	err := b.Each(ctx, func(e Entry) { entries = append(entries, e) })
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// Each calls fn for each entry List would return, from the copy of the
// last dump when List would use it, without building the listing. fn
// must not call b.
func (b *nftBackend) Each(ctx context.Context, fn func(Entry)) error {
	c, nl, done, err := b.connWithSocket(ctx)
	if err != nil {
		return err
	}
	defer done()
	gen, genErr := generation(nl)
	if genErr == nil && b.eachCached(gen, fn) {
		return nil
	}
	entries, err := b.dump(c)
	if err != nil {
		return err
	}
	if genErr == nil {
		after, err := generation(nl)
		cache := make([]keyed, len(entries))
		for i, e := range entries {
			cache[i] = keyed{keyOf(e.Prefix), stampOf(e.Expires)}
		}
		b.mu.Lock()
		// Only a dump that no commit overlapped stands for gen.
		b.cache, b.changes, b.cacheGen, b.cacheOK = cache, nil, gen, err == nil && after == gen
		b.mu.Unlock()
	}
	for _, e := range entries {
		fn(e)
	}
	return nil
}

// eachCached calls fn for each live entry of the cache with the changes
// applied, if they stand for the ruleset generation gen, and reports
// whether they did.
func (b *nftBackend) eachCached(gen uint32, fn func(Entry)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.cacheOK || b.cacheGen != gen {
		return false
	}
	b.eachMerged(time.Now(), true, func(k pkey, s stamp) {
		fn(Entry{Prefix: k.prefix(), Expires: s.time()})
	})
	return true
}

// nftChange is one of the backend's own changes to a prefix since the
// last dump: deleted, or added with an expiry.
type nftChange struct {
	del     bool
	expires stamp
}

// eachMerged calls fn for each entry of the cache with the changes
// applied; with live, only for the entries that have not expired at now.
// b.mu is held.
func (b *nftBackend) eachMerged(now time.Time, live bool, fn func(pkey, stamp)) {
	nowN := stampOf(now).n()
	alive := func(exp stamp) bool { return !live || exp.n() == 0 || exp.n() > nowN }
	for _, e := range b.cache {
		if len(b.changes) > 0 {
			if _, changed := b.changes[e.k]; changed {
				continue
			}
		}
		if alive(e.s) {
			fn(e.k, e.s)
		}
	}
	for k, c := range b.changes {
		if !c.del && alive(c.expires) {
			fn(k, c.expires)
		}
	}
}

// dump lists both sets from the kernel.
func (b *nftBackend) dump(c *nftables.Conn) ([]Entry, error) {
	exists, err := b.findTable(c)
	if err != nil || !exists {
		return nil, err
	}
	t := nftTable()
	sets, err := c.GetSets(t)
	if err != nil {
		return nil, b.opError("list sets", "inet "+NFTTable, err)
	}
	var entries []Entry
	for _, s := range sets {
		if s.Name != NFTSet4 && s.Name != NFTSet6 {
			continue
		}
		s.Table = t
		elems, err := c.GetSetElements(s)
		if err != nil {
			return nil, b.opError("list elements", "inet "+NFTTable+" "+s.Name, err)
		}
		// The kernel reported each element's time left at some moment
		// of the dump: counting from its end errs late, which at worst
		// delays a renewal by the dump's duration.
		entries = b.parseElements(entries, elems, s.Name == NFTSet4, time.Now())
	}
	return entries, nil
}

// parseElements appends the prefixes an interval set's elements describe:
// each start element with the interval end element after it (or the end
// of the address space when none follows). Elements that do not pair up
// (the leading zero end element nft(8) adds) are skipped, and so are
// ranges that are not a prefix, which only a hand-made element can be.
func (b *nftBackend) parseElements(entries []Entry, elems []nftables.SetElement, is4 bool, now time.Time) []Entry {
	size := 16
	if is4 {
		size = 4
	}
	slices.SortFunc(elems, func(x, y nftables.SetElement) int {
		if c := bytes.Compare(x.Key, y.Key); c != 0 {
			return c
		}
		// At one key, the end of an interval comes before the start of
		// the next.
		switch {
		case x.IntervalEnd == y.IntervalEnd:
			return 0
		case x.IntervalEnd:
			return -1
		}
		return 1
	})
	var open *nftables.SetElement
	emit := func(end []byte) {
		p, ok := rangePrefix(open.Key, end)
		if !ok {
			b.log.Warn("firewall set holds a range that is not a prefix; left alone", "backend", "nftables",
				"start", fmt.Sprintf("%x", open.Key), "end", fmt.Sprintf("%x", end))
			return
		}
		e := Entry{Prefix: p}
		if open.Timeout > 0 {
			e.Expires = now.Add(open.Expires)
		}
		entries = append(entries, e)
	}
	for i := range elems {
		el := &elems[i]
		if len(el.Key) != size {
			continue
		}
		if el.IntervalEnd {
			if open != nil {
				emit(el.Key)
				open = nil
			}
			continue
		}
		if open != nil {
			emit(nil)
		}
		open = el
	}
	if open != nil {
		emit(nil)
	}
	return entries
}

// prefixRange returns the first address of p and the address after its
// last, as big-endian bytes; end is nil when p reaches the top of the
// address space.
func prefixRange(p netip.Prefix) (start, end []byte) {
	p = p.Masked()
	start = p.Addr().AsSlice()
	end = slices.Clone(start)
	bits := p.Bits()
	for i := range end {
		hostBits := len(end)*8 - bits - (len(end)-1-i)*8
		switch {
		case hostBits >= 8:
			end[i] = 0xff
		case hostBits > 0:
			end[i] |= byte(1)<<hostBits - 1
		}
	}
	// end = last + 1
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return start, end
		}
	}
	return start, nil
}

// rangePrefix returns the prefix covering exactly [start, end), end nil
// meaning the top of the address space, if there is one. It works on the
// address as a 128-bit number: the range is a prefix when its last
// address is its first with the host bits set.
func rangePrefix(start, end []byte) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(start)
	if !ok || (end != nil && len(end) != len(start)) {
		return netip.Prefix{}, false
	}
	sHi, sLo := be128(start)
	lHi, lLo := ^uint64(0), ^uint64(0) // the top of the family; IPv4 sits in the low 32 bits
	if a.Is4() {
		lHi, lLo = 0, 1<<32-1
	}
	if end != nil {
		eHi, eLo := be128(end)
		lHi, lLo = eHi, eLo-1 // last = end - 1
		if eLo == 0 {
			lHi--
		}
	}
	// host = first ^ last must be a run of low ones, all of them clear
	// in first.
	hHi, hLo := sHi^lHi, sLo^lLo
	if sHi&hHi != 0 || sLo&hLo != 0 {
		return netip.Prefix{}, false
	}
	if hHi&(hHi+1) != 0 || (hHi != 0 && hLo != ^uint64(0)) || (hHi == 0 && hLo&(hLo+1) != 0) {
		return netip.Prefix{}, false
	}
	hostBits := bits.OnesCount64(hHi) + bits.OnesCount64(hLo)
	if hostBits > a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()-hostBits), true
}

// be128 reads a 4- or 16-byte big-endian address as a 128-bit number.
func be128(b []byte) (hi, lo uint64) {
	if len(b) == 4 {
		return 0, uint64(binary.BigEndian.Uint32(b))
	}
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// nftItem is one prefix of an Apply: its elements to delete and to add.
type nftItem struct {
	set      *nftables.Set
	prefix   netip.Prefix
	del, add []nftables.SetElement
	expires  time.Time // of the addition: now plus its timeout; zero for none
}

// Apply sends the deletions and additions in one netlink batch per
// nftBatchItems prefixes. A prefix in add and del is deleted and added
// in the same batch, which renews its timeout atomically. nf_tables
// commits a batch whole or not at all; a batch that fails is retried
// prefix by prefix, ignoring deletions of absent elements.
//
// When the ruleset generation moved by exactly Apply's own commits, the
// copy of the last dump that List keeps is brought up to date with what
// Apply changed, so that the next List needs no dump: at a million
// entries a dump takes the kernel minutes.
func (b *nftBackend) Apply(ctx context.Context, add []Entry, del []netip.Prefix) error {
	c, nl, done, err := b.connWithSocket(ctx)
	if err != nil {
		return err
	}
	defer done()
	gen0, genErr := generation(nl)
	commits, clean := 0, true
	items := make(map[netip.Prefix]*nftItem, len(add)+len(del))
	var order []netip.Prefix
	defer func() {
		b.noteApplied(nl, genErr == nil && clean, gen0, commits, items, order)
	}()
	t := nftTable()
	sets := [2]*nftables.Set{nftSet(t, true), nftSet(t, false)}
	now := time.Now()
	var ie itemErrors
	item := func(p netip.Prefix) *nftItem {
		it := items[p]
		if it == nil {
			it = &nftItem{set: sets[famIndex(p)], prefix: p}
			items[p] = it
			order = append(order, p)
		}
		return it
	}
	for _, p := range del {
		if !p.IsValid() {
			ie.add(&OpError{Backend: "nftables", Op: "apply", Object: p.String(), Err: errors.New("invalid prefix")})
			continue
		}
		p = p.Masked()
		start, end := prefixRange(p)
		it := item(p)
		it.del = []nftables.SetElement{{Key: start}}
		if end != nil {
			it.del = append(it.del, nftables.SetElement{Key: end, IntervalEnd: true})
		}
	}
	for _, e := range add {
		if !e.Prefix.IsValid() {
			ie.add(&OpError{Backend: "nftables", Op: "apply", Object: e.Prefix.String(), Err: errors.New("invalid prefix")})
			continue
		}
		d, ok := kernelTimeout(e.Expires, now, time.Millisecond)
		if !ok {
			continue
		}
		p := e.Prefix.Masked()
		start, end := prefixRange(p)
		it := item(p)
		it.add = []nftables.SetElement{{Key: start, Timeout: d}}
		if d > 0 {
			it.expires = now.Add(d)
		}
		if end != nil {
			it.add = append(it.add, nftables.SetElement{Key: end, IntervalEnd: true})
		}
	}
	for batch := range slices.Chunk(order, nftBatchItems) {
		err := b.flushItems(c, batch, items)
		if err == nil {
			commits++
			continue
		}
		clean = false
		if errors.Is(err, ErrNoPermission) || ctx.Err() != nil {
			return errors.Join(append([]error{err}, ie.errs...)...)
		}
		if missing := b.missingSets(c); missing != "" {
			return errors.Join(append([]error{b.opError("apply", "inet "+NFTTable+" "+missing+" (the set does not exist)", err)}, ie.errs...)...)
		}
		for _, p := range batch {
			if err := b.retryItem(c, items[p]); err != nil {
				ie.add(err)
				if ie.n() >= maxItemFailures || ctx.Err() != nil {
					return ie.err()
				}
			}
		}
	}
	return ie.err()
}

// flushItems sends the items of order in one batch: per set and per
// nftMsgItems items a deletion message, then an addition message.
func (b *nftBackend) flushItems(c *nftables.Conn, order []netip.Prefix, items map[netip.Prefix]*nftItem) error {
	for _, is4 := range []bool{true, false} {
		var group []*nftItem
		for _, p := range order {
			if p.Addr().Is4() == is4 {
				group = append(group, items[p])
			}
		}
		for chunk := range slices.Chunk(group, nftMsgItems) {
			var dels, adds []nftables.SetElement
			for _, it := range chunk {
				dels = append(dels, it.del...)
				adds = append(adds, it.add...)
			}
			if len(dels) > 0 {
				if err := c.SetDeleteElements(chunk[0].set, dels); err != nil {
					return b.opError("delete elements", "inet "+NFTTable+" "+chunk[0].set.Name, err)
				}
			}
			if len(adds) > 0 {
				if err := c.SetAddElements(chunk[0].set, adds); err != nil {
					return b.opError("add elements", "inet "+NFTTable+" "+chunk[0].set.Name, err)
				}
			}
		}
	}
	if err := c.Flush(); err != nil {
		return b.opError("netlink batch", "inet "+NFTTable, err)
	}
	return nil
}

// noteApplied updates List's copy of the last dump after an Apply whose
// batches all committed (clean), if the ruleset generation moved from
// gen0 by exactly those commits: nobody else changed the ruleset in
// between, so the kernel holds the copy with Apply's changes.
func (b *nftBackend) noteApplied(nl *netlink.Conn, clean bool, gen0 uint32, commits int, items map[netip.Prefix]*nftItem, order []netip.Prefix) {
	var gen1 uint32
	var err error
	if clean {
		gen1, err = generation(nl)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !clean || err != nil || !b.cacheOK || b.cacheGen != gen0 || gen1 != gen0+uint32(commits) {
		// List compares the generation with the copy's: a copy the
		// kernel moved away from is not used.
		return
	}
	if b.changes == nil {
		b.changes = map[pkey]nftChange{}
	}
	for _, p := range order {
		it := items[p]
		b.changes[keyOf(p)] = nftChange{del: it.add == nil, expires: stampOf(it.expires)}
	}
	b.cacheGen = gen1
	// Merged into a new copy once they are many: each change is copied
	// a bounded number of times, and a single ban costs no copy of a
	// million entries.
	if len(b.changes) > max(4096, len(b.cache)/4) {
		cache := make([]keyed, 0, len(b.cache)+len(b.changes))
		b.eachMerged(time.Time{}, false, func(k pkey, s stamp) { cache = append(cache, keyed{k, s}) })
		b.cache, b.changes = cache, nil
	}
}

// retryItem applies one prefix on its own: its deletion (an absent
// element is fine), then its addition.
func (b *nftBackend) retryItem(c *nftables.Conn, it *nftItem) error {
	object := "inet " + NFTTable + " " + it.set.Name + " " + it.prefix.String()
	if len(it.del) > 0 {
		if err := c.SetDeleteElements(it.set, it.del); err != nil {
			return b.opError("delete element", object, err)
		}
		if err := c.Flush(); err != nil && !errors.Is(err, syscall.ENOENT) {
			return b.opError("delete element", object, err)
		}
	}
	if len(it.add) > 0 {
		if err := c.SetAddElements(it.set, it.add); err != nil {
			return b.opError("add element", object, err)
		}
		if err := c.Flush(); err != nil {
			return b.opError("add element", object, err)
		}
	}
	return nil
}

// missingSets names the sets of ours that do not exist, "" if both do
// (or if that cannot be told).
func (b *nftBackend) missingSets(c *nftables.Conn) string {
	sets, err := c.GetSets(nftTable())
	if err != nil {
		if exists, terr := b.findTable(c); terr == nil && !exists {
			return NFTSet4 + ", " + NFTSet6
		}
		return ""
	}
	var missing []string
	for _, name := range []string{NFTSet4, NFTSet6} {
		if !slices.ContainsFunc(sets, func(s *nftables.Set) bool { return s.Name == name }) {
			missing = append(missing, name)
		}
	}
	return strings.Join(missing, ", ")
}

// Remove deletes table inet gatehouse with everything in it.
func (b *nftBackend) Remove(ctx context.Context) error {
	c, done, err := b.conn(ctx)
	if err != nil {
		return err
	}
	defer done()
	exists, err := b.findTable(c)
	if err != nil || !exists {
		return err
	}
	c.DelTable(nftTable())
	if err := c.Flush(); err != nil {
		return b.opError("delete table", "inet "+NFTTable, err)
	}
	return nil
}

// usable reports whether nf_tables answers: the probe of "auto".
func (b *nftBackend) usable(ctx context.Context) error {
	c, done, err := b.conn(ctx)
	if err != nil {
		return err
	}
	defer done()
	_, err = b.findTable(c)
	return err
}
