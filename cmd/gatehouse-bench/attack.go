package main

// The attack network, inside two namespaces the run creates and deletes:
//
//	srv  10.77.0.1       the proxy under test on port 80, the upstream app on the
//	                     namespace's own 127.0.0.1, fail2ban, the kernel ban sets
//	cli  10.77.0.2       the legit client (wrk; the primary address)
//	     10.77.0.3       pre-flight checks
//	     10.77.1.1 …     one address per scanner (/32 secondaries)
//
// joined by one veth pair. No packet leaves them and the host's own
// firewall is never touched.
const (
	attackSrvIP   = "10.77.0.1"
	attackLegitIP = "10.77.0.2"
	attackCheckIP = "10.77.0.3"
	attackScanIP  = "10.77.1.1"
	attackUpAddr  = "127.0.0.1:18100"
	attackJail    = "bench-probes"
	netnsPrefix   = "ghb"
)
