package main

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"gatehouse/cmd/gatehouse-bench/wrk"
	"gatehouse/rules/testenv"
)

func TestParseH2load(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name    string
		in      string
		want    h2loadResult
		errs    uint64
		wantErr string
	}{
		// h2load 1.52 against gatehouse: -c 1 -m 100 -D 2, all answered.
		{name: "gatehouse", in: read("h2load-gatehouse.txt"),
			want: h2loadResult{RPS: 18287, Succeeded: 36574, Mean: 5360 * time.Microsecond}},
		// Against nginx with its default keepalive_requests (1000): the
		// connection is closed by GOAWAY and the rest of the run errors.
		{name: "nginx GOAWAY after 1000 requests", in: read("h2load-nginx-goaway.txt"),
			want: h2loadResult{RPS: 500, Succeeded: 1000, Failed: 95, Mean: 652 * time.Microsecond}, errs: 95},
		{name: "4xx answers counted as errors", in: "finished in 1.00s, 10.00 req/s, 1KB/s\nrequests: 10 total, 10 started, 10 done, 7 succeeded, 3 failed, 0 errored, 0 timeout\nstatus codes: 7 2xx, 0 3xx, 3 4xx, 1 5xx\n",
			want: h2loadResult{RPS: 10, Succeeded: 7, Failed: 3, Non2xx: 4}, errs: 4},
		{name: "seconds", in: "finished in 1.00s, 1.00 req/s, 1KB/s\ntime for request:      1.50s      2.00s      1.75s      0us    100.00%\n",
			want: h2loadResult{RPS: 1, Mean: 1750 * time.Millisecond}},
		{name: "no summary: h2load failed", in: "starting benchmark...\nNo protocol negotiated. Aborted\n", wantErr: "no \"finished in\""},
		{name: "rate missing", in: "finished in 1.00s\n", wantErr: "no req/s"},
		{name: "NaN rate", in: "finished in 1.00s, NaN req/s, 0B/s\n", wantErr: "not a rate"},
		{name: "bad count", in: "finished in 1.00s, 1 req/s\nrequests: x total\n", wantErr: "requests line"},
		{name: "bad status codes", in: "finished in 1.00s, 1 req/s\nstatus codes: 7\n", wantErr: "status codes"},
		{name: "bad request time", in: "finished in 1.00s, 1 req/s\ntime for request: 1ms 2ms soon 0 0%\n", wantErr: "time for request"},
		{name: "short request time", in: "finished in 1.00s, 1 req/s\ntime for request: 1ms\n", wantErr: "want min max mean"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseH2load(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseH2load(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseH2load: %v", err)
			}
			if got != tc.want {
				t.Errorf("parseH2load = %+v, want %+v", got, tc.want)
			}
			if got.errors() != tc.errs {
				t.Errorf("parseH2load(...).errors() = %d, want %d", got.errors(), tc.errs)
			}
		})
	}
}

