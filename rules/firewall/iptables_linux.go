//go:build linux

package firewall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
)

// iptablesBackend keeps one DROP rule per banned prefix in a chain of its
// own, GATEHOUSE, in the raw table of iptables and ip6tables, jumped to
// from the top of PREROUTING:
//
//	iptables -t raw -N GATEHOUSE
//	iptables -t raw -I PREROUTING 1 [-p tcp -m multiport --dports 80,443] -j GATEHOUSE
//	iptables -t raw -A GATEHOUSE -s 203.0.113.7/32 -j DROP
//	(and the same with ip6tables)
//
// It is for hosts without ipset or nftables, and it is O(n): the kernel
// tries the rules one after the other for every packet, and every change
// rewrites the chain. Keep it to a few thousand bans.
//
// iptables rules have no timeout: an entry stays until the Reconciler
// deletes it when its ban ends, and stays for good if gatehouse stops
// first (until `gatehouse firewall flush`, a reboot or the next start,
// whose first reconcile deletes the entries of bans that ended). List
// reports entries with a zero Expires.
type iptablesBackend struct {
	run   runner
	fam   [2]xtables // [0] iptables, [1] ip6tables
	ports []uint16
	log   *slog.Logger
}

func newIPTables(cfg Config, ports []uint16) (*iptablesBackend, error) {
	run, err := newRunner("iptables", cfg.NetNS)
	if err != nil {
		return nil, err
	}
	b := &iptablesBackend{run: run, ports: ports, log: discard(cfg.Log)}
	for i, base := range []string{"iptables", "ip6tables"} {
		if b.fam[i], err = newXtables(base); err != nil {
			return nil, fmt.Errorf("iptables backend: %w", err)
		}
	}
	b.log.Warn("firewall backend iptables is O(n) in the number of bans: every packet walks one rule per ban; prefer ipset or nftables",
		"backend", "iptables")
	return b, nil
}

// Name returns "iptables".
func (b *iptablesBackend) Name() string { return "iptables" }

func (b *iptablesBackend) jumpSpecs() []string {
	var specs []string
	for _, ps := range portSpecs(b.ports) {
		specs = append(specs, ps+"-j "+IPTablesChain)
	}
	return specs
}

func iptablesJump(spec string) bool {
	return spec == "-j "+IPTablesChain || strings.HasSuffix(spec, " -j "+IPTablesChain)
}

// Ensure creates the chain and the jump rules where missing.
func (b *iptablesBackend) Ensure(ctx context.Context) error {
	for i := range b.fam {
		changed, err := b.fam[i].syncRules(ctx, b.run, iptablesJump, b.jumpSpecs(), IPTablesChain)
		if err != nil {
			return err
		}
		if changed {
			b.log.Info("firewall rule installed", "backend", "iptables", "table", b.fam[i].name+" raw", "chain", "PREROUTING", "target", IPTablesChain)
		}
	}
	return nil
}

// List returns the prefixes of the DROP rules in GATEHOUSE.
func (b *iptablesBackend) List(ctx context.Context) ([]Entry, error) {
	var entries []Entry
	for i := range b.fam {
		have, err := b.list(ctx, i)
		if err != nil {
			return nil, err
		}
		for p := range have {
			entries = append(entries, Entry{Prefix: p})
		}
	}
	return entries, nil
}

// list returns the prefixes banned in family i's chain; none when the
// chain does not exist.
func (b *iptablesBackend) list(ctx context.Context, i int) (map[netip.Prefix]bool, error) {
	x := b.fam[i]
	specs, err := x.rules(ctx, b.run, IPTablesChain)
	if err != nil {
		if oe, ok := err.(*OpError); ok && oe.perm {
			return nil, err
		}
		exists, cerr := x.chainExists(ctx, b.run, IPTablesChain)
		if cerr != nil {
			return nil, err
		}
		if !exists {
			return nil, nil
		}
		// Created in between (by a concurrent Ensure): list it.
		if specs, err = x.rules(ctx, b.run, IPTablesChain); err != nil {
			return nil, err
		}
	}
	have := make(map[netip.Prefix]bool, len(specs))
	for _, spec := range specs {
		// Our rules read "-s PREFIX -j DROP"; anything else in the
		// chain was put there by hand and is left alone.
		f := strings.Fields(spec)
		if len(f) != 4 || f[0] != "-s" || f[2] != "-j" || f[3] != "DROP" {
			continue
		}
		p, err := parsePrefix(f[1])
		if err != nil {
			continue
		}
		have[p] = true
	}
	return have, nil
}

