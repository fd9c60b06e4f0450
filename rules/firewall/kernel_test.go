//go:build linux

package firewall

import (
	"context"
	"errors"
	"gatehouse/rules/testenv"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/rules"

	"github.com/prometheus/client_golang/prometheus"
)

// kernelCase describes, for the conformance test, how to reach behind a
// backend's back.
type kernelCase struct {
	name string
	// timeouts: the kernel entries expire by themselves.
	timeouts bool
	// delEntry is the command that deletes p's entry by hand.
	delEntry func(p netip.Prefix) []string
	// wreck are commands that empty or delete the backend's objects.
	wreck [][]string
	// misfit are commands that leave objects of gatehouse's names but
	// not as gatehouse makes them (from an older version, or by hand):
	// Ensure must set them right.
	misfit [][]string
	// reject returns a prefix the kernel refuses, after the entries
	// that make it refuse (nil: the backend has none to refuse).
	reject func(n *testNet) (bad netip.Prefix, before []netip.Prefix)
}

var kernelCases = []kernelCase{
	{
		name:     "ipset",
		timeouts: true,
		delEntry: func(p netip.Prefix) []string {
			set := IPSetName6
			if p.Addr().Is4() {
				set = IPSetName4
			}
			return []string{"ipset", "del", set, p.String()}
		},
		wreck: [][]string{
			{"iptables", "-t", "raw", "-D", "PREROUTING", "-m", "set", "--match-set", IPSetName4, "src", "-j", "DROP"},
			{"ipset", "destroy", IPSetName4},
			{"ipset", "flush", IPSetName6},
		},
		misfit: [][]string{
			{"ipset", "create", IPSetName4, "hash:ip", "family", "inet"},
			{"ipset", "add", IPSetName4, "192.0.2.50"},
		},
		reject: func(*testNet) (netip.Prefix, []netip.Prefix) {
			// hash:net takes prefixes of 1 to 32 bits, not /0.
			return netip.MustParsePrefix("0.0.0.0/0"), nil
		},
	},
	{
		name:     "nftables",
		timeouts: true,
		delEntry: func(p netip.Prefix) []string {
			set := NFTSet6
			if p.Addr().Is4() {
				set = NFTSet4
			}
			return []string{"nft", "delete", "element", "inet", NFTTable, set, "{ " + p.String() + " }"}
		},
		wreck: [][]string{{"nft", "delete", "table", "inet", NFTTable}},
		misfit: [][]string{
			{"nft", "add", "table", "inet", NFTTable},
			{"nft", "add", "set", "inet", NFTTable, NFTSet4, "{ type ipv4_addr; }"},
			{"nft", "add", "element", "inet", NFTTable, NFTSet4, "{ 192.0.2.50 }"},
		},
		reject: func(*testNet) (netip.Prefix, []netip.Prefix) {
			// An interval set refuses an interval inside another.
			return netip.MustParsePrefix("198.51.100.7/32"), []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
		},
	},
	{
		name:     "iptables",
		timeouts: false,
		delEntry: func(p netip.Prefix) []string {
			tool := "ip6tables"
			if p.Addr().Is4() {
				tool = "iptables"
			}
			return []string{tool, "-t", "raw", "-D", IPTablesChain, "-s", p.String(), "-j", "DROP"}
		},
		wreck: [][]string{
			{"iptables", "-t", "raw", "-F", IPTablesChain},
			{"ip6tables", "-t", "raw", "-D", "PREROUTING", "-j", IPTablesChain},
			{"ip6tables", "-t", "raw", "-F", IPTablesChain},
			{"ip6tables", "-t", "raw", "-X", IPTablesChain},
		},
		misfit: [][]string{
			{"iptables", "-t", "raw", "-N", IPTablesChain},
			{"iptables", "-t", "raw", "-A", IPTablesChain, "-s", "192.0.2.50", "-j", "ACCEPT"},
			{"iptables", "-t", "raw", "-A", "PREROUTING", "-p", "tcp", "-m", "multiport", "--dports", "1", "-j", IPTablesChain},
		},
	},
}

