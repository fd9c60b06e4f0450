package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// offenceJailConfig is a jail "probes" that bans a client at its third
// offence within 10 minutes and escalates after `after` bans, or after
// after×3 offences of a network's clients.
func offenceJailConfig(after int) JailsConfig {
	return JailsConfig{Jails: map[string]JailConfig{"probes": {
		MaxRetry: 3, FindTime: 10 * time.Minute, BanTime: time.Hour,
		Escalate: &Escalate{IPv4: 24, IPv6: 48, After: after},
	}}}
}

// rotating returns the address of an attacker's n-th request when it
// takes a fresh client (IPv4 address of 192.0.2.0/24, or /64 of
// 2001:db8:7::/48, at a fresh address of it) every `every` requests.
func rotating(v6 bool, n, every int) netip.Addr {
	c := n / every
	if v6 {
		return netip.MustParseAddr(fmt.Sprintf("2001:db8:7:%x::%x", c, n+1))
	}
	return netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + c)})
}

// An attacker that moves to a fresh client before any reaches maxretry
// is banned as a network at after×maxretry offences, in IPv4 and IPv6,
// and the dry run (gatehouse rules test) bans it at the same offence.
func TestEscalateOffencesRotation(t *testing.T) {
	t.Parallel()
	const after, maxRetry = 5, 3
	for _, v6 := range []bool{false, true} {
		for _, every := range []int{1, 2} {
			t.Run(fmt.Sprintf("ipv6=%v/every=%d", v6, every), func(t *testing.T) {
				t.Parallel()
				cfg := offenceJailConfig(after)
				j, bans, clk := newTestJails(t, cfg)
				dry, err := NewDryRun(cfg)
				if err != nil {
					t.Fatal(err)
				}
				want := "192.0.2.0/24"
				if v6 {
					want = "2001:db8:7::/48"
				}
				for n := range after*maxRetry - 1 {
					a := rotating(v6, n, every)
					j.Report("probes", a, "probe")
					if b, ok, nb, esc := dry.ReportAt("probes", a, "probe", clk.Now()); ok || esc {
						t.Fatalf("dry run, offence %d: ban %v %v, network %v %v; want none", n+1, b, ok, nb, esc)
					}
					clk.Add(time.Second)
				}
				if got := banned(bans); len(got) != 0 {
					t.Fatalf("after %d offences, none a client's maxretry: bans %v, want none", after*maxRetry-1, got)
				}
				a := rotating(v6, after*maxRetry-1, every)
				j.Report("probes", a, "probe")
				if got := banned(bans); !slices.Equal(got, []string{want}) {
					t.Fatalf("after %d offences: bans %v, want [%s]", after*maxRetry, got, want)
				}
				b, _ := bans.Lookup(a)
				if b.Reason != OffenceEscalatedReason("probes", after*maxRetry) || b.Count != 1 || b.Until != clk.Now().Add(time.Hour) {
					t.Errorf("network's ban %+v, want reason %q, count 1, for 1h", b, OffenceEscalatedReason("probes", after*maxRetry))
				}
				if made, refused := j.Escalations("probes"); made != 1 || refused != 0 {
					t.Errorf("Escalations = %d, %d; want 1, 0", made, refused)
				}
				_, _, nb, esc := dry.ReportAt("probes", a, "probe", clk.Now())
				if !esc || nb.Prefix != b.Prefix || nb.Until != b.Until || nb.Count != b.Count || nb.Reason != b.Reason {
					t.Errorf("dry run's network ban %+v %v, want %+v", nb, esc, b)
				}
				// The banned network's offences are not counted: no second
				// escalation while its ban lasts.
				for n := range 3 * after * maxRetry {
					j.Report("probes", rotating(v6, after*maxRetry+n, every), "probe")
				}
				if made, _ := j.Escalations("probes"); made != 1 {
					t.Errorf("Escalations made = %d after offences inside the banned network, want 1", made)
				}
				if got := banned(bans); !slices.Equal(got, []string{want}) {
					t.Errorf("bans %v, want [%s] alone", got, want)
				}
			})
		}
	}
}

