//go:build linux

package firewall

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// xtables drives iptables or ip6tables: the rules the ipset and iptables
// backends keep in the raw table. Rules are read with -S and changed with
// one `iptables-restore --noflush` stream, so a repair is atomic: no
// moment without the drop rule.
type xtables struct {
	name    string // "iptables" or "ip6tables", for messages
	cmd     string // path of iptables / ip6tables
	restore string // path of iptables-restore / ip6tables-restore
}

// newXtables finds the tools of one family: base is "iptables" or
// "ip6tables". The paths are kept unresolved: the xtables-*-multi
// binaries they link to choose their mode by the name they are run as.
func newXtables(base string) (xtables, error) {
	cmd, err := lookTool(base)
	if err != nil {
		return xtables{}, err
	}
	restore, err := lookTool(base + "-restore")
	if err != nil {
		return xtables{}, err
	}
	return xtables{name: base, cmd: cmd, restore: restore}, nil
}

// xtWait is how long iptables waits for the xtables lock, in seconds
// (iptables-legacy; iptables-nft needs no lock).
const xtWait = "5"

// rules returns the rule specs of chain in the raw table, each without
// its leading "-A CHAIN ".
func (x xtables) rules(ctx context.Context, r runner, chain string) ([]string, error) {
	out, err := r.run(ctx, "list rules", "raw "+chain, nil, x.cmd, "-w", xtWait, "-t", "raw", "-S", chain)
	if err != nil {
		return nil, err
	}
	head := "-A " + chain + " "
	var specs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		if spec, ok := strings.CutPrefix(sc.Text(), head); ok {
			specs = append(specs, spec)
		}
	}
	return specs, sc.Err()
}

// chainExists reports whether chain exists in the raw table, without
// listing its rules.
func (x xtables) chainExists(ctx context.Context, r runner, chain string) (bool, error) {
	_, err := r.run(ctx, "check chain", "raw "+chain, nil, x.cmd, "-w", xtWait, "-t", "raw", "-S", chain, "1")
	if err == nil {
		return true, nil
	}
	// -S CHAIN 1 fails with exit status 1 for a missing chain (status
	// 2 is a usage error, 4 a resource problem); it succeeds for an
	// empty one. Anything else (killed, not permitted) is an error.
	var ee *exec.ExitError
	if oe, ok := err.(*OpError); ok && !oe.perm && ctx.Err() == nil && errors.As(err, &ee) && ee.ExitCode() == 1 {
		return false, nil
	}
	return false, err
}

// syncRules makes the rules of raw PREROUTING that ours recognises
// exactly want (specs without "-A PREROUTING "), inserting the missing
// ones at the top of the chain and deleting the others, duplicates
// included, in one atomic restore. With createChain set, the chain of
// that name is created first if it does not exist (the target of a jump
// rule must exist). It reports whether it changed anything.
func (x xtables) syncRules(ctx context.Context, r runner, ours func(spec string) bool, want []string, createChain string) (bool, error) {
	have, err := x.rules(ctx, r, "PREROUTING")
	if err != nil {
		return false, err
	}
	missing := slices.Clone(want)
	var stale []string
	for _, spec := range have {
		if !ours(spec) {
			continue
		}
		if i := slices.Index(missing, spec); i >= 0 {
			missing = slices.Delete(missing, i, i+1)
			continue
		}
		stale = append(stale, spec)
	}
	if len(missing) == 0 && len(stale) == 0 {
		return false, nil
	}
	var b bytes.Buffer
	b.WriteString("*raw\n")
	if createChain != "" && len(missing) > 0 {
		ok, err := x.chainExists(ctx, r, createChain)
		if err != nil {
			return false, err
		}
		if !ok {
			// Only ever for a chain that does not exist: in --noflush
			// mode a declaration of an existing chain flushes it.
			fmt.Fprintf(&b, ":%s - [0:0]\n", createChain)
		}
	}
	for _, spec := range missing {
		fmt.Fprintf(&b, "-I PREROUTING 1 %s\n", spec)
	}
	for _, spec := range stale {
		fmt.Fprintf(&b, "-D PREROUTING %s\n", spec)
	}
	b.WriteString("COMMIT\n")
	if _, err := r.run(ctx, "restore rules", "raw PREROUTING", b.Bytes(), x.restore, "-w", xtWait, "--noflush"); err != nil {
		return false, err
	}
	return true, nil
}

// portSpecs returns the match of TCP destination ports, one per rule:
// multiport takes at most 15 ports, so a longer list makes several rules.
// No ports: one empty match (every packet).
func portSpecs(ports []uint16) []string {
	if len(ports) == 0 {
		return []string{""}
	}
	var specs []string
	for chunk := range slices.Chunk(ports, 15) {
		ps := make([]string, len(chunk))
		for i, p := range chunk {
			ps[i] = strconv.Itoa(int(p))
		}
		specs = append(specs, "-p tcp -m multiport --dports "+strings.Join(ps, ",")+" ")
	}
	return specs
}
