//go:build linux

package firewall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ipsetBackend keeps the bans in two ipsets, gatehouse4 and gatehouse6,
// both hash:net with per-entry timeouts, and drops their members with one
// rule per family (per 15 ports) at the top of the raw table's PREROUTING
// chain. In ipset(8) and iptables(8) terms:
//
//	ipset create gatehouse4 hash:net family inet timeout 0 maxelem 1048576
//	ipset create gatehouse6 hash:net family inet6 timeout 0 maxelem 1048576
//	iptables  -t raw -I PREROUTING 1 [-p tcp -m multiport --dports 80,443] -m set --match-set gatehouse4 src -j DROP
//	ip6tables -t raw -I PREROUTING 1 [-p tcp -m multiport --dports 80,443] -m set --match-set gatehouse6 src -j DROP
//
// The sets and their entries are kept over the ipset netlink protocol,
// on one persistent socket (ipsetSock): Apply sends its additions and
// deletions as one message each, many per sendmsg, and reads one error
// reply per failed message, so a bad entry is reported and the rest
// applied. Entry timeouts are the time left of each ban, so the kernel
// drops them by itself even when gatehouse is not running. The ipset tool
// is not needed; the rules are kept with iptables-restore, which runs
// once per Ensure that finds them changed.
//
// Both sets are hash:net, not hash:ip, because a ban is a prefix of any
// length: a manual /24 ban must stay one /24 entry (hash:ip would expand
// it into 256 addresses that List could not map back to the ban), and an
// IPv6 jail ban is a /64. For /32 entries hash:net costs one hash lookup,
// as hash:ip does.
type ipsetBackend struct {
	run   runner
	nl    *ipsetSock
	fam   [2]xtables // [0] iptables, [1] ip6tables
	ports []uint16
	log   *slog.Logger
}

// ipsetSets names the sets by family index, with their ipset family and
// its netfilter number.
var ipsetSets = [2]struct {
	name, family string
	nfproto      uint8
}{
	{IPSetName4, "inet", unix.NFPROTO_IPV4},
	{IPSetName6, "inet6", unix.NFPROTO_IPV6},
}

func newIPSet(cfg Config, ports []uint16) (*ipsetBackend, error) {
	run, err := newRunner("ipset", cfg.NetNS)
	if err != nil {
		return nil, err
	}
	b := &ipsetBackend{run: run, nl: &ipsetSock{netns: cfg.NetNS}, ports: ports, log: discard(cfg.Log)}
	for i, base := range []string{"iptables", "ip6tables"} {
		if b.fam[i], err = newXtables(base); err != nil {
			return nil, fmt.Errorf("ipset backend: %w", err)
		}
	}
	return b, nil
}

// Name returns "ipset".
func (b *ipsetBackend) Name() string { return "ipset" }

// ruleSpecs returns the PREROUTING rules that drop the members of set.
func (b *ipsetBackend) ruleSpecs(set string) []string {
	var specs []string
	for _, ps := range portSpecs(b.ports) {
		specs = append(specs, ps+"-m set --match-set "+set+" src -j DROP")
	}
	return specs
}

// ipsetRule returns what recognises the ipset backend's rules for set:
// a DROP of its members, with or without a port match. Other rules that
// use the set (someone's LOG rule, say) are not ours and stay.
func ipsetRule(set string) func(string) bool {
	drop := "-m set --match-set " + set + " src -j DROP"
	return func(spec string) bool {
		return spec == drop || strings.HasPrefix(spec, "-p tcp -m multiport --dports ") && strings.HasSuffix(spec, " "+drop)
	}
}

// Ensure creates the sets and rules that are missing. A set of the wrong
// kind (type, family, no timeout support, smaller maxelem) is destroyed
// and created again, after its rule is removed; its entries come back
// with the next reconcile.
func (b *ipsetBackend) Ensure(ctx context.Context) error {
	for i, s := range ipsetSets {
		h, ok, err := b.header(ctx, s.name)
		if err != nil {
			return err
		}
		switch {
		case !ok:
			if err := b.create(ctx, s.name, s.nfproto); err != nil {
				return err
			}
			b.log.Info("firewall set created", "backend", "ipset", "set", s.name)
		case !h.fits(s.nfproto):
			// The rule holds a reference: it goes first.
			if _, err := b.fam[i].syncRules(ctx, b.run, ipsetRule(s.name), nil, ""); err != nil {
				return err
			}
			if err := b.destroy(ctx, s.name); err != nil {
				return err
			}
			if err := b.create(ctx, s.name, s.nfproto); err != nil {
				return err
			}
			b.log.Warn("firewall set re-created: it was not what gatehouse creates", "backend", "ipset", "set", s.name,
				"found", fmt.Sprintf("%s family %d timeout %v maxelem %d", h.typ, h.family, h.timeout, h.maxelem))
		}
		changed, err := b.fam[i].syncRules(ctx, b.run, ipsetRule(s.name), b.ruleSpecs(s.name), "")
		if err != nil {
			return err
		}
		if changed {
			b.log.Info("firewall rule installed", "backend", "ipset", "table", b.fam[i].name+" raw", "chain", "PREROUTING", "set", s.name)
		}
	}
	return nil
}