// One client alone never bans its network by offences, however many it
// makes; the count needs after-1 changes of offender too.
func TestEscalateOffencesOneClient(t *testing.T) {
	t.Parallel()
	j, bans, _ := newTestJails(t, offenceJailConfig(3)) // 9 offences, 2 changes
	c := netip.MustParsePrefix("192.0.2.1/32")
	for range 4 {
		for range 3 {
			j.Report("probes", c.Addr(), "probe")
		}
		if got := banned(bans); !slices.Equal(got, []string{"192.0.2.1/32"}) {
			t.Fatalf("bans %v, want the client's alone", got)
		}
		bans.Unban(c) // lifted by the operator: counted again
	}
	if made, refused := j.Escalations("probes"); made != 0 || refused != 0 {
		t.Fatalf("one client's 12 offences: Escalations = %d, %d; want 0, 0", made, refused)
	}
	j.Report("probes", ip("192.0.2.2"), "probe")
	if got := banned(bans); len(got) != 0 {
		t.Fatalf("then another client's offence, one change: bans %v, want none", got)
	}
	j.Report("probes", ip("192.0.2.3"), "probe")
	if got := banned(bans); !slices.Equal(got, []string{"192.0.2.0/24"}) {
		t.Errorf("then a third client's, two changes: bans %v, want the /24", got)
	}
}

// A network that holds an allowed address or a NoEscalate prefix is
// never banned by offences either: the refusal is counted once per
// full count and logged once.
func TestEscalateOffencesNeverAcrossAllow(t *testing.T) {
	t.Parallel()
	cfg := offenceJailConfig(2) // 6 offences
	cfg.Allow = []netip.Prefix{netip.MustParsePrefix("192.0.2.200/32")}
	cfg.NoEscalate = []netip.Prefix{netip.MustParsePrefix("2001:db8:7:ff::/64")}
	j, bans, _ := newTestJails(t, cfg)
	var logs strings.Builder
	j.log = newTestLogger(&logs)
	for n := range 12 {
		j.Report("probes", rotating(false, n, 2), "probe")
		j.Report("probes", rotating(true, n, 2), "probe")
	}
	if got := banned(bans); len(got) != 0 {
		t.Errorf("bans %v, want none (clients below maxretry, networks never banned)", got)
	}
	if made, refused := j.Escalations("probes"); made != 0 || refused != 4 {
		t.Errorf("Escalations = %d, %d; want 0, 4 (two full counts in each network)", made, refused)
	}
	if n := strings.Count(logs.String(), "escalation refused"); n != 2 {
		t.Errorf("%d refusals logged, want 2 (once per network):\n%s", n, logs.String())
	}
}

// Offences count within a window of findtime (ends included) that opens
// at the network's first offence.
func TestEscalateOffencesWindow(t *testing.T) {
	t.Parallel()
	j, bans, clk := newTestJails(t, offenceJailConfig(2)) // 6 offences
	c := 0
	offend := func(n int, prefix string) {
		for range n {
			c++
			j.Report("probes", ip(fmt.Sprintf(prefix, c)), "probe")
		}
	}
	offend(5, "192.0.2.%d")
	clk.Add(10*time.Minute + time.Second)
	offend(5, "192.0.2.%d") // a new window: 5
	if got := banned(bans); len(got) != 0 {
		t.Fatalf("5 offences, findtime, 5 more: bans %v, want none", got)
	}
	offend(1, "192.0.2.%d")
	if got := banned(bans); !slices.Equal(got, []string{"192.0.2.0/24"}) {
		t.Fatalf("6 in the second window: bans %v, want the /24", got)
	}
	offend(1, "198.51.100.%d")
	clk.Add(10 * time.Minute)
	offend(5, "198.51.100.%d")
	if got := banned(bans); !slices.Contains(got, "198.51.100.0/24") {
		t.Errorf("6 offences within findtime exactly: bans %v, want 198.51.100.0/24 among them", got)
	}
}

