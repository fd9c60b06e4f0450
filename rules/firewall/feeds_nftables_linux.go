//go:build linux

package firewall

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// The nftables backend's feeds: interval sets in table inet gatehouse and
// a base chain of their own, feeds, so that the ban chain's rules stay
// as Ensure checks them. A feed is replaced in one netlink batch (flush
// the set, add the new elements, rewrite the chain's rules), which
// nf_tables commits as one transaction: packets see the old set or the
// new one, never a set in between.

// nftFeedSockBuf is the socket buffer of a feed's batch: MaxFeedPrefixes
// of each family as ranges of two elements of about 40 bytes each, with
// room to spare (the ban sets' batches of 131,072 prefixes, with
// timeouts, are about 9 MiB).
const nftFeedSockBuf = 64 << 20

func nftFeedSetName(name string, fam int) string {
	if fam == 0 {
		return nftFeedPrefix4 + name
	}
	return nftFeedPrefix6 + name
}

var nftExempt = [2]string{NFTExempt4, NFTExempt6}

// nftFeedBatch builds one feed batch; ids numbers the sets it creates.
type nftFeedBatch struct {
	b   *nftBackend
	c   *nftables.Conn
	t   *nftables.Table
	ids uint32
}

func (fb *nftFeedBatch) set(name string, fam int) *nftables.Set {
	fb.ids++
	kt := nftables.TypeIPAddr
	if fam == 1 {
		kt = nftables.TypeIP6Addr
	}
	return &nftables.Set{Table: fb.t, Name: name, ID: 100 + fb.ids, KeyType: kt, Interval: true}
}

// fill adds the set (if missing), empties it and adds ps as ranges,
// adjacent prefixes merged into one range.
func (fb *nftFeedBatch) fill(s *nftables.Set, ps []netip.Prefix) error {
	if err := fb.c.AddSet(s, nil); err != nil {
		return fb.b.opError("add set", "inet "+NFTTable+" "+s.Name, err)
	}
	fb.c.FlushSet(s)
	var elems []nftables.SetElement
	var end []byte
	for _, p := range ps {
		start, e := prefixRange(p)
		if n := len(elems); n > 0 && end != nil && bytes.Equal(start, end) {
			// Adjacent: the range grows.
			if e == nil {
				elems = elems[:n-1]
			} else {
				elems[n-1].Key = e
			}
		} else {
			elems = append(elems, nftables.SetElement{Key: start})
			if e != nil {
				elems = append(elems, nftables.SetElement{Key: e, IntervalEnd: true})
			}
		}
		end = e
		if e == nil {
			break
		}
	}
	for chunk := range slices.Chunk(elems, 2*nftMsgItems) {
		if err := fb.c.SetAddElements(s, chunk); err != nil {
			return fb.b.opError("add elements", "inet "+NFTTable+" "+s.Name, err)
		}
	}
	return nil
}

// chain adds the feeds chain (if missing) and rewrites its rules: the
// exempt returns, then a drop per feed and family. Each drop rule's
// comment holds its set's prefix count, which status reads instead of
// dumping the set (a dump of an interval set costs the kernel time in
// proportion to the square of its size: seconds at 100,000 prefixes).
func (fb *nftFeedBatch) chain(feeds map[string][2]int) {
	ch := fb.c.AddChain(&nftables.Chain{
		Name:     NFTFeedChain,
		Table:    fb.t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookPrerouting,
		Priority: nftables.ChainPriorityRaw,
		Policy:   ref(nftables.ChainPolicyAccept),
	})
	fb.c.FlushChain(ch)
	for fam := range 2 {
		fb.rule(ch, nftExempt[fam], fam, false, "gatehouse: exempt from feeds")
	}
	for _, n := range slices.Sorted(maps.Keys(feeds)) {
		for fam := range 2 {
			fb.rule(ch, nftFeedSetName(n, fam), fam, true, feedComment(n, feeds[n][fam]))
		}
	}
}

