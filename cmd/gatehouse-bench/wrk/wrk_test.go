package wrk

import (
	"strings"
	"testing"
	"time"
)

// wrkFull is wrk 4.1's output with --latency, socket errors and non-2xx
// answers.
const wrkFull = `Running 10s test @ http://127.0.0.1:18110/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.56ms    1.02ms  22.61ms   80.12%
    Req/Sec    17.95k     1.21k   19.71k    78.00%
  Latency Distribution
     50%    3.42ms
     75%    3.90ms
     90%    4.63ms
     99%    7.12ms
  178503 requests in 10.00s, 31.32MB read
  Socket errors: connect 0, read 2, write 0, timeout 12
  Non-2xx or 3xx responses: 3
Requests/sec:  17849.51
Transfer/sec:      3.13MB
`

func TestParseWrk(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    Result
		wantErr string
	}{
		{name: "full", in: wrkFull, want: Result{RPS: 17849.51, Requests: 178503, P50: 3420 * time.Microsecond, P99: 7120 * time.Microsecond, Errors: 17}},
		{name: "microseconds and seconds", in: "     50%  412.00us\n     99%    1.50s\n  10 requests in 1.00s, 1KB read\nRequests/sec:     10.00\n",
			want: Result{RPS: 10, Requests: 10, P50: 412 * time.Microsecond, P99: 1500 * time.Millisecond}},
		{name: "minutes", in: "     99%    2.00m\nRequests/sec: 1\n", want: Result{RPS: 1, P99: 2 * time.Minute}},
		{name: "no summary: wrk failed", in: "unable to connect to 127.0.0.1:1 Connection refused\n", wantErr: "no Requests/sec"},
		{name: "bad latency", in: "     50%    fast\nRequests/sec: 1\n", wantErr: "latency 50%"},
		{name: "bad socket errors", in: "  Socket errors: connect x\nRequests/sec: 1\n", wantErr: "socket errors"},
		{name: "negative rate", in: "Requests/sec: -3\n", wantErr: "not a rate"},
		{name: "NaN rate", in: "Requests/sec: NaN\n", wantErr: "not a rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzParseWrk: whatever wrk prints, Parse returns a result with a
// finite, non-negative rate and latencies, or an error.
func FuzzParseWrk(f *testing.F) {
	f.Add(wrkFull)                                                    // the full summary
	f.Add("Requests/sec: 1\n")                                        // the one line that must be there
	f.Add("     50%  412.00us\n     99%    1.50s\nRequests/sec: 2\n") // units
	f.Add("  Socket errors: connect 1, read 2, write 3, timeout 4\nRequests/sec: 1e3\n")
	f.Add("Requests/sec: Inf\n") // not a rate
	f.Fuzz(func(t *testing.T, in string) {
		r, err := Parse(in)
		if err != nil {
			return
		}
		if !(r.RPS >= 0 && r.RPS < 1e308) || r.P50 < 0 || r.P99 < 0 {
			t.Errorf("Parse(%q) = %+v: negative or infinite value", in, r)
		}
	})
}
