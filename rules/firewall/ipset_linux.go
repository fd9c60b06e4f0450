//go:build linux

package firewall

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ipsetBackend keeps the bans in two ipsets, gatehouse4 and gatehouse6,
// both hash:net with per-entry timeouts, and drops their members with one
// rule per family (per 15 ports) at the top of the raw table's PREROUTING
// chain:
//
//	ipset create gatehouse4 hash:net family inet timeout 0 maxelem 1048576
//	ipset create gatehouse6 hash:net family inet6 timeout 0 maxelem 1048576
//	iptables  -t raw -I PREROUTING 1 [-p tcp -m multiport --dports 80,443] -m set --match-set gatehouse4 src -j DROP
//	ip6tables -t raw -I PREROUTING 1 [-p tcp -m multiport --dports 80,443] -m set --match-set gatehouse6 src -j DROP
//
// Entries are added and deleted with `ipset restore -exist`, whose
// timeouts are the time left of each ban, so the kernel drops them by
// itself even when gatehouse is not running.
//
// Both sets are hash:net, not hash:ip, because a ban is a prefix of any
// length: a manual /24 ban must stay one /24 entry (hash:ip would expand
// it into 256 addresses that List could not map back to the ban), and an
// IPv6 jail ban is a /64. For /32 entries hash:net costs one hash lookup,
// as hash:ip does.
type ipsetBackend struct {
	run   runner
	ipset string
	fam   [2]xtables // [0] iptables, [1] ip6tables
	ports []uint16
	log   *slog.Logger
}

// ipsetSets names the sets by family index, with their ipset family.
var ipsetSets = [2]struct{ name, family string }{
	{IPSetName4, "inet"},
	{IPSetName6, "inet6"},
}