// feedComment is the comment of a feed's drop rule: its name and the
// prefix count of the rule's set.
func feedComment(name string, n int) string {
	return "gatehouse: drop feed " + name + " prefixes " + strconv.Itoa(n)
}

// parseFeedComment reads a comment feedComment wrote.
func parseFeedComment(c string) (name string, n int, ok bool) {
	rest, ok := strings.CutPrefix(c, "gatehouse: drop feed ")
	if !ok {
		return "", 0, false
	}
	name, num, ok := strings.Cut(rest, " prefixes ")
	if !ok || ValidFeedName(name) != nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(num)
	return name, n, err == nil && n >= 0
}

// rule adds `meta nfproto F [tcp dport {ports}] ip saddr @set drop` or,
// without drop, `meta nfproto F ip saddr @set return`.
func (fb *nftFeedBatch) rule(ch *nftables.Chain, set string, fam int, drop bool, comment string) {
	proto, off, n := byte(unix.NFPROTO_IPV6), uint32(8), uint32(16)
	if fam == 0 {
		proto, off, n = unix.NFPROTO_IPV4, 12, 4
	}
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
	verdict := expr.VerdictReturn
	if drop {
		verdict = expr.VerdictDrop
		if len(fb.b.ports) > 0 {
			fb.ids++
			ports := &nftables.Set{Table: fb.t, Name: "__set%d", ID: 100 + fb.ids, Anonymous: true, Constant: true, KeyType: nftables.TypeInetService}
			elems := make([]nftables.SetElement, len(fb.b.ports))
			for i, p := range fb.b.ports {
				elems[i] = nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(p)}
			}
			// An anonymous constant set of a few ports cannot fail to
			// marshal.
			_ = fb.c.AddSet(ports, elems)
			exprs = append(exprs,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: 1, SetName: ports.Name, SetID: ports.ID},
			)
		}
	}
	exprs = append(exprs,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: set},
		&expr.Verdict{Kind: verdict},
	)
	fb.c.AddRule(&nftables.Rule{Table: fb.t, Chain: ch, Exprs: exprs,
		UserData: userdata.AppendString(nil, userdata.TypeComment, comment)})
}

// feedBatch opens a connection for one feed batch and reads the feeds
// the kernel holds, with their prefix counts; done closes it.
func (b *nftBackend) feedBatch(ctx context.Context) (fb *nftFeedBatch, have map[string][2]int, done func(), err error) {
	c, _, done, err := b.connBuf(ctx, nftFeedSockBuf)
	if err != nil {
		return nil, nil, nil, err
	}
	have, err = b.feedCounts(c)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	fb = &nftFeedBatch{b: b, c: c, t: nftTable()}
	fb.c.AddTable(fb.t)
	for fam := range 2 {
		if err := c.AddSet(fb.set(nftExempt[fam], fam), nil); err != nil {
			done()
			return nil, nil, nil, b.opError("add set", "inet "+NFTTable+" "+nftExempt[fam], err)
		}
	}
	return fb, have, done, nil
}

// feedCounts returns the feeds of the table, by their sets, with the
// prefix counts the rules' comments hold (zero for a set whose rule is
// missing).
func (b *nftBackend) feedCounts(c *nftables.Conn) (map[string][2]int, error) {
	names, err := b.feedNames(c)
	if err != nil || len(names) == 0 {
		return map[string][2]int{}, err
	}
	have := make(map[string][2]int, len(names))
	for _, n := range names {
		have[n] = [2]int{}
	}
	t := nftTable()
	rules, err := c.GetRules(t, &nftables.Chain{Name: NFTFeedChain, Table: t})
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return have, nil // no chain yet
		}
		return nil, b.opError("list rules", "inet "+NFTTable+" "+NFTFeedChain, err)
	}
	for _, r := range rules {
		com, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		name, n, ok := parseFeedComment(com)
		if _, known := have[name]; !ok || !known {
			continue
		}
		fam := 1
		if len(r.Exprs) > 1 {
			if cmp, isCmp := r.Exprs[1].(*expr.Cmp); isCmp && len(cmp.Data) == 1 && cmp.Data[0] == unix.NFPROTO_IPV4 {
				fam = 0
			}
		}
		counts := have[name]
		counts[fam] = n
		have[name] = counts
	}
	return have, nil
}

