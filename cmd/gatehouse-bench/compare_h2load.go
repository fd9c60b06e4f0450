package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// h2loadResult is what one h2load run (nghttp2 1.5x) reports.
type h2loadResult struct {
	RPS       float64       // "finished in 10.00s, 18287.00 req/s"
	Succeeded uint64        // requests answered 2xx or 3xx in the measured time
	Failed    uint64        // requests that errored, timed out or were answered 4xx or 5xx
	Non2xx    uint64        // answers 4xx and 5xx, of the whole run
	Mean      time.Duration // mean "time for request"
}

// errNoH2load reports h2load output without its "finished in" summary:
// h2load failed, or was killed before it.
var errNoH2load = errors.New("h2load output has no \"finished in\" line")

// parseH2load parses h2load's summary:
//
//	finished in 2.00s, 18287.00 req/s, 2.18MB/s
//	requests: 36574 total, 36674 started, 36574 done, 36574 succeeded, 0 failed, 0 errored, 0 timeout
//	status codes: 36618 2xx, 0 3xx, 0 4xx, 0 5xx
//	                     min         max         mean         sd        +/- sd
//	time for request:      200us     16.50ms      5.36ms      2.15ms    72.98%
//
// Lines it does not know are skipped; a known line with a value it
// cannot read is an error.
func parseH2load(out string) (h2loadResult, error) {
	var r h2loadResult
	seen := false
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "finished in "):
			f := strings.Split(strings.TrimPrefix(line, "finished in "), ", ")
			if len(f) < 2 || !strings.HasSuffix(f[1], " req/s") {
				return r, fmt.Errorf("h2load: summary %q: no req/s", line)
			}
			v, err := strconv.ParseFloat(strings.TrimSuffix(f[1], " req/s"), 64)
			if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return r, fmt.Errorf("h2load: summary %q: not a rate", line)
			}
			r.RPS, seen = v, true
		case strings.HasPrefix(line, "requests: "):
			counts, err := h2loadCounts(strings.TrimPrefix(line, "requests: "))
			if err != nil {
				return r, fmt.Errorf("h2load: requests line %q: %w", line, err)
			}
			r.Succeeded, r.Failed = counts["succeeded"], counts["failed"]
		case strings.HasPrefix(line, "status codes: "):
			counts, err := h2loadCounts(strings.TrimPrefix(line, "status codes: "))
			if err != nil {
				return r, fmt.Errorf("h2load: status codes %q: %w", line, err)
			}
			r.Non2xx = counts["4xx"] + counts["5xx"]
		case strings.HasPrefix(line, "time for request:"):
			f := strings.Fields(strings.TrimPrefix(line, "time for request:"))
			if len(f) < 3 {
				return r, fmt.Errorf("h2load: time for request %q: want min max mean", line)
			}
			d, err := h2loadDuration(f[2])
			if err != nil {
				return r, fmt.Errorf("h2load: time for request %q: %w", line, err)
			}
			r.Mean = d
		}
	}
	if !seen {
		return r, errNoH2load
	}
	return r, nil
}

// h2loadCounts reads "36574 total, 36674 started, 0 failed" into
// {total: 36574, ...}.
func h2loadCounts(s string) (map[string]uint64, error) {
	m := map[string]uint64{}
	for item := range strings.SplitSeq(s, ", ") {
		n, name, ok := strings.Cut(strings.TrimSpace(item), " ")
		if !ok {
			return nil, fmt.Errorf("%q is not a count and a name", item)
		}
		v, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a count and a name", item)
		}
		m[name] = v
	}
	return m, nil
}

// h2loadDuration reads h2load's durations: "200us", "5.36ms", "1.02s".
// (time.ParseDuration reads the same units, but also accepts signs and
// units h2load never prints.)
func h2loadDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}} {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) || v > 1e6 {
			break
		}
		return time.Duration(v * float64(u.unit)), nil
	}
	return 0, fmt.Errorf("%q is not a duration", s)
}

// errors is what the report counts as failed requests: h2load's
// "failed" (which holds the 4xx and 5xx answers) or, when larger, the
// 4xx and 5xx status codes, which also count answers after the measured
// time.
func (r h2loadResult) errors() uint64 { return max(r.Failed, r.Non2xx) }