// FuzzParseH2load: whatever the output, the parser does not panic, and
// a result it accepts has a finite, non-negative rate and mean.
func FuzzParseH2load(f *testing.F) {
	for _, name := range []string{"h2load-gatehouse.txt", "h2load-nginx-goaway.txt"} { // real runs
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("finished in 1.00s, 1 req/s\ntime for request: 1ms 2ms -1ms 0 0%\n") // negative duration
	f.Add("finished in 1.00s, 1e309 req/s\n")                                  // overflow
	f.Add("requests: 18446744073709551616 total\n")                            // count overflow
	f.Fuzz(func(t *testing.T, in string) {
		r, err := parseH2load(in)
		if err != nil {
			return
		}
		if r.RPS < 0 || math.IsNaN(r.RPS) || math.IsInf(r.RPS, 0) || r.Mean < 0 {
			t.Errorf("parseH2load(%q) = %+v: want a finite rate and mean ≥ 0", in, r)
		}
	})
}

func TestParseHandshakeRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    runResult
		wantErr string
	}{
		// Real reports of gatehouse-bench handshake.
		{name: "resumed", in: `{"handshakes":1261,"resumed":1261,"errors":0,"seconds":1.000577806,"group":"X25519","version":"TLS 1.3"}` + "\n",
			want: runResult{resumed: 1261, group: "X25519"}},
		{name: "full with errors", in: `{"handshakes":734,"resumed":0,"errors":3,"first_error":"dial tcp 127.0.0.1:34111: i/o timeout","seconds":1.014203013,"group":"X25519MLKEM768","version":"TLS 1.3"}`,
			want: runResult{group: "X25519MLKEM768"}},
		{name: "nothing completed", in: `{"handshakes":0,"resumed":0,"errors":9,"first_error":"connection refused","seconds":1}`, wantErr: "connection refused"},
		{name: "no time", in: `{"handshakes":5}`, wantErr: "no measured time"},
		{name: "not JSON", in: "usage: handshake", wantErr: "handshake report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseHandshakeRun(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseHandshakeRun(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseHandshakeRun(%q): %v", tc.in, err)
			}
			if got.resumed != tc.want.resumed || got.group != tc.want.group {
				t.Errorf("parseHandshakeRun(%q) = resumed %d, group %q; want %d, %q", tc.in, got.resumed, got.group, tc.want.resumed, tc.want.group)
			}
			if got.wrk.Requests == 0 || got.wrk.RPS <= 0 {
				t.Errorf("parseHandshakeRun(%q) = %+v: want the handshakes as requests and a rate", tc.in, got.wrk)
			}
		})
	}
	r, _ := parseHandshakeRun(`{"handshakes":1000,"errors":2,"seconds":2}`)
	if r.wrk.RPS != 500 || r.wrk.Requests != 1000 || r.wrk.Errors != 2 {
		t.Errorf("parseHandshakeRun(1000 in 2 s, 2 errors) = %+v, want 500/s, 1000, 2 errors", r.wrk)
	}
}

func TestPairRatio(t *testing.T) {
	run := func(ticks, reqs uint64) runResult {
		return runResult{cpuTicks: ticks, wrk: wrk.Result{Requests: reqs}}
	}
	auth := &rowResult{runs: []runResult{run(110, 1000), run(200, 1000), run(105, 1000)}}
	open := &rowResult{runs: []runResult{run(100, 1000), run(100, 1000), run(100, 1000), run(1, 1000)}}
	// Pairs: 1.10, 2.00, 1.05 (open's 4th run has no partner): median 1.10.
	if got := pairRatio(auth, open, runResult.cpuUSPerReq); math.Abs(got-1.1) > 1e-9 {
		t.Errorf("pairRatio = %v, want 1.10 (the median of the pairs' ratios)", got)
	}
	if got := pairRatio(auth, &rowResult{}, runResult.cpuUSPerReq); !math.IsNaN(got) {
		t.Errorf("pairRatio without pairs = %v, want NaN", got)
	}
}

// TestNginxTLSConf checks that the TLS server block really replaced the
// plain listener, and, when nginx is installed, that nginx accepts it.
func TestNginxTLSConf(t *testing.T) {
	dir := t.TempDir()
	c, err := writeBenchCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	conf := nginxTLSConf(dir, 1, "127.0.0.1:18443", "127.0.0.1:18100", c)
	for _, want := range []string{"listen 127.0.0.1:18443 ssl http2", "ssl_certificate " + c.cert, "ssl_certificate_key " + c.key, "TLSv1.3", "ssl_session_tickets on"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginxTLSConf has no %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "listen 127.0.0.1:18443 backlog") {
		t.Errorf("nginxTLSConf kept the plain listener:\n%s", conf)
	}
	nginx := testenv.Tool(t, "nginx")
	if err := os.MkdirAll(dir+"/tmp", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/nginx.conf", []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmdCombined(t.Context(), nginx, "-t", "-p", dir, "-c", dir+"/nginx.conf", "-e", dir+"/error.log"); err != nil {
		t.Errorf("nginx -t: %v\n%s", err, out)
	}
}
