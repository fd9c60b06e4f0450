//go:build linux

package firewall

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The ipset backend's feeds: a set per feed and family, replaced by
// filling a temporary set and swapping the two with IPSET_CMD_SWAP (the
// iptables rule references the set by its index, which the swap gives
// the new content: there is no moment without a set), then destroying
// the temporary one, which holds the old content by then.

// feedSetName returns the name of a feed's set of family fam (0: IPv4),
// or of its temporary set.
func feedSetName(name string, fam int, tmp bool) string {
	switch {
	case fam == 0 && tmp:
		return ipsetFeedTmp4 + name
	case fam == 0:
		return ipsetFeedPrefix4 + name
	case tmp:
		return ipsetFeedTmp6 + name
	}
	return ipsetFeedPrefix6 + name
}

var ipsetExempt = [2]string{IPSetExempt4, IPSetExempt6}

// feedRuleSpec returns the rule that drops the members of a feed set of
// family fam not in the exempt set, per port chunk.
func (b *ipsetBackend) feedRuleSpecs(set string, fam int) []string {
	var specs []string
	for _, ps := range portSpecs(b.ports) {
		specs = append(specs, ps+"-m set --match-set "+set+" src -m set ! --match-set "+ipsetExempt[fam]+" src -j DROP")
	}
	return specs
}

// feedRule recognises the feed rules of family fam, as iptables -S
// prints them.
func feedRule(fam int) func(string) bool {
	prefix := ipsetFeedPrefix4
	if fam == 1 {
		prefix = ipsetFeedPrefix6
	}
	return func(spec string) bool {
		return strings.Contains(spec, "-m set --match-set "+prefix) && strings.HasSuffix(spec, " src -j DROP") &&
			strings.Contains(spec, "--match-set "+ipsetExempt[fam]+" src")
	}
}

// createFeedSet creates a hash:net set without timeouts of maxelem
// entries, with a hash sized for an eighth of that to start with. A set
// of that name that exists is left as it is.
func (b *ipsetBackend) createFeedSet(ctx context.Context, name string, fam int, maxelem uint32) error {
	hashsize := uint32(1) << max(10, bits.Len32(maxelem/8))
	err := b.createSet(ctx, name, ipsetSets[fam].nfproto, func(w *nlWriter) {
		w.be32(ipsetAttrHashSize, hashsize)
		w.be32(ipsetAttrMaxElem, maxelem)
	})
	if errors.Is(err, ipsetErrno(ipsetErrPrivate+7)) || errors.Is(err, syscall.EEXIST) {
		return nil // exists, with another size: it is swapped out or kept
	}
	return err
}

// swap exchanges the names (and so the rules' references) of two sets.
func (b *ipsetBackend) swap(ctx context.Context, a, c string) error {
	s := b.nl
	err := s.do(ctx, "swap sets", func() error {
		seq := s.nextSeq()
		w := nlWriter{b: s.sbuf[:0]}
		m := w.begin(ipsetCmdSwap, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq)
		w.str(ipsetAttrSetName, a)
		w.str(ipsetAttrSetName2, c)
		w.end(m)
		s.sbuf = w.b
		return s.request(w.b, seq, nil)
	})
	if err != nil {
		return b.wrap(err, "swap sets", a+" "+c)
	}
	return nil
}

// fill adds ps to the set name, which has no timeouts.
func (b *ipsetBackend) fill(ctx context.Context, name string, ps []netip.Prefix) error {
	ops := make([]ipsetOp, len(ps))
	for i, p := range ps {
		ops[i] = ipsetOp{p: p, timeout: -1, name: name}
	}
	var ie itemErrors
	for len(ops) > 0 {
		n, err := b.applyBatch(ctx, ops, &ie)
		if err != nil {
			return err
		}
		ops = ops[n:]
		if ie.n() > 0 {
			return ie.err()
		}
	}
	return nil
}

// replaceSet makes the set live hold ps: a new set is filled under the
// temporary name tmp, swapped with live (created empty first if it does
// not exist, so that a rule can reference it) and destroyed.
func (b *ipsetBackend) replaceSet(ctx context.Context, live, tmp string, fam int, ps []netip.Prefix, maxelem uint32) error {
	if err := b.destroy(ctx, tmp); err != nil { // a leftover of an interrupted swap
		return err
	}
	if err := b.createFeedSet(ctx, tmp, fam, maxelem); err != nil {
		return err
	}
	if err := b.fill(ctx, tmp, ps); err != nil {
		return errors.Join(err, b.destroy(ctx, tmp))
	}
	if err := b.fitLive(ctx, live, fam); err != nil {
		return errors.Join(err, b.destroy(ctx, tmp))
	}
	if err := b.createFeedSet(ctx, live, fam, maxelem); err != nil {
		return errors.Join(err, b.destroy(ctx, tmp))
	}
	if err := b.swap(ctx, live, tmp); err != nil {
		return errors.Join(err, b.destroy(ctx, tmp))
	}
	return b.destroy(ctx, tmp)
}