// TestBackends runs the conformance test against every backend, each in
// namespaces of its own.
func TestBackends(t *testing.T) {
	testenv.Netns(t, kernelTools...)
	for _, kc := range kernelCases {
		t.Run(kc.name, func(t *testing.T) {
			t.Parallel()
			testConformance(t, kc)
		})
	}
}

// testConformance is what every backend must do, shown with real packets
// between two namespaces.
func testConformance(t *testing.T, kc kernelCase) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	n := newTestNet(t)
	port, port2 := n.listen(t), n.listen(t)
	foreign := makeForeignObjects(t, n.srv)
	logs := &logRecorder{}
	b, err := New(Config{Backend: kc.name, NetNS: n.srv, Log: slog.New(logs)})
	if err != nil {
		t.Fatalf("New(%q) = %v", kc.name, err)
	}
	if got := b.Name(); got != kc.name {
		t.Errorf("Name() = %q, want %q", got, kc.name)
	}
	hour := time.Now().Add(time.Hour)

	t.Run("ensure", func(t *testing.T) {
		n.connects(t, n.cli4, n.srv4, port)
		for _, cmd := range kc.misfit {
			inNS(t, n.srv, cmd...)
		}
		before := logs.len()
		if err := b.Ensure(ctx); err != nil {
			t.Fatalf("Ensure() = %v", err)
		}
		if msgs := logs.since(before, "firewall"); len(msgs) == 0 {
			t.Errorf("Ensure over misfit objects logged nothing, want the repair said")
		}
		if err := b.Ensure(ctx); err != nil { // idempotent
			t.Fatalf("Ensure() again = %v", err)
		}
		before = logs.len()
		if err := b.Ensure(ctx); err != nil {
			t.Fatalf("Ensure() a third time = %v", err)
		}
		if msgs := logs.since(before, "firewall"); len(msgs) != 0 {
			t.Errorf("Ensure on a kernel in order changed something: logged %q", msgs)
		}
		if got := listed(t, ctx, b); len(got) != 0 {
			t.Errorf("List() after Ensure = %v, want nothing", got)
		}
		n.connects(t, n.cli4, n.srv4, port)
		n.connects(t, n.cli6a, n.srv6a, port)
	})

	t.Run("ban drops", func(t *testing.T) {
		if err := b.Apply(ctx, []Entry{{n.cli4Net, hour}, {n.cli6aNet, hour}}, nil); err != nil {
			t.Fatalf("Apply() = %v", err)
		}
		got := listed(t, ctx, b)
		for _, p := range []netip.Prefix{n.cli4Net, n.cli6aNet} {
			exp, ok := got[p]
			switch {
			case !ok:
				t.Errorf("List() = %v, want %s in it", got, p)
			case kc.timeouts && (exp.Before(hour.Add(-earlyTolerance)) || exp.After(hour.Add(lateTolerance))):
				t.Errorf("List()[%s] expires %s, want about %s", p, exp, hour)
			case !kc.timeouts && !exp.IsZero():
				t.Errorf("List()[%s] expires %s, want zero (no kernel timeouts)", p, exp)
			}
		}
		if len(got) != 2 {
			t.Errorf("List() = %v, want 2 entries", got)
		}
		n.dropped(t, n.cli4, n.srv4, port)
		n.connects(t, n.other4, n.srv4, port)
		n.dropped(t, n.cli6a, n.srv6a, port)
		n.connects(t, n.cli6b, n.srv6b, port)
	})

	t.Run("apply is idempotent", func(t *testing.T) {
		absent := netip.MustParsePrefix("192.0.2.0/24")
		if err := b.Apply(ctx, []Entry{{n.cli4Net, hour}, {n.cli6aNet, hour}}, []netip.Prefix{absent}); err != nil {
			t.Fatalf("Apply() of present entries and an absent deletion = %v", err)
		}
		if got := listed(t, ctx, b); len(got) != 2 {
			t.Errorf("List() = %v, want the 2 entries once", got)
		}
	})

	if kc.timeouts {
		t.Run("replace renews the timeout", func(t *testing.T) {
			later := time.Now().Add(3 * time.Hour)
			if err := b.Apply(ctx, []Entry{{n.cli4Net, later}}, []netip.Prefix{n.cli4Net}); err != nil {
				t.Fatalf("Apply() = %v", err)
			}
			if exp := listed(t, ctx, b)[n.cli4Net]; exp.Before(later.Add(-earlyTolerance)) || exp.After(later.Add(lateTolerance)) {
				t.Errorf("List()[%s] expires %s after the replace, want about %s", n.cli4Net, exp, later)
			}
			n.dropped(t, n.cli4, n.srv4, port)
		})
	}

	t.Run("ports", func(t *testing.T) {
		pb, err := New(Config{Backend: kc.name, NetNS: n.srv, Ports: []uint16{port}})
		if err != nil {
			t.Fatalf("New(ports) = %v", err)
		}
		if err := pb.Ensure(ctx); err != nil {
			t.Fatalf("Ensure() with ports = %v", err)
		}
		n.dropped(t, n.cli4, n.srv4, port)
		n.connects(t, n.cli4, n.srv4, port2)
		n.dropped(t, n.cli6a, n.srv6a, port)
		n.connects(t, n.cli6a, n.srv6a, port2)
		if err := b.Ensure(ctx); err != nil { // back to every port
			t.Fatalf("Ensure() without ports = %v", err)
		}
		n.dropped(t, n.cli4, n.srv4, port2)
		if got := listed(t, ctx, b); len(got) != 2 {
			t.Errorf("List() after changing the rules = %v, want the 2 entries kept", got)
		}
	})

	if kc.reject != nil {
		t.Run("failed items are reported, the rest applied", func(t *testing.T) {
			bad, before := kc.reject(n)
			var setup []Entry
			for _, p := range before {
				setup = append(setup, Entry{p, hour})
			}
			if err := b.Apply(ctx, setup, nil); err != nil {
				t.Fatalf("Apply(%v) = %v", setup, err)
			}
			good1, good2 := netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("2001:db8:1::/64")
			err := b.Apply(ctx, []Entry{{good1, hour}, {bad, hour}, {good2, hour}}, nil)
			var oe *OpError
			if err == nil || !errors.As(err, &oe) || !strings.Contains(err.Error(), bad.String()) {
				t.Errorf("Apply() with %s = %v, want an *OpError naming it", bad, err)
			}
			got := listed(t, ctx, b)
			if _, ok := got[good1]; !ok {
				t.Errorf("List() = %v, want %s applied beside the failure", got, good1)
			}
			if _, ok := got[good2]; !ok {
				t.Errorf("List() = %v, want %s applied beside the failure", got, good2)
			}
			if err := b.Apply(ctx, nil, append([]netip.Prefix{good1, good2}, before...)); err != nil {
				t.Errorf("Apply() deleting them = %v", err)
			}
		})
	}

	t.Run("reconciler repairs", func(t *testing.T) {
		bans := rules.NewBanList(rules.BanListConfig{})
		for _, p := range []netip.Prefix{n.cli4Net, n.cli6aNet} {
			if _, err := bans.Ban(rules.Ban{Prefix: p, Until: hour}); err != nil {
				t.Fatal(err)
			}
		}
		reg := prometheus.NewRegistry()
		r, err := NewReconciler(ReconcilerConfig{Backend: b, Bans: bans, Interval: 200 * time.Millisecond, Registerer: reg, Log: slog.New(logs)})
		if err != nil {
			t.Fatal(err)
		}
		// An entry no ban asks for: the first pass deletes it.
		stale := netip.MustParsePrefix("192.0.2.99/32")
		if err := b.Apply(ctx, []Entry{{stale, hour}}, nil); err != nil {
			t.Fatal(err)
		}
		stop := startRun(t, ctx, r)
		want := func(ps ...netip.Prefix) func() bool {
			return func() bool {
				got := listed(t, ctx, b)
				if len(got) != len(ps) {
					return false
				}
				for _, p := range ps {
					if _, ok := got[p]; !ok {
						return false
					}
				}
				return true
			}
		}
		waitFor(t, "kernel holds the bans, not the stale entry", 10*time.Second, want(n.cli4Net, n.cli6aNet))

		inNS(t, n.srv, kc.delEntry(n.cli4Net)...)
		n.connects(t, n.cli4, n.srv4, port) // really gone
		waitFor(t, "hand-deleted entry restored", 10*time.Second, want(n.cli4Net, n.cli6aNet))
		n.dropped(t, n.cli4, n.srv4, port)

		// Wrecked while gatehouse is stopped (a running reconciler could
		// put a rule back between two commands and make the next fail),
		// repaired by the first pass when it runs again.
		stop()
		for _, cmd := range kc.wreck {
			inNS(t, n.srv, cmd...)
		}
		n.connects(t, n.cli4, n.srv4, port)
		n.connects(t, n.cli6a, n.srv6a, port)
		stop = startRun(t, ctx, r)
		waitFor(t, "wrecked objects restored", 10*time.Second, want(n.cli4Net, n.cli6aNet))
		n.dropped(t, n.cli4, n.srv4, port)
		n.dropped(t, n.cli6a, n.srv6a, port)
		if drift := counterValue(t, r.m.drift); drift < 3 {
			t.Errorf("gatehouse_firewall_drift_total = %v, want at least 3 (the deleted entry, and two lost with the wrecked objects); log:\n%s",
				drift, strings.Join(logs.since(0, ""), "\n"))
		}

		// A new ban reaches the kernel without waiting for the interval
		// (which is short here, so this only shows it arrives).
		if _, err := bans.Ban(rules.Ban{Prefix: n.other4Net, Until: hour}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "new ban in the kernel", 5*time.Second, want(n.cli4Net, n.cli6aNet, n.other4Net))
		n.dropped(t, n.other4, n.srv4, port)
		bans.Unban(n.other4Net)
		waitFor(t, "lifted ban out of the kernel", 5*time.Second, want(n.cli4Net, n.cli6aNet))
		n.connects(t, n.other4, n.srv4, port)

		st, err := r.Status(ctx)
		if err != nil {
			t.Fatalf("Status() = %v", err)
		}
		if st.Backend != kc.name || st.IPv4 != 1 || st.IPv6 != 1 || st.Want != 2 || st.Missing != 0 || st.Stale != 0 {
			t.Errorf("Status() = %+v, want %s with 1 IPv4 and 1 IPv6 entry, 2 wanted, none missing or stale", st, kc.name)
		}
		if got := gathered(t, reg); !slices.Equal(got, metricNames) {
			t.Errorf("metrics registered: %q, want %q", got, metricNames)
		}

		stop()
		if got := listed(t, ctx, b); len(got) != 2 {
			t.Errorf("List() after Run returned = %v, want the entries left in place", got)
		}
	})

	if kc.timeouts {
		t.Run("entries expire in the kernel", func(t *testing.T) {
			if err := b.Apply(ctx, []Entry{{n.other4Net, time.Now().Add(2 * time.Second)}}, nil); err != nil {
				t.Fatalf("Apply() = %v", err)
			}
			n.dropped(t, n.other4, n.srv4, port)
			waitFor(t, "entry with a 2s timeout gone", 10*time.Second, func() bool {
				_, ok := listed(t, ctx, b)[n.other4Net]
				return !ok
			})
			n.connects(t, n.other4, n.srv4, port)
			// Banned again after the ban ran out (the kernel may still
			// hold remains of the old entry until its next commit).
			if err := b.Apply(ctx, []Entry{{n.other4Net, hour}}, nil); err != nil {
				t.Fatalf("Apply() of the expired prefix again = %v", err)
			}
			n.dropped(t, n.other4, n.srv4, port)
			if err := b.Apply(ctx, nil, []netip.Prefix{n.other4Net}); err != nil {
				t.Fatalf("Apply() deleting it = %v", err)
			}
		})
	}

	t.Run("remove leaves no trace", func(t *testing.T) {
		if err := b.Remove(ctx); err != nil {
			t.Fatalf("Remove() = %v", err)
		}
		if trace := ourObjects(t, n.srv); trace != "" {
			t.Errorf("after Remove the kernel still holds:\n%s", trace)
		}
		if got := listed(t, ctx, b); len(got) != 0 {
			t.Errorf("List() after Remove = %v, want nothing", got)
		}
		n.connects(t, n.cli4, n.srv4, port)
		n.connects(t, n.cli6a, n.srv6a, port)
		if err := b.Remove(ctx); err != nil {
			t.Errorf("Remove() again = %v, want nil", err)
		}
	})

	if got := snapshotForeign(t, n.srv); got != foreign {
		t.Errorf("objects gatehouse did not create changed:\nbefore:\n%s\nafter:\n%s", foreign, got)
	}
}

