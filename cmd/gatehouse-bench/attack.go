package main

// The attack network, inside two namespaces the run creates and deletes:
//
//	srv  10.77.0.1, fd77::1   the proxy under test on port 80, the upstream app
//	                          on the namespace's own 127.0.0.1, fail2ban, the
//	                          kernel ban sets
//	cli  10.77.0.2, fd77::2   the legit client (wrk; the primary addresses)
//	     10.77.0.3            pre-flight checks
//	     10.78.0.0/16         the IPv4 scanners, one address each
//	     2001:db8::/32        the IPv6 attackers, one /48 each from
//	                          2001:db8:100::/48 on; 2001:db8:ffff::/48 checks
//
// joined by one veth pair. The scanner ranges are routed to the client
// namespace through its primary address and are local there (`ip route
// add local … dev lo`), so the server's neighbour table holds one entry
// per family however many addresses attack, and the client can bind any
// address in them without adding it to an interface. No packet leaves
// the namespaces and the host's own firewall is never touched.
const (
	attackSrvIP    = "10.77.0.1"
	attackLegitIP  = "10.77.0.2"
	attackCheckIP  = "10.77.0.3"
	attackScanIP   = "10.78.0.1"
	attackScanNet  = "10.78.0.0/16"
	attackSrvIP6   = "fd77::1"
	attackCliIP6   = "fd77::2"
	attackScan6    = "2001:db8:100::"
	attackScanNet6 = "2001:db8::/32"
	attackCheckIP6 = "2001:db8:ffff::1"
	attackUpAddr   = "127.0.0.1:18100"
	attackJail     = "bench-probes"
	netnsPrefix    = "ghb"
	// attackEscalate is the probes jail's prefix escalation in the
	// -ipv6-rotate run.
	attackEscalate = "escalate: {ipv4: 24, ipv6: 48, after: 5}"
)
