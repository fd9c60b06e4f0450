package role

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// HandshakeReport is the JSON line Handshake prints when it is done.
type HandshakeReport struct {
	// Handshakes counts the TLS handshakes completed in the measured
	// time (the connection is closed right after each).
	Handshakes uint64 `json:"handshakes"`
	// Resumed counts those of them that resumed a session (a TLS 1.3
	// PSK from a session ticket); with -resume, the rest were full.
	Resumed uint64 `json:"resumed"`
	// Errors counts failed connections or handshakes.
	Errors uint64 `json:"errors"`
	// FirstError is the first failure's message, "" with none.
	FirstError string `json:"first_error,omitempty"`
	// Seconds is the measured time.
	Seconds float64 `json:"seconds"`
	// Group is the key exchange the server chose, from the first
	// handshake: "X25519", "X25519MLKEM768", ...
	Group string `json:"group"`
	// Version is the TLS version of the first handshake ("TLS 1.3").
	Version string `json:"version"`
}

// Handshake is a TLS handshake load generator: -c workers each open a
// TCP connection to -addr, complete a TLS handshake, close the
// connection (close_notify, then FIN) and start over, for -d. Only the
// handshake is timed and counted; no HTTP request is sent, so the server
// does the handshake and the connection's set-up and tear-down, nothing
// else.
//
// With -resume, each worker first makes one connection that fetches "/"
// to receive the server's session tickets, and then resumes that session
// on every connection (the server sees a PSK handshake with a fresh
// X25519 share, as from a returning browser). Without it, no session is
// kept and every handshake is full.
//
// -groups x25519 offers X25519 only, the one group both Go and
// OpenSSL 3.0 servers choose when a client offers what OpenSSL 3.0 (curl,
// nginx peers on Debian 12) offers; -groups default offers Go's default
// list, which puts X25519MLKEM768 first, as current browsers do.
// -ca is the PEM root that signs the server's certificate; the client
// verifies the chain like a browser would (its cost lands on the load
// generator's CPU, not the server's).
func Handshake(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("handshake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "server `host:port`")
	caFile := fs.String("ca", "", "PEM `file` of the root that signs the server's certificate")
	serverName := fs.String("servername", "localhost", "TLS server name (SNI) and the name verified")
	resume := fs.Bool("resume", false, "resume a session on every connection (after one that fetches its tickets)")
	groups := fs.String("groups", "x25519", "key exchange groups to offer: x25519 or default (Go's list, X25519MLKEM768 first)")
	alpn := fs.String("alpn", "http/1.1", "ALPN protocol to offer")
	workers := fs.Int("c", 8, "concurrent connections")
	d := fs.Duration("d", 10*time.Second, "how long to measure")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || *caFile == "" || *workers < 1 || *d <= 0 {
		return errors.New("usage: handshake -addr host:port -ca file [-resume] [-groups x25519|default] [-c N] [-d duration]")
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("-ca %s: no PEM certificate", *caFile)
	}
	base := &tls.Config{
		RootCAs:    roots,
		ServerName: *serverName,
		NextProtos: []string{*alpn},
		MinVersion: tls.VersionTLS12,
	}
	switch *groups {
	case "x25519":
		base.CurvePreferences = []tls.CurveID{tls.X25519}
	case "default":
	default:
		return fmt.Errorf("-groups %q is not x25519 or default", *groups)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	var (
		rep      HandshakeReport
		n, res   atomic.Uint64
		fails    atomic.Uint64
		firstErr sync.Once
		first    sync.Once
	)
	fail := func(err error) {
		fails.Add(1)
		firstErr.Do(func() { rep.FirstError = err.Error() })
	}
	// connect makes one connection and handshake with cfg; with fetch, it
	// then asks for "/" and reads the answer, which carries the session
	// tickets to cfg's session cache.
	connect := func(ctx context.Context, cfg *tls.Config, fetch bool) (tls.ConnectionState, error) {
		c, err := dialer.DialContext(ctx, "tcp", *addr)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return tls.ConnectionState{}, err
		}
		st := tc.ConnectionState()
		if fetch {
			_ = tc.SetDeadline(time.Now().Add(5 * time.Second)) // a set deadline cannot fail on a live conn
			if _, err := io.WriteString(tc, "GET / HTTP/1.1\r\nHost: "+*serverName+"\r\nConnection: close\r\n\r\n"); err != nil {
				return st, err
			}
			if _, err := io.Copy(io.Discard, tc); err != nil {
				return st, err
			}
		}
		return st, tc.Close()
	}

	// Each worker primes its own session (with -resume) before the clock
	// starts.
	cfgs := make([]*tls.Config, *workers)
	for i := range cfgs {
		cfg := base.Clone()
		if *resume {
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			if _, err := connect(ctx, cfg, true); err != nil {
				return fmt.Errorf("fetch session tickets: %w", err)
			}
		}
		cfgs[i] = cfg
	}
	// The clock, not runCtx.Err, ends the loop: a dial past the deadline
	// fails at once, before the context's timer has run on a busy CPU.
	start := time.Now()
	end := start.Add(*d)
	runCtx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	var wg sync.WaitGroup
	for _, cfg := range cfgs {
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				st, err := connect(runCtx, cfg, false)
				if err != nil {
					if time.Now().Before(end) {
						fail(err)
					}
					continue
				}
				n.Add(1)
				if st.DidResume {
					res.Add(1)
				}
				first.Do(func() {
					rep.Group = st.CurveID.String()
					rep.Version = tls.VersionName(st.Version)
				})
			}
		})
	}
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	rep.Handshakes, rep.Resumed, rep.Errors = n.Load(), res.Load(), fails.Load()
	return json.NewEncoder(stdout).Encode(rep)
}