// startRun runs r until the returned stop is called (at the latest when
// the test ends), which checks that Run returned nil.
func startRun(t testing.TB, ctx context.Context, r *Reconciler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run() = %v, want nil after cancel", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// listed returns b's entries by prefix, failing the test on an error.
func listed(t testing.TB, ctx context.Context, b Backend) map[netip.Prefix]time.Time {
	t.Helper()
	es, err := b.List(ctx)
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	m := make(map[netip.Prefix]time.Time, len(es))
	for _, e := range es {
		if _, dup := m[e.Prefix]; dup {
			t.Errorf("List() has %s twice", e.Prefix)
		}
		m[e.Prefix] = e.Expires
	}
	return m
}

// makeForeignObjects creates, in ns, objects of every kind gatehouse uses
// but not gatehouse's, and returns their listing.
func makeForeignObjects(t testing.TB, ns string) string {
	t.Helper()
	for _, cmd := range [][]string{
		{"ipset", "create", "other", "hash:ip", "family", "inet"},
		{"ipset", "add", "other", "192.0.2.1"},
		{"nft", "add", "table", "inet", "other"},
		{"nft", "add", "set", "inet", "other", "s", "{ type ipv4_addr; }"},
		{"nft", "add", "element", "inet", "other", "s", "{ 192.0.2.1 }"},
		{"nft", "add", "chain", "inet", "other", "c", "{ type filter hook prerouting priority raw; policy accept; }"},
		{"nft", "add", "rule", "inet", "other", "c", "ip saddr @s counter"},
		{"iptables", "-t", "raw", "-N", "OTHER"},
		{"iptables", "-t", "raw", "-A", "OTHER", "-s", "192.0.2.1", "-j", "ACCEPT"},
		{"iptables", "-t", "raw", "-A", "PREROUTING", "-s", "192.0.2.2", "-j", "OTHER"},
		{"ip6tables", "-t", "raw", "-N", "OTHER"},
		{"ip6tables", "-t", "raw", "-A", "PREROUTING", "-s", "2001:db8::2", "-j", "OTHER"},
	} {
		inNS(t, ns, cmd...)
	}
	return snapshotForeign(t, ns)
}

func snapshotForeign(t testing.TB, ns string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(inNS(t, ns, "ipset", "save", "other"))
	b.WriteString(inNS(t, ns, "nft", "list", "table", "inet", "other"))
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, line := range strings.Split(inNS(t, ns, tool, "-t", "raw", "-S"), "\n") {
			if strings.Contains(line, "OTHER") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// ourObjects returns what the kernel of ns holds that gatehouse creates:
// sets, tables, chains and rules named after it.
func ourObjects(t testing.TB, ns string) string {
	t.Helper()
	var found []string
	for line := range strings.Lines(inNS(t, ns, "ipset", "list", "-n")) {
		if strings.HasPrefix(line, "gatehouse") {
			found = append(found, "ipset "+line)
		}
	}
	for line := range strings.Lines(inNS(t, ns, "nft", "list", "tables")) {
		if strings.Contains(line, NFTTable) {
			found = append(found, "nft "+line)
		}
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		for line := range strings.Lines(inNS(t, ns, tool, "-t", "raw", "-S")) {
			if strings.Contains(strings.ToLower(line), "gatehouse") {
				found = append(found, tool+" "+line)
			}
		}
	}
	return strings.Join(found, "")
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "none", cfg: Config{Backend: "none"}, wantErr: "no backend"},
		{name: "typo", cfg: Config{Backend: "iptable"}, wantErr: `"iptable" is not one of ipset, nftables, iptables, auto`},
		{name: "empty", cfg: Config{}, wantErr: `"" is not one of`},
		{name: "port zero", cfg: Config{Backend: "nftables", Ports: []uint16{80, 0}}, wantErr: "port 0"},
		{name: "bad netns", cfg: Config{Backend: "nftables", NetNS: "../x"}, wantErr: "not a namespace name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New(%+v) = %v, %v; want error containing %q", tc.cfg, b, err, tc.wantErr)
			}
		})
	}
}