func newIPSet(cfg Config, ports []uint16) (*ipsetBackend, error) {
	run, err := newRunner("ipset", cfg.NetNS)
	if err != nil {
		return nil, err
	}
	b := &ipsetBackend{run: run, ports: ports, log: discard(cfg.Log)}
	if b.ipset, err = lookTool("ipset"); err != nil {
		return nil, fmt.Errorf("ipset backend: %w", err)
	}
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
	headers, err := b.headers(ctx)
	if err != nil {
		return err
	}
	for i, s := range ipsetSets {
		h, ok := headers[s.name]
		switch {
		case !ok:
			if err := b.create(ctx, s.name, s.family); err != nil {
				return err
			}
			b.log.Info("firewall set created", "backend", "ipset", "set", s.name)
		case !h.fits(s.family):
			// The rule holds a reference: it goes first.
			if _, err := b.fam[i].syncRules(ctx, b.run, ipsetRule(s.name), nil, ""); err != nil {
				return err
			}
			if err := b.destroy(ctx, s.name); err != nil {
				return err
			}
			if err := b.create(ctx, s.name, s.family); err != nil {
				return err
			}
			b.log.Warn("firewall set re-created: it was not what gatehouse creates", "backend", "ipset", "set", s.name, "found", h.typ+" "+h.header)
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

func (b *ipsetBackend) create(ctx context.Context, name, family string) error {
	_, err := b.run.run(ctx, "create set", name, nil, b.ipset, "create", name, "hash:net",
		"family", family, "timeout", "0", "maxelem", strconv.Itoa(maxSetSize))
	return err
}

// destroy destroys a set that no rule of ours references any more. The
// kernel can hold on to the reference for a moment after the rule is
// gone (iptables-nft releases it after an RCU grace period), so a
// refusal is retried a few times.
func (b *ipsetBackend) destroy(ctx context.Context, name string) error {
	var err error
	for attempt := range 20 {
		if _, err = b.run.run(ctx, "destroy set", name, nil, b.ipset, "destroy", name); err == nil {
			return nil
		}
		if oe, ok := err.(*OpError); ok && oe.perm {
			return err
		}
		if attempt == 0 {
			exists, lerr := b.exists(ctx, name)
			if lerr != nil {
				return lerr
			}
			if !exists {
				return nil
			}
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
	return err
}

// ipsetHeader is a set's type and header line, as `ipset list -t` shows.
type ipsetHeader struct {
	typ    string // "hash:net"
	header string // "family inet hashsize 1024 maxelem 1048576 timeout 0 ..."
}

// fits reports whether the set is what create makes: hash:net of the
// family, with timeout support and room for maxSetSize entries.
func (h ipsetHeader) fits(family string) bool {
	if h.typ != "hash:net" {
		return false
	}
	f := strings.Fields(h.header)
	opt := map[string]string{}
	for i := 0; i+1 < len(f); i += 2 {
		opt[f[i]] = f[i+1]
	}
	_, timeout := opt["timeout"]
	maxelem, _ := strconv.Atoi(opt["maxelem"])
	return opt["family"] == family && timeout && maxelem >= maxSetSize
}

// headers returns the type and header of every set, by name.
func (b *ipsetBackend) headers(ctx context.Context) (map[string]ipsetHeader, error) {
	out, err := b.run.run(ctx, "list sets", "", nil, b.ipset, "list", "-t")
	if err != nil {
		return nil, err
	}
	hs := map[string]ipsetHeader{}
	var name string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch k {
		case "Name":
			name = v
			hs[name] = ipsetHeader{}
		case "Type":
			h := hs[name]
			h.typ = v
			hs[name] = h
		case "Header":
			h := hs[name]
			h.header = v
			hs[name] = h
		}
	}
	return hs, sc.Err()
}

// exists reports whether a set of that name exists.
func (b *ipsetBackend) exists(ctx context.Context, name string) (bool, error) {
	out, err := b.run.run(ctx, "list set names", "", nil, b.ipset, "list", "-n")
	if err != nil {
		return false, err
	}
	for line := range strings.Lines(string(out)) {
		if strings.TrimSpace(line) == name {
			return true, nil
		}
	}
	return false, nil
}

// List returns the members of both sets.
func (b *ipsetBackend) List(ctx context.Context) ([]Entry, error) {
	var entries []Entry
	for _, s := range ipsetSets {
		out, err := b.run.run(ctx, "save set", s.name, nil, b.ipset, "save", s.name)
		if err != nil {
			if oe, ok := err.(*OpError); ok && oe.perm {
				return nil, err
			}
			exists, lerr := b.exists(ctx, s.name)
			if lerr != nil {
				return nil, err
			}
			if !exists {
				continue // a missing set holds nothing
			}
			// Created in between (by a concurrent Ensure): save it.
			if out, err = b.run.run(ctx, "save set", s.name, nil, b.ipset, "save", s.name); err != nil {
				return nil, err
			}
		}
		// Timeouts are whole seconds left at some moment of the save:
		// counting from its end errs late, by less than a second more
		// than the save took.
		entries, err = parseIPSetSave(entries, out, s.name, time.Now())
		if err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// parseIPSetSave appends the members that `ipset save set` printed in out:
// lines "add SET ADDR[/BITS] [timeout SECONDS] ...", the timeout being
// the time left at now (0: the entry has none).
func parseIPSetSave(entries []Entry, out []byte, set string, now time.Time) ([]Entry, error) {
	head := "add " + set + " "
	for line := range bytes.Lines(out) {
		rest, ok := bytes.CutPrefix(line, []byte(head))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) == 0 {
			continue
		}
		p, err := parsePrefix(f[0])
		if err != nil {
			return entries, fmt.Errorf("ipset: save set %s: %w", set, err)
		}
		e := Entry{Prefix: p}
		for i := 1; i+1 < len(f); i += 2 {
			if f[i] != "timeout" {
				continue
			}
			secs, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return entries, fmt.Errorf("ipset: save set %s: %s: timeout %q: %w", set, f[0], f[i+1], err)
			}
			if secs > 0 {
				e.Expires = now.Add(time.Duration(secs) * time.Second)
			}
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// parsePrefix parses "ADDR/BITS" or a lone address (a full-length prefix).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ipsetChunk is how many lines one `ipset restore` is fed.
const ipsetChunk = 20000

// ipsetLine is one line of a restore stream, with the prefix it is about.
type ipsetLine struct {
	text   string
	prefix netip.Prefix
	set    string
}

// Apply deletes and adds through `ipset restore -exist`, which ignores
// the deletion of absent members and renews the timeout of present ones.
// A prefix in both add and del is only re-added: that renews it without
// a moment out of the set. ipset restore applies a stream line by line
// and stops at the first failing one, which it names: the failure is
// kept and the stream resumes after it.
func (b *ipsetBackend) Apply(ctx context.Context, add []Entry, del []netip.Prefix) error {
	now := time.Now()
	var ie itemErrors
	adding := make(map[netip.Prefix]bool, len(add))
	var lines []ipsetLine
	for _, e := range add {
		set, p, err := ipsetFor(e.Prefix)
		if err != nil {
			ie.add(err)
			continue
		}
		d, ok := kernelTimeout(e.Expires, now, time.Second)
		if !ok {
			continue // over already
		}
		adding[p] = true
		lines = append(lines, ipsetLine{text: fmt.Sprintf("add %s %s timeout %d\n", set, p, int64(d/time.Second)), prefix: p, set: set})
	}
	for _, p := range del {
		set, p, err := ipsetFor(p)
		if err != nil {
			ie.add(err)
			continue
		}
		if adding[p] {
			continue
		}
		lines = append(lines, ipsetLine{text: fmt.Sprintf("del %s %s\n", set, p), prefix: p, set: set})
	}
	for len(lines) > 0 {
		n := min(len(lines), ipsetChunk)
		failed, err := b.restore(ctx, lines[:n])
		switch {
		case err == nil:
			lines = lines[n:]
		case failed < 0:
			// No line named: permission, a missing set, a killed
			// process. Nothing more will go through.
			return errors.Join(append([]error{err}, ie.errs...)...)
		default:
			ie.add(err)
			lines = lines[failed+1:]
			if ie.n() >= maxItemFailures {
				// Too many refusals to be about single items: report
				// instead of trying the rest one by one.
				ie.add(fmt.Errorf("ipset: restore: gave up with %d lines left", len(lines)))
				return ie.err()
			}
		}
	}
	return ie.err()
}

// ipsetFor returns the set of p's family and p in canonical form.
func ipsetFor(p netip.Prefix) (string, netip.Prefix, error) {
	if !p.IsValid() {
		return "", p, &OpError{Backend: "ipset", Op: "apply", Object: p.String(), Err: errors.New("invalid prefix")}
	}
	p = p.Masked()
	if p.Addr().Is4() {
		return IPSetName4, p, nil
	}
	return IPSetName6, p, nil
}

// restoreLine finds the line number in ipset's "Error in line N: ...".
var restoreLine = regexp.MustCompile(`Error in line (\d+):`)

// restore feeds lines to `ipset restore -exist`. When it fails at a line
// it names, restore returns that line's index (the lines before it were
// applied) and an error about its prefix; otherwise -1.
func (b *ipsetBackend) restore(ctx context.Context, lines []ipsetLine) (int, error) {
	var stream bytes.Buffer
	for _, l := range lines {
		stream.WriteString(l.text)
	}
	_, err := b.run.run(ctx, "restore", "", stream.Bytes(), b.ipset, "restore", "-exist")
	if err == nil {
		return 0, nil
	}
	oe, ok := err.(*OpError)
	if !ok || oe.perm {
		return -1, err
	}
	m := restoreLine.FindStringSubmatch(oe.Stderr)
	if m == nil {
		return -1, err
	}
	n, _ := strconv.Atoi(m[1])
	if n < 1 || n > len(lines) {
		return -1, err
	}
	l := lines[n-1]
	if exists, lerr := b.exists(ctx, l.set); lerr == nil && !exists {
		oe.Op, oe.Object = "restore into", l.set+" (the set does not exist)"
		return -1, oe
	}
	oe.Op, oe.Object = strings.Fields(l.text)[0], l.set+" "+l.prefix.String()
	return n - 1, oe
}

// Remove deletes the rules and then the sets.
func (b *ipsetBackend) Remove(ctx context.Context) error {
	var errs []error
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
