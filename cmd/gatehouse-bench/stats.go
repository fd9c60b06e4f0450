package main

import (
	"fmt"
	"math"
	"slices"
)

// clkTck is USER_HZ, the unit of the CPU times in /proc/PID/stat and
// /proc/stat: 100 on every architecture Linux runs Go on (Go cannot call
// sysconf(_SC_CLK_TCK) without cgo).
const clkTck = 100

// spread is the median, minimum and maximum of some runs' values.
type spread struct{ Med, Min, Max float64 }

// spreadOf summarises vs; NaN values (a run that measured nothing) are
// left out, and no values give NaNs.
func spreadOf(vs []float64) spread {
	s := make([]float64, 0, len(vs))
	for _, v := range vs {
		if !math.IsNaN(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return spread{math.NaN(), math.NaN(), math.NaN()}
	}
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{m, s[0], s[len(s)-1]}
}

// fmtSpread prints "median (min–max)", or just the median for one run,
// with prec decimals; "–" when nothing was measured.
func fmtSpread(s spread, prec int) string {
	if math.IsNaN(s.Med) {
		return "–"
	}
	if s.Min == s.Max {
		return fmt.Sprintf("%.*f", prec, s.Med)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.Med, prec, s.Min, prec, s.Max)
}

// fmtRatio prints a/b as "1.07×", "–" when either is missing.
func fmtRatio(a, b float64) string {
	r := a / b
	if math.IsNaN(r) || math.IsInf(r, 0) || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r)
}

// fmtNum prints v with prec decimals, "–" for NaN.
func fmtNum(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// mib converts bytes to MiB.
func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// percentile returns the p-th percentile (nearest rank) of vs, NaN for
// none.
func percentile(vs []float64, p float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(vs))
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}