// TestAuto: with nf_tables there, auto is nftables, and it says so.
func TestAuto(t *testing.T) {
	testenv.Netns(t, kernelTools...)
	t.Parallel()
	ns := newNetNS(t, "auto")
	logs := &logRecorder{}
	b, err := New(Config{Backend: "auto", NetNS: ns, Log: slog.New(logs)})
	if err != nil {
		t.Fatalf("New(auto) = %v", err)
	}
	if b.Name() != "nftables" {
		t.Errorf("New(auto).Name() = %q, want nftables", b.Name())
	}
	if msgs := logs.since(0, "backend chosen"); len(msgs) != 1 {
		t.Errorf("New(auto) logged %q, want one line naming the choice", msgs)
	}
}

// TestNoPermission runs the test binary again without CAP_NET_ADMIN (as
// root, with the capability out of its bounding set) to show that every
// backend reports ErrNoPermission, and that Run gives up with it.
func TestNoPermission(t *testing.T) {
	testenv.Netns(t, kernelTools...)
	t.Parallel()
	setpriv := testenv.Tool(t, "setpriv")
	ns := newNetNS(t, "noperm")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, setpriv, "--bounding-set=-net_admin", "--inh-caps=-net_admin", "--",
		os.Args[0], "-test.run=^TestNoPermissionChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "GATEHOUSE_TEST_NOPERM_NETNS="+ns)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestNoPermissionChild") {
		t.Errorf("child without CAP_NET_ADMIN: %v\n%s", err, out)
	}
	if trace := ourObjects(t, ns); trace != "" {
		t.Errorf("without permission something was still created:\n%s", trace)
	}
}