// A reload that keeps the escalation settings keeps the networks'
// offence counts; a restart rebuilds them from the clients' saved
// offence times, without banning.
func TestEscalateOffencesHandOverAndRestart(t *testing.T) {
	t.Parallel()
	cfg := offenceJailConfig(2) // 6 offences
	old, bans, clk := newTestJails(t, cfg)
	for n := range 4 {
		old.Report("probes", rotating(true, n, 2), "probe")
	}
	state := old.AppendState(nil, clk.Now())
	j, err := NewJails(cfg, bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	j.now = clk.Now
	j.HandOver(old)
	old.Report("probes", rotating(true, 4, 2), "probe") // in flight on the old chain
	if got := banned(bans); len(got) != 0 {
		t.Fatalf("5 offences across a reload: bans %v, want none", got)
	}
	j.Report("probes", rotating(true, 5, 2), "probe")
	if got := banned(bans); !slices.Equal(got, []string{"2001:db8:7::/48"}) {
		t.Errorf("6 offences across a reload: bans %v, want the /48", got)
	}

	r, rbans, rclk := newTestJails(t, cfg)
	rclk.Add(clk.Now().Sub(rclk.Now()))
	if n, err := r.RestoreState(state); err != nil || n != 2 {
		t.Fatalf("RestoreState = %d, %v; want 2 clients", n, err)
	}
	if got := banned(rbans); len(got) != 0 {
		t.Fatalf("restored: bans %v, want none", got)
	}
	r.Report("probes", rotating(true, 4, 2), "probe")
	if got := banned(rbans); len(got) != 0 {
		t.Fatalf("5 offences across a restart: bans %v, want none", got)
	}
	r.Report("probes", rotating(true, 5, 2), "probe")
	if got := banned(rbans); !slices.Equal(got, []string{"2001:db8:7::/48"}) {
		t.Errorf("6 offences across a restart: bans %v, want the /48", got)
	}
}

// A restart whose saved offences fill a network's count leaves it one
// short: restoring never bans, the next offence there does.
func TestEscalateOffencesRestoreFull(t *testing.T) {
	t.Parallel()
	cfg := offenceJailConfig(2) // 6 offences
	old, _, clk := newTestJails(t, cfg)
	for n := range 8 {
		old.Report("probes", rotating(false, n, 1), "probe")
		old.Report("probes", rotating(false, n, 1), "probe") // 2 each: below maxretry
	}
	// (The old jails escalated at the sixth; their clients keep their
	// offence times.)
	r, rbans, rclk := newTestJails(t, cfg)
	rclk.Add(clk.Now().Sub(rclk.Now()))
	if _, err := r.RestoreState(old.AppendState(nil, clk.Now())); err != nil {
		t.Fatal(err)
	}
	if got := banned(rbans); len(got) != 0 {
		t.Fatalf("restored: bans %v, want none", got)
	}
	r.Report("probes", ip("192.0.2.100"), "probe")
	if got := banned(rbans); !slices.Equal(got, []string{"192.0.2.0/24"}) {
		t.Errorf("one offence after a full count restored: bans %v, want the /24", got)
	}
}

// Rotating attackers in many networks, reported from many goroutines at
// once: each network is banned exactly once, and no client entry is left.
func TestEscalateOffencesConcurrent(t *testing.T) {
	t.Parallel()
	const nets, perNet, workers = 40, 40, 4
	j, bans, _ := newTestJails(t, offenceJailConfig(5)) // 15 offences
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < nets*perNet; i += workers {
				// Network i%nets, /64 i/nets: one offence per client.
				a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i % nets), 0, byte(i / nets), 15: 1})
				j.Report("probes", a, "probe")
				bans.Lookup(a)
			}
		})
	}
	wg.Wait()
	got := banned(bans)
	if len(got) != nets {
		t.Errorf("%d bans, want %d networks: %v", len(got), nets, got)
	}
	for _, p := range got {
		if !strings.HasSuffix(p, "/48") {
			t.Errorf("ban %s beside the networks", p)
		}
	}
	if made, _ := j.Escalations("probes"); made != nets {
		t.Errorf("Escalations made = %d, want %d", made, nets)
	}
}
