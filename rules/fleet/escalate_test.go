package fleet

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"gatehouse/rules"
	"gatehouse/rules/fleet/fleettest"
)

// redisBans returns the prefixes Redis holds bans of, sorted.
func redisBans(t *testing.T, n *node) []string {
	t.Helper()
	m, err := n.rdb.HKeys(t.Context(), newKeys(defaultPrefix).bans).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// A network a node's jail escalated reaches the fleet as one entry: the
// other nodes and Redis hold the /24 and none of the clients it replaced.
func TestEscalationPropagates(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	a := newNode(t, r, "a", "", nil)
	b := newNode(t, r, "b", "", nil)
	j, err := rules.NewJails(rules.JailsConfig{Jails: map[string]rules.JailConfig{"probes": {
		MaxRetry: 1, BanTime: time.Hour, Escalate: &rules.Escalate{IPv4: 24, After: 3}}}}, a.bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.run()
	b.run()
	waitFor(t, propagate, "a connected", a.f.Up)
	waitFor(t, propagate, "b connected", b.f.Up)
	for _, c := range []string{"192.0.2.1", "192.0.2.2"} {
		j.Report("probes", netip.MustParseAddr(c), "probe")
		waitFor(t, propagate, c+" on b", func() bool { return b.banned(c + "/32") })
	}
	j.Report("probes", netip.MustParseAddr("192.0.2.3"), "probe")
	want := []string{"192.0.2.0/24"}
	for _, n := range []*node{a, b} {
		waitFor(t, propagate, "the network alone on "+n.name, func() bool { return slices.Equal(n.prefixes(), want) })
	}
	waitFor(t, propagate, "empty outboxes", func() bool { return a.outbox(t) == 0 && b.outbox(t) == 0 })
	if got := redisBans(t, a); !slices.Equal(got, want) {
		t.Errorf("Redis holds bans of %v, want %v", got, want)
	}
	if got, _ := b.bans.Lookup(netip.MustParseAddr("192.0.2.9")); got.Reason != rules.EscalatedReason("probes", 3) {
		t.Errorf("b's ban of the network: reason %q, want %q", got.Reason, rules.EscalatedReason("probes", 3))
	}
}

// In a shared jail the fleet decides each client's ban on the node that
// counted the offence; every node hears of every ban, so the node that
// decides the third escalates, once for the fleet, though each node
// decided one.
func TestSharedJailEscalates(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	policy := rules.JailConfig{MaxRetry: 1, FindTime: time.Minute, BanTime: time.Hour, Escalate: &rules.Escalate{IPv4: 24, After: 3}}
	var nodes []*node
	var jails []*rules.Jails
	for _, name := range []string{"a", "b", "c"} {
		n := newNode(t, r, name, "", nil)
		j, err := rules.NewJails(rules.JailsConfig{Jails: map[string]rules.JailConfig{"probes": policy},
			Shared: []string{"probes"}, Sharer: n.f}, n.bans, nil)
		if err != nil {
			t.Fatal(err)
		}
		n.f.history = func(b rules.Ban) { j.RestoreHistory(b) }
		n.run()
		waitFor(t, propagate, name+" connected", n.f.Up)
		nodes, jails = append(nodes, n), append(jails, j)
	}
	for i, c := range []string{"192.0.2.1", "192.0.2.2"} {
		jails[i].Report("probes", netip.MustParseAddr(c), "probe")
		for _, n := range nodes {
			waitFor(t, propagate, c+" on "+n.name, func() bool { return n.banned(c + "/32") })
		}
	}
	jails[2].Report("probes", netip.MustParseAddr("192.0.2.3"), "probe")
	want := []string{"192.0.2.0/24"}
	for _, n := range nodes {
		waitFor(t, propagate, "the network alone on "+n.name, func() bool { return slices.Equal(n.prefixes(), want) })
	}
	var made uint64
	for _, j := range jails {
		m, _ := j.Escalations("probes")
		made += m
	}
	if m, _ := jails[2].Escalations("probes"); made != 1 || m != 1 {
		t.Errorf("escalations: %d in all, %d on c; want 1, made by c", made, m)
	}
	waitFor(t, propagate, "empty outboxes", func() bool {
		return nodes[0].outbox(t)+nodes[1].outbox(t)+nodes[2].outbox(t) == 0
	})
	if got := redisBans(t, nodes[0]); !slices.Equal(got, want) {
		t.Errorf("Redis holds bans of %v, want %v", got, want)
	}
}

// A node whose allow list holds an address of a network escalated
// elsewhere refuses the network and keeps the members' own bans: the
// unbans the escalating node pushes for them are not applied there.
func TestEscalationRefusedByPeerKeepsMembers(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	a := newNode(t, r, "a", "", nil)
	bList := rules.NewBanList(rules.BanListConfig{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.200/32")}})
	b := newNode(t, r, "b", "", func(c *Config) { c.Bans = bList })
	b.bans = bList
	j, err := rules.NewJails(rules.JailsConfig{Jails: map[string]rules.JailConfig{"probes": {
		MaxRetry: 1, BanTime: time.Hour, Escalate: &rules.Escalate{IPv4: 24, After: 3}}}}, a.bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.run()
	b.run()
	waitFor(t, propagate, "a connected", a.f.Up)
	waitFor(t, propagate, "b connected", b.f.Up)
	members := []string{"192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32"}
	for _, c := range members {
		j.Report("probes", netip.MustParsePrefix(c).Addr(), "probe")
	}
	waitFor(t, propagate, "the network alone on a", func() bool { return slices.Equal(a.prefixes(), []string{"192.0.2.0/24"}) })
	waitFor(t, propagate, "empty outboxes", func() bool { return a.outbox(t) == 0 && b.outbox(t) == 0 })
	// A later ban reaches b after the unbans: b has read past them.
	j.Report("probes", netip.MustParseAddr("198.51.100.1"), "probe")
	waitFor(t, propagate, "the marker on b", func() bool { return b.banned("198.51.100.1/32") })
	want := append(slices.Clone(members), "198.51.100.1/32")
	slices.Sort(want)
	if got := b.prefixes(); !slices.Equal(got, want) {
		t.Errorf("b holds %v, want the members and the marker %v", got, want)
	}
}