// TestNoPermissionChild is TestNoPermission's child; it does nothing on
// its own.
func TestNoPermissionChild(t *testing.T) {
	ns := os.Getenv("GATEHOUSE_TEST_NOPERM_NETNS")
	if ns == "" {
		t.Skip("run by TestNoPermission")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, name := range []string{"ipset", "nftables", "iptables"} {
		b, err := New(Config{Backend: name, NetNS: ns})
		if err != nil {
			t.Fatalf("New(%q) = %v", name, err)
		}
		for op, f := range map[string]func() error{
			"Ensure": func() error { return b.Ensure(ctx) },
			"List":   func() error { _, err := b.List(ctx); return err },
			"Apply": func() error {
				return b.Apply(ctx, []Entry{{netip.MustParsePrefix("192.0.2.1/32"), time.Now().Add(time.Hour)}}, nil)
			},
			"Remove": func() error { return b.Remove(ctx) },
		} {
			if err := f(); !errors.Is(err, ErrNoPermission) {
				t.Errorf("%s %s() = %v, want an error wrapping ErrNoPermission", name, op, err)
			}
		}
		r, err := NewReconciler(ReconcilerConfig{Backend: b, Bans: rules.NewBanList(rules.BanListConfig{})})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Run(ctx); !errors.Is(err, ErrNoPermission) {
			t.Errorf("%s Run() = %v, want an error wrapping ErrNoPermission", name, err)
		}
	}
	_, err := New(Config{Backend: "auto", NetNS: ns})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrNoPermission) {
		t.Errorf("New(auto) = %v, want an error wrapping ErrUnavailable and ErrNoPermission", err)
	}
}