// feedNames lists the feeds of the table by their sets.
func (b *nftBackend) feedNames(c *nftables.Conn) ([]string, error) {
	sets, err := b.feedSets(c)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range sets {
		for _, prefix := range []string{nftFeedPrefix4, nftFeedPrefix6} {
			if n, ok := strings.CutPrefix(s.Name, prefix); ok && ValidFeedName(n) == nil && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// feedSets returns the sets of the table; none when there is no table.
func (b *nftBackend) feedSets(c *nftables.Conn) ([]*nftables.Set, error) {
	exists, err := b.findTable(c)
	if err != nil || !exists {
		return nil, err
	}
	t := nftTable()
	sets, err := c.GetSets(t)
	if err != nil {
		return nil, b.opError("list sets", "inet "+NFTTable, err)
	}
	for _, s := range sets {
		s.Table = t
	}
	return sets, nil
}

func (b *nftBackend) setFeed(ctx context.Context, name string, v4, v6 []netip.Prefix) error {
	fb, have, done, err := b.feedBatch(ctx)
	if err != nil {
		return err
	}
	defer done()
	for fam, ps := range [2][]netip.Prefix{v4, v6} {
		if err := fb.fill(fb.set(nftFeedSetName(name, fam), fam), ps); err != nil {
			return err
		}
	}
	have[name] = [2]int{len(v4), len(v6)}
	fb.chain(have)
	if err := fb.c.Flush(); err != nil {
		return b.opError("netlink batch", "inet "+NFTTable+" "+nftFeedSetName(name, 0), err)
	}
	return nil
}

func (b *nftBackend) removeFeed(ctx context.Context, name string) error {
	fb, have, done, err := b.feedBatch(ctx)
	if err != nil {
		return err
	}
	defer done()
	if _, ok := have[name]; !ok {
		return nil
	}
	delete(have, name)
	fb.chain(have)
	sets, err := b.feedSets(fb.c)
	if err != nil {
		return err
	}
	for _, s := range sets {
		if s.Name == nftFeedSetName(name, 0) || s.Name == nftFeedSetName(name, 1) {
			fb.c.DelSet(s)
		}
	}
	if err := fb.c.Flush(); err != nil {
		return b.opError("netlink batch", "inet "+NFTTable+" "+nftFeedSetName(name, 0), err)
	}
	return nil
}

func (b *nftBackend) setExempt(ctx context.Context, v4, v6 []netip.Prefix) error {
	fb, have, done, err := b.feedBatch(ctx)
	if err != nil {
		return err
	}
	defer done()
	for fam, ps := range [2][]netip.Prefix{v4, v6} {
		if err := fb.fill(fb.set(nftExempt[fam], fam), ps); err != nil {
			return err
		}
	}
	fb.chain(have)
	if err := fb.c.Flush(); err != nil {
		return b.opError("netlink batch", "inet "+NFTTable+" "+NFTExempt4, err)
	}
	return nil
}

// feeds lists the feeds with the prefix counts of their rules'
// comments.
func (b *nftBackend) feeds(ctx context.Context, _ bool) ([]FeedStatus, error) {
	c, done, err := b.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	have, err := b.feedCounts(c)
	if err != nil {
		return nil, err
	}
	out := make([]FeedStatus, 0, len(have))
	for n, counts := range have {
		out = append(out, FeedStatus{Name: n, IPv4: counts[0], IPv6: counts[1]})
	}
	return out, nil
}