// fitLive destroys the set live if it is not a hash:net of family fam
// without timeouts (made by hand, or by something else): the feed rules,
// which reference it, go first, and come back with the caller's
// syncFeedRules. The feeds do not drop in between: a repair, not a swap.
func (b *ipsetBackend) fitLive(ctx context.Context, live string, fam int) error {
	h, ok, err := b.header(ctx, live)
	if err != nil || !ok {
		return err
	}
	if h.typ == "hash:net" && h.family == ipsetSets[fam].nfproto && !h.timeout {
		return nil
	}
	for f := range 2 {
		if _, err := b.fam[f].syncRules(ctx, b.run, feedRule(f), nil, ""); err != nil {
			return err
		}
	}
	if err := b.destroy(ctx, live); err != nil {
		return err
	}
	b.log.Warn("firewall set re-created: it was not what gatehouse creates", "backend", "ipset", "set", live,
		"found", fmt.Sprintf("%s family %d timeout %v", h.typ, h.family, h.timeout))
	return nil
}

// feedMaxElem sizes a feed set: room for twice n, at least
// minFeedSetSize.
func feedMaxElem(n int) uint32 {
	return uint32(max(minFeedSetSize, 2*n))
}

func (b *ipsetBackend) ensureExempt(ctx context.Context) error {
	for fam := range 2 {
		if err := b.createFeedSet(ctx, ipsetExempt[fam], fam, ipsetExemptMaxElem); err != nil {
			return err
		}
	}
	return nil
}

func (b *ipsetBackend) setFeed(ctx context.Context, name string, v4, v6 []netip.Prefix) error {
	if err := b.ensureExempt(ctx); err != nil {
		return err
	}
	for fam, ps := range [2][]netip.Prefix{v4, v6} {
		if err := b.replaceSet(ctx, feedSetName(name, fam, false), feedSetName(name, fam, true), fam, ps, feedMaxElem(len(ps))); err != nil {
			return err
		}
	}
	return b.syncFeedRules(ctx, "")
}

// syncFeedRules makes the feed rules of PREROUTING those of the feed sets
// the kernel holds, but skip's.
func (b *ipsetBackend) syncFeedRules(ctx context.Context, skip string) error {
	have, err := b.feeds(ctx, false)
	if err != nil {
		return err
	}
	for fam := range 2 {
		var want []string
		for _, f := range have {
			if f.Name != skip {
				want = append(want, b.feedRuleSpecs(feedSetName(f.Name, fam, false), fam)...)
			}
		}
		if _, err := b.fam[fam].syncRules(ctx, b.run, feedRule(fam), want, ""); err != nil {
			return err
		}
	}
	return nil
}

func (b *ipsetBackend) removeFeed(ctx context.Context, name string) error {
	if err := b.syncFeedRules(ctx, name); err != nil {
		return err
	}
	var errs []error
	for fam := range 2 {
		for _, tmp := range []bool{false, true} {
			if err := b.destroy(ctx, feedSetName(name, fam, tmp)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (b *ipsetBackend) setExempt(ctx context.Context, v4, v6 []netip.Prefix) error {
	for fam, ps := range [2][]netip.Prefix{v4, v6} {
		if err := b.replaceSet(ctx, ipsetExempt[fam], ipsetExempt[fam]+"t", fam, ps, ipsetExemptMaxElem); err != nil {
			return err
		}
	}
	return b.syncFeedRules(ctx, "")
}

// feeds lists the feeds by their sets (a feed with a set of either family
// counts), with the header's entry counts.
func (b *ipsetBackend) feeds(ctx context.Context, _ bool) ([]FeedStatus, error) {
	s := b.nl
	var out []FeedStatus
	idx := map[string]int{}
	err := s.do(ctx, "list set headers", func() error {
		out, idx = out[:0], map[string]int{}
		seq := s.nextSeq()
		w := nlWriter{b: s.sbuf[:0]}
		m := w.begin(ipsetCmdList, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
		w.be32(ipsetAttrFlags, ipsetFlagListHeader)
		w.end(m)
		s.sbuf = w.b
		return s.dump(w.b, seq, func(attrs []byte) error {
			msg, err := parseIPSetList(attrs)
			if err != nil {
				return sockError{err}
			}
			if !msg.header {
				return nil
			}
			for fam, prefix := range []string{ipsetFeedPrefix4, ipsetFeedPrefix6} {
				name, ok := strings.CutPrefix(msg.name, prefix)
				if !ok || ValidFeedName(name) != nil {
					continue
				}
				i, seen := idx[name]
				if !seen {
					i = len(out)
					idx[name] = i
					out = append(out, FeedStatus{Name: name})
				}
				if fam == 0 {
					out[i].IPv4 = int(msg.elems)
				} else {
					out[i].IPv6 = int(msg.elems)
				}
			}
			return nil
		})
	})
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return nil, b.wrap(err, "list set headers", "")
	}
	return out, nil
}

// removeFeeds deletes every feed rule and set, and the exempt sets: part
// of Remove.
func (b *ipsetBackend) removeFeeds(ctx context.Context) error {
	var errs []error
	for fam := range 2 {
		if _, err := b.fam[fam].syncRules(ctx, b.run, feedRule(fam), nil, ""); err != nil {
			return err
		}
	}
	have, err := b.feeds(ctx, false)
	if err != nil {
		return err
	}
	for _, f := range have {
		for fam := range 2 {
			for _, tmp := range []bool{false, true} {
				if err := b.destroy(ctx, feedSetName(f.Name, fam, tmp)); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	for fam := range 2 {
		for _, n := range []string{ipsetExempt[fam], ipsetExempt[fam] + "t"} {
			if err := b.destroy(ctx, n); err != nil {
				errs = append(errs, fmt.Errorf("exempt set: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