// fits reports whether the set is what create makes: hash:net of the
// family, with timeout support and room for maxSetSize entries.
func (h ipsetListMsg) fits(nfproto uint8) bool {
	return h.typ == "hash:net" && h.family == nfproto && h.timeout && h.maxelem >= maxSetSize
}

// header returns the type and header of the set name; ok is false when
// there is no such set.
func (b *ipsetBackend) header(ctx context.Context, name string) (h ipsetListMsg, ok bool, err error) {
	s := b.nl
	err = s.do(ctx, "list set header", func() error {
		h, ok = ipsetListMsg{}, false
		seq := s.nextSeq()
		w := nlWriter{b: s.sbuf[:0]}
		m := w.begin(ipsetCmdList, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
		w.str(ipsetAttrSetName, name)
		w.be32(ipsetAttrFlags, ipsetFlagListHeader)
		w.end(m)
		s.sbuf = w.b
		err := s.dump(w.b, seq, func(attrs []byte) error {
			msg, err := parseIPSetList(attrs)
			if err != nil {
				return sockError{err}
			}
			if msg.name == name && msg.header {
				h, ok = msg, true
			}
			return nil
		})
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		return err
	})
	if err != nil {
		return h, false, b.wrap(err, "list set header", name)
	}
	return h, ok, nil
}

// wrap makes err an *OpError naming op and object, unless it is one.
func (b *ipsetBackend) wrap(err error, op, object string) error {
	var oe *OpError
	if errors.As(err, &oe) {
		if oe.Object == "" {
			oe.Object = object
		}
		return err
	}
	return b.nl.opError(op, object, err)
}

// create creates a set as Ensure wants it, of the newest revision of
// hash:net both the kernel and gatehouse know.
func (b *ipsetBackend) create(ctx context.Context, name string, nfproto uint8) error {
	return b.createSet(ctx, name, nfproto, func(w *nlWriter) {
		w.be32(ipsetAttrTimeout, 0)
		w.be32(ipsetAttrMaxElem, maxSetSize)
	})
}

// createSet creates a hash:net set of the newest revision both the
// kernel and gatehouse know, with the header attributes data writes. An
// existing set of the same kind and header is no error.
func (b *ipsetBackend) createSet(ctx context.Context, name string, nfproto uint8, data func(w *nlWriter)) error {
	s := b.nl
	err := s.do(ctx, "create set", func() error {
		rev := -1
		seq := s.nextSeq()
		w := nlWriter{b: s.sbuf[:0]}
		m := w.begin(ipsetCmdType, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq)
		w.str(ipsetAttrTypeName, "hash:net")
		w.u8(ipsetAttrFamily, nfproto)
		w.end(m)
		s.sbuf = w.b
		if err := s.request(w.b, seq, func(attrs []byte) error {
			for len(attrs) > 0 {
				typ, val, rest, ok := nextAttr(attrs)
				if !ok {
					return sockError{errIPSetMalformed}
				}
				attrs = rest
				if typ == ipsetAttrRevision && len(val) == 1 {
					rev = int(val[0])
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if rev < 0 {
			return errors.New("kernel named no revision of hash:net")
		}
		seq = s.nextSeq()
		w.b = w.b[:0]
		m = w.begin(ipsetCmdCreate, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq)
		w.str(ipsetAttrSetName, name)
		w.str(ipsetAttrTypeName, "hash:net")
		w.u8(ipsetAttrRevision, uint8(min(rev, ipsetHashNetRevision)))
		w.u8(ipsetAttrFamily, nfproto)
		d := w.nest(ipsetAttrData)
		data(&w)
		w.unnest(d)
		w.end(m)
		s.sbuf = w.b
		return s.request(w.b, seq, nil)
	})
	if err != nil {
		return b.wrap(err, "create set", name)
	}
	return nil
}

// destroy destroys a set that no rule of ours references any more. The
// kernel can hold on to the reference for a moment after the rule is
// gone (iptables-nft releases it after an RCU grace period), so a
// refusal for being busy is retried a few times.
func (b *ipsetBackend) destroy(ctx context.Context, name string) error {
	s := b.nl
	var err error
	for range 20 {
		err = s.do(ctx, "destroy set", func() error {
			seq := s.nextSeq()
			w := nlWriter{b: s.sbuf[:0]}
			m := w.begin(ipsetCmdDestroy, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq)
			w.str(ipsetAttrSetName, name)
			w.end(m)
			s.sbuf = w.b
			return s.request(w.b, seq, nil)
		})
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, ipsetBusy) {
			return b.wrap(err, "destroy set", name)
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return b.wrap(err, "destroy set", name)
		case <-t.C:
		}
	}
	return b.wrap(err, "destroy set", name)
}

// usable reports whether the kernel speaks ipset: the probe of "auto".
func (b *ipsetBackend) usable(ctx context.Context) error {
	s := b.nl
	err := s.do(ctx, "protocol", func() error {
		seq := s.nextSeq()
		w := nlWriter{b: s.sbuf[:0]}
		m := w.begin(ipsetCmdProtocol, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq)
		w.end(m)
		s.sbuf = w.b
		return s.request(w.b, seq, func([]byte) error { return nil })
	})
	if err != nil {
		err = b.wrap(err, "protocol", "")
		if !errors.Is(err, ErrNoPermission) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return err
}

// List returns the members of both sets, read with a netlink dump.
func (b *ipsetBackend) List(ctx context.Context) ([]Entry, error) {
	var entries []Entry
	for _, set := range ipsetSets {
		from := len(entries)
		restart := func() { entries = entries[:from] }
		if err := b.each(ctx, set.name, restart, func(e Entry) { entries = append(entries, e) }); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// Each calls fn for each member of both sets as the dump delivers it,
// without keeping the listing: the Reconciler's full pass reads a million
// entries so. A dump that failed half-way is retried from its start on a
// new socket: fn may see an entry twice.
func (b *ipsetBackend) Each(ctx context.Context, fn func(Entry)) error {
	for _, set := range ipsetSets {
		if err := b.each(ctx, set.name, nil, fn); err != nil {
			return err
		}
	}
	return nil
}

// each calls fn for each member of set. A missing set holds nothing. A
// failed dump is retried from its start: restart, unless nil, is called
// before each attempt.
func (b *ipsetBackend) each(ctx context.Context, set string, restart func(), fn func(Entry)) error {
	s := b.nl
	err := s.do(ctx, "list set", func() error {
		if restart != nil {
			restart()
		}
		seq := s.nextSeq()
		w := nlWriter{b: s.sbuf[:0]}
		m := w.begin(ipsetCmdList, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
		w.str(ipsetAttrSetName, set)
		w.end(m)
		s.sbuf = w.b
		err := s.dump(w.b, seq, func(attrs []byte) error {
			msg, err := parseIPSetList(attrs)
			if err != nil {
				return sockError{err}
			}
			if msg.name != set || msg.adt == nil {
				return nil
			}
			// Timeouts are whole seconds left when the kernel wrote
			// the message, a moment before it is read: counting them
			// from now plus a second errs late, by less than a second
			// more than that moment.
			at := time.Now().Add(time.Second)
			if err := eachIPSetElem(msg.adt, func(e ipsetElem) {
				en := Entry{Prefix: e.prefix}
				if e.timeout > 0 {
					en.Expires = at.Add(time.Duration(e.timeout) * time.Second)
				}
				fn(en)
			}); err != nil {
				return sockError{err}
			}
			return nil
		})
		if errors.Is(err, syscall.ENOENT) {
			return nil // a missing set holds nothing
		}
		return err
	})
	if err != nil {
		return b.wrap(err, "list set", set)
	}
	return nil
}

// ipsetOp is one addition or deletion of an Apply.
type ipsetOp struct {
	p       netip.Prefix // canonical
	del     bool
	timeout int64  // seconds, for an addition; 0: none; -1: the set has no timeouts
	name    string // the set; "": the ban set of p's family
}

func (o ipsetOp) set() string {
	if o.name != "" {
		return o.name
	}
	if o.p.Addr().Is4() {
		return IPSetName4
	}
	return IPSetName6
}

// Apply deletes and adds with one netlink message per prefix, as many
// per sendmsg as the socket's send buffer takes. The messages ask for
// ipset's -exist behaviour (no NLM_F_EXCL): deleting an absent member is
// no error, adding a present one renews its timeout. A prefix in both
// add and del is only re-added: that renews it without a moment out of
// the set. Only the last message of a sendmsg asks for an ack; every
// failed one gets an error reply of its own, so a refused prefix is
// reported and the others applied.
func (b *ipsetBackend) Apply(ctx context.Context, add []Entry, del []netip.Prefix) error {
	now := time.Now()
	var ie itemErrors
	var adding map[netip.Prefix]bool
	if len(add) > 0 && len(del) > 0 {
		adding = make(map[netip.Prefix]bool, len(add))
	}
	ops := make([]ipsetOp, 0, len(add)+len(del))
	for _, e := range add {
		p, err := ipsetFor(e.Prefix)
		if err != nil {
			ie.add(err)
			continue
		}
		d, ok := kernelTimeout(e.Expires, now, time.Second)
		if !ok {
			continue // over already
		}
		if adding != nil {
			adding[p] = true
		}
		ops = append(ops, ipsetOp{p: p, timeout: int64(d / time.Second)})
	}
	for _, p := range del {
		p, err := ipsetFor(p)
		if err != nil {
			ie.add(err)
			continue
		}
		if adding[p] {
			continue
		}
		ops = append(ops, ipsetOp{p: p, del: true})
	}
	for len(ops) > 0 {
		n, err := b.applyBatch(ctx, ops, &ie)
		if err != nil {
			return errors.Join(append([]error{err}, ie.errs...)...)
		}
		ops = ops[n:]
		if ie.n() >= maxItemFailures && len(ops) > 0 {
			// Too many refusals to be about single items: report
			// instead of trying the rest.
			ie.add(fmt.Errorf("ipset: apply: gave up with %d prefixes left", len(ops)))
			return ie.err()
		}
	}
	return ie.err()
}

// applyBatch sends the first ops that fit in one sendmsg and returns how
// many it sent. Refused items go to ie; an error that is about no single
// item (no permission, a missing set, a socket that failed twice) is
// returned.
func (b *ipsetBackend) applyBatch(ctx context.Context, ops []ipsetOp, ie *itemErrors) (int, error) {
	s := b.nl
	var (
		n      int
		failed []error
		whole  error
	)
	err := s.do(ctx, "apply", func() error {
		failed, whole = failed[:0], nil
		w := nlWriter{b: s.sbuf[:0]}
		first := s.seq + 1
		n = 0
		for {
			o := ops[n]
			cmd, timeout := uint16(ipsetCmdAdd), o.timeout
			if o.del {
				// A deletion names no timeout.
				cmd, timeout = ipsetCmdDel, -1
			}
			// A message is at most 100 bytes.
			last := n == len(ops)-1 || len(w.b) >= s.smax-256
			flags := uint16(unix.NLM_F_REQUEST)
			if last {
				flags |= unix.NLM_F_ACK // its ack ends the batch
			}
			m := w.begin(cmd, flags, s.nextSeq())
			w.str(ipsetAttrSetName, o.set())
			w.element(o.p, timeout)
			w.end(m)
			n++
			if last {
				break
			}
		}
		s.sbuf = w.b
		last := s.seq
		if err := s.send(w.b); err != nil {
			return err
		}
		for {
			buf, err := s.recv()
			if err != nil {
				return err
			}
			done, err := eachMsg(buf, func(typ, _ uint16, seq uint32, payload []byte) (bool, error) {
				if typ != unix.NLMSG_ERROR || seq-first > last-first {
					return false, nil // not ours, or stale
				}
				errno, err := errnoOf(payload)
				if err != nil {
					return true, err
				}
				if errno != 0 {
					o := ops[seq-first]
					op := "add"
					if o.del {
						op = "del"
					}
					e := ipsetErrno(errno)
					switch {
					case errors.Is(e, syscall.EPERM):
						whole = b.nl.opError(op, o.set(), e)
					case errors.Is(e, syscall.ENOENT):
						whole = b.nl.opError(op+" into", o.set()+" (the set does not exist)", e)
					default:
						failed = append(failed, b.nl.opError(op, o.set()+" "+o.p.String(), e))
					}
				}
				return seq == last, nil
			})
			if err != nil {
				return err
			}
			if done {
				return nil
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if whole != nil {
		return 0, whole
	}
	for _, e := range failed {
		ie.add(e)
	}
	return n, nil
}

// ipsetFor returns p in canonical form.
func ipsetFor(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return p, &OpError{Backend: "ipset", Op: "apply", Object: p.String(), Err: errors.New("invalid prefix")}
	}
	return p.Masked(), nil
}

// Remove deletes the rules and then the sets: the ban sets', and the
// feed sets' and the exempt sets' (feeds_ipset_linux.go).
func (b *ipsetBackend) Remove(ctx context.Context) error {
	var errs []error
	if err := b.removeFeeds(ctx); err != nil {
		errs = append(errs, err)
	}
	for i, s := range ipsetSets {
		if _, err := b.fam[i].syncRules(ctx, b.run, ipsetRule(s.name), nil, ""); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := b.destroy(ctx, s.name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
