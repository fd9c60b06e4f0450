package wrk

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Result is what one wrk run reports.
type Result struct {
	// RPS is wrk's "Requests/sec".
	RPS float64
	// Requests is the number of completed requests.
	Requests uint64
	// P50 and P99 are latency percentiles (--latency).
	P50, P99 time.Duration
	// Errors counts socket errors (connect, read, write, timeout) and
	// answers that were not 2xx or 3xx.
	Errors uint64
}

// ErrNoResult reports wrk output without a "Requests/sec" line: wrk
// failed, or was killed before its summary.
var ErrNoResult = errors.New("wrk output has no Requests/sec line")

// Parse parses the summary wrk 4 prints with --latency:
//
//	  Latency Distribution
//	     50%  412.00us
//	     99%    1.37ms
//	  178503 requests in 10.00s, 31.32MB read
//	  Socket errors: connect 0, read 0, write 0, timeout 12
//	  Non-2xx or 3xx responses: 3
//	Requests/sec:  17849.51
//
// Lines it does not know are skipped; a known line with a value it
// cannot read is an error, so a format change is not read as zero.
func Parse(out string) (Result, error) {
	var r Result
	haveRPS := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			d, err := parseDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("wrk latency %s: %w", f[0], err)
			}
			if f[0] == "50%" {
				r.P50 = d
			} else {
				r.P99 = d
			}
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk request count %q: %w", f[0], err)
			}
			r.Requests = n
		case strings.HasPrefix(line, "Socket errors:"):
			// "Socket errors: connect 0, read 0, write 0, timeout 12"
			rest := strings.TrimPrefix(line, "Socket errors:")
			for part := range strings.SplitSeq(rest, ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					return r, fmt.Errorf("wrk socket errors %q: want \"name count\" pairs", rest)
				}
				n, err := strconv.ParseUint(kv[1], 10, 64)
				if err != nil {
					return r, fmt.Errorf("wrk socket errors %q: %w", kv[0], err)
				}
				r.Errors += n
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			v := strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:"))
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk non-2xx count %q: %w", v, err)
			}
			r.Errors += n
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil || !(v >= 0 && v < math.Inf(1)) {
				return r, fmt.Errorf("wrk Requests/sec %q: not a rate", f[1])
			}
			r.RPS, haveRPS = v, true
		}
	}
	if !haveRPS {
		return r, ErrNoResult
	}
	return r, nil
}

// parseDuration reads wrk's latency values: a decimal number with the
// unit us, ms, s, m or h (wrk's units.c).
func parseDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		d      time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || !(v >= 0 && v <= 1e6) {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		return time.Duration(v * float64(u.d)), nil
	}
	return 0, fmt.Errorf("%q has no unit (us, ms, s, m, h)", s)
}
