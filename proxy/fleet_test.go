package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/proxy/cert"
	"gatehouse/proxy/config"
	"gatehouse/rules"
	"gatehouse/rules/fleet"
	"gatehouse/rules/fleet/fleettest"
	"gatehouse/rules/store"
)

// docsACL returns the arguments of docs/fleet.md's ACL SETUSER command
// for the fleet, with password in place of CHANGE-ME.
func docsACL(t *testing.T, password string) []any {
	t.Helper()
	readme, err := os.ReadFile("../docs/fleet.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "\nACL SETUSER gatehouse ")
	if !ok {
		t.Fatal("docs/fleet.md has no ACL SETUSER gatehouse command")
	}
	var cmd strings.Builder
	for line := range strings.SplitSeq(rest, "\n") {
		more := strings.HasSuffix(line, `\`)
		cmd.WriteString(strings.TrimSuffix(line, `\`) + " ")
		if !more {
			break
		}
	}
	args := []any{"ACL", "SETUSER", "gatehouse"}
	for _, f := range strings.Fields(cmd.String()) {
		args = append(args, strings.ReplaceAll(f, "CHANGE-ME", password))
	}
	return args
}

// TestFleetOverTLSWithDocumentedACLUser: a rediss:// URL with the test
// CA as ca_root, the ACL user of docs/fleet.md and its password from an
// env: secret are enough for everything fleet mode does: bans and
// unbans between two nodes, shared offences, fleet status and the
// certificate storage with its locks. An untrusted server certificate
// is refused.
func TestFleetOverTLSWithDocumentedACLUser(t *testing.T) {
	r := fleettest.StartTLS(t)
	ctx := t.Context()
	r.Do(t, docsACL(t, "fleet-test-password")...)
	t.Setenv("GATEHOUSE_TEST_REDIS_PASSWORD", "fleet-test-password")
	pw, err := config.ParseSecret("env:GATEHOUSE_TEST_REDIS_PASSWORD")
	if err != nil {
		t.Fatal(err)
	}
	fl := &config.Fleet{Redis: "rediss://gatehouse@" + r.Addr + "/0", Password: pw, CARoot: r.CAFile, Prefix: "gh"}
	client := func() *redis.Client {
		t.Helper()
		o, err := redisOptions(fl)
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(o)
		t.Cleanup(func() { c.Close() })
		return c
	}

	type node struct {
		bans *rules.BanList
		st   *store.Store
		f    *fleet.Fleet
	}
	var nodes []node
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	t.Cleanup(func() {
		stop()
		for range nodes {
			<-done
		}
		for _, n := range nodes {
			n.st.Close()
		}
	})
	for _, name := range []string{"a", "b"} {
		st, err := store.Open(store.StoreConfig{Path: filepath.Join(t.TempDir(), "bans.db")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		bans := rules.NewBanList(rules.BanListConfig{})
		f, err := fleet.New(fleet.Config{Redis: client(), Node: name, Bans: bans, Journal: st, Block: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, node{bans, st, f})
		go func() { _ = f.Run(runCtx); done <- struct{}{} }()
	}
	a, b := nodes[0], nodes[1]
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			<-tick.C
		}
	}
	wait("both nodes up", func() bool { return a.f.Up() && b.f.Up() })

	p := netip.MustParsePrefix("192.0.2.77/32")
	now := time.Now()
	ban, err := a.bans.Ban(rules.Ban{Prefix: p, Created: now, Until: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.st.PutQueued(ban); err != nil {
		t.Fatal(err)
	}
	a.f.Kick()
	banned := func(l *rules.BanList) bool { _, ok := l.Lookup(p.Addr()); return ok }
	wait("the ban on b over TLS", func() bool { return banned(b.bans) })
	b.bans.Unban(p)
	if err := b.st.DeleteQueued(p, time.Now()); err != nil {
		t.Fatal(err)
	}
	b.f.Kick()
	wait("the unban on a", func() bool { return !banned(a.bans) })

	// Shared offences: two from a, one from b, maxretry 3.
	policy := rules.JailConfig{MaxRetry: 3, FindTime: time.Minute, BanTime: time.Hour}
	var jails []*rules.Jails
	for _, n := range nodes {
		j, err := rules.NewJails(rules.JailsConfig{Jails: map[string]rules.JailConfig{"probes": policy}, Shared: []string{"probes"}, Sharer: n.f}, n.bans, nil)
		if err != nil {
			t.Fatal(err)
		}
		jails = append(jails, j)
	}
	prober := netip.MustParseAddr("192.0.2.78")
	jails[0].Report("probes", prober, "probe")
	jails[0].Report("probes", prober, "probe")
	jails[1].Report("probes", prober, "probe")
	wait("the shared ban on both", func() bool {
		_, okA := a.bans.Lookup(prober)
		_, okB := b.bans.Lookup(prober)
		return okA && okB
	})

	st, err := fleet.ReadStatus(ctx, client(), "gh")
	if err != nil || st.Epoch == "" {
		t.Fatalf("ReadStatus = %+v, %v", st, err)
	}
	// The dashboard's fleet panel sees this node up and both nodes.
	panel := fleetStatus{s: &Server{fleet: a.f, redis: client()}, node: "a", prefix: "gh"}
	if fs := panel.FleetStatus(); !fs.Connected || fs.Node != "a" || fs.Nodes != len(st.Nodes) || fs.Nodes < 1 || fs.LastError != "" {
		t.Errorf("FleetStatus = %+v, want connected node a seeing %d nodes", fs, len(st.Nodes))
	}

	// A shared rate limit is counted with the ACL user's rights: 1 r/m,
	// no burst, so the second request is refused whichever node takes it.
	if (&Server{}).sharedLimit("login") != nil {
		t.Error("sharedLimit without a fleet is not nil")
	}
	for i, n := range nodes {
		ok, wait, err := (&Server{fleet: n.f}).sharedLimit("login").TakeShared(ctx, "192.0.2.79", 16, 0, 0)
		if err != nil || ok != (i == 0) || (!ok && wait <= 0) {
			t.Errorf("shared limit request %d = %v, %v, %v; want only the first to pass", i, ok, wait, err)
		}
	}

	cs := cert.NewRedis(cert.RedisConfig{Redis: client(), Lease: time.Second})
	if err := cs.Store(ctx, "certificates/ca/example.com/example.com.crt", []byte("CERT")); err != nil {
		t.Fatal(err)
	}
	if v, err := cs.Load(ctx, "certificates/ca/example.com/example.com.crt"); err != nil || string(v) != "CERT" {
		t.Fatalf("Load = %q, %v", v, err)
	}
	if keys, err := cs.List(ctx, "certificates", true); err != nil || len(keys) != 3 {
		t.Fatalf("List = %v, %v", keys, err)
	}
	if _, err := cs.Stat(ctx, "certificates/ca"); err != nil {
		t.Fatal(err)
	}
	if err := cs.Lock(ctx, "issue_cert_example.com"); err != nil {
		t.Fatal(err)
	}
	// Held past two leases: renewed with the ACL user's rights.
	other := cert.NewRedis(cert.RedisConfig{Redis: client(), Lease: time.Second, Poll: 50 * time.Millisecond})
	lctx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	err = other.Lock(lctx, "issue_cert_example.com")
	cancel()
	// The deadline may hit while a command is in flight: Redis's client
	// then reports the connection's i/o timeout, not the context's.
	var netErr net.Error
	if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &netErr) && netErr.Timeout()) {
		t.Fatalf("second Lock while the first holder renews = %v, want the deadline", err)
	}
	if err := cs.Unlock(ctx, "issue_cert_example.com"); err != nil {
		t.Fatal(err)
	}
	if err := cs.Delete(ctx, "certificates"); err != nil {
		t.Fatal(err)
	}

	// Verification is always on: without the test CA the server is refused.
	untrusting := &config.Fleet{Redis: fl.Redis, Password: pw, Prefix: "gh"}
	o, err := redisOptions(untrusting)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	defer c.Close()
	if err := c.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("PING without the CA = %v, want a certificate verification error", err)
	}
	// And the ACL user cannot run what it was not given.
	if err := client().FlushAll(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("FLUSHALL as the gatehouse user = %v, want NOPERM", err)
	}
}