// iptablesChunk is how many rule changes one restore carries.
const iptablesChunk = 5000

// Apply lists the chain, then appends the rules of the prefixes it lacks
// and deletes those of del it has, in one `iptables-restore --noflush`
// per family and chunk (atomic: a chunk goes in whole or not at all). A
// failing chunk is retried rule by rule. Expires is ignored: iptables has
// no timeouts.
func (b *iptablesBackend) Apply(ctx context.Context, add []Entry, del []netip.Prefix) error {
	var ie itemErrors
	var ops [2][]string // by family: restore lines
	var opPrefix [2][]netip.Prefix
	var have [2]map[netip.Prefix]bool
	for i := range have {
		var err error
		if have[i], err = b.list(ctx, i); err != nil {
			return err
		}
		if have[i] == nil {
			have[i] = map[netip.Prefix]bool{}
		}
	}
	adding := map[netip.Prefix]bool{}
	for _, e := range add {
		if !e.Prefix.IsValid() {
			ie.add(&OpError{Backend: "iptables", Op: "apply", Object: e.Prefix.String(), Err: errors.New("invalid prefix")})
			continue
		}
		p := e.Prefix.Masked()
		adding[p] = true
	}
	for _, p := range del {
		if !p.IsValid() {
			ie.add(&OpError{Backend: "iptables", Op: "apply", Object: p.String(), Err: errors.New("invalid prefix")})
			continue
		}
		p = p.Masked()
		i := famIndex(p)
		// A prefix in add and del is replaced; without a timeout to
		// renew, keeping the rule is the same.
		if have[i][p] && !adding[p] {
			ops[i] = append(ops[i], fmt.Sprintf("-D %s -s %s -j DROP\n", IPTablesChain, p))
			opPrefix[i] = append(opPrefix[i], p)
			have[i][p] = false
		}
	}
	for p := range adding {
		i := famIndex(p)
		if !have[i][p] {
			ops[i] = append(ops[i], fmt.Sprintf("-A %s -s %s -j DROP\n", IPTablesChain, p))
			opPrefix[i] = append(opPrefix[i], p)
			have[i][p] = true
		}
	}
	for i := range ops {
		for start := 0; start < len(ops[i]); start += iptablesChunk {
			end := min(start+iptablesChunk, len(ops[i]))
			err := b.restore(ctx, i, ops[i][start:end])
			if err == nil {
				continue
			}
			if oe, ok := err.(*OpError); ok && oe.perm {
				return err
			}
			for j := start; j < end; j++ {
				if err := b.restore(ctx, i, ops[i][j:j+1]); err != nil {
					if oe, ok := err.(*OpError); ok {
						oe.Op, oe.Object = "restore rule", IPTablesChain+" "+opPrefix[i][j].String()
					}
					ie.add(err)
					if ie.n() >= maxItemFailures {
						return ie.err()
					}
				}
			}
		}
	}
	return ie.err()
}

func (b *iptablesBackend) restore(ctx context.Context, i int, lines []string) error {
	var sb strings.Builder
	sb.WriteString("*raw\n")
	for _, l := range lines {
		sb.WriteString(l)
	}
	sb.WriteString("COMMIT\n")
	x := b.fam[i]
	_, err := b.run.run(ctx, "restore rules", "raw "+IPTablesChain, []byte(sb.String()), x.restore, "-w", xtWait, "--noflush")
	return err
}

// Remove deletes the jump rules, then flushes and deletes the chain.
func (b *iptablesBackend) Remove(ctx context.Context) error {
	var errs []error
	for i := range b.fam {
		x := b.fam[i]
		if _, err := x.syncRules(ctx, b.run, iptablesJump, nil, ""); err != nil {
			errs = append(errs, err)
			continue
		}
		exists, err := x.chainExists(ctx, b.run, IPTablesChain)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !exists {
			continue
		}
		stream := fmt.Sprintf("*raw\n-F %s\n-X %s\nCOMMIT\n", IPTablesChain, IPTablesChain)
		if _, err := b.run.run(ctx, "delete chain", "raw "+IPTablesChain, []byte(stream), x.restore, "-w", xtWait, "--noflush"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
