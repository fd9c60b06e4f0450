package main

import (
	"fmt"
	"math"
	"strings"
)

// markdown renders the report.
func (rep *compareReport) markdown() string {
	var sb strings.Builder
	sb.WriteString("## gatehouse-bench compare\n\n")
	for _, e := range rep.env {
		sb.WriteString("- " + e + "\n")
	}
	ref := rep.row(labelBare)
	var refCPU, refRPS = math.NaN(), math.NaN()
	if ref != nil {
		refCPU, refRPS = ref.cpu().Med, ref.rps().Med
	}
	sb.WriteString("\n| row | CPU µs/req | CPU vs bare Go | req/s | req/s vs bare Go | p50 ms | p99 ms | proxy CPU % | load CPU % | errors | RSS idle MiB | RSS MiB |\n")
	sb.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, rr := range rep.rows {
		label := rr.row.label
		if rr.row.ref {
			label += " (ref)"
		}
		if rr.err != nil || len(rr.runs) == 0 {
			msg := "no runs"
			if rr.err != nil {
				msg = strings.SplitN(rr.err.Error(), "\n", 2)[0]
			}
			fmt.Fprintf(&sb, "| %s | FAILED: %s | | | | | | | | | | |\n", label, strings.ReplaceAll(msg, "|", "/"))
			continue
		}
		cpu, rps := rr.cpu(), rr.rps()
		p50 := rr.values(func(r runResult) float64 { return float64(r.wrk.P50) / 1e6 })
		p99 := rr.values(func(r runResult) float64 { return float64(r.wrk.P99) / 1e6 })
		pct := rr.values(runResult.cpuPct)
		load := rr.values(runResult.loadPct)
		var errs uint64
		for _, r := range rr.runs {
			errs += r.wrk.Errors
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %.1f | %.1f |\n",
			label, fmtSpread(cpu, 1), fmtRatio(cpu.Med, refCPU), fmtSpread(rps, 0), fmtRatio(rps.Med, refRPS),
			fmtNum(p50.Med, 2), fmtNum(p99.Med, 2), fmtNum(pct.Med, 0), fmtNum(load.Med, 0), errs,
			mib(rr.rssIdle), mib(rr.rss))
	}
	sb.WriteString("\nCPU µs/req: CPU time (user + system, /proc/PID/stat) of the proxy's process tree during a run, divided by the requests wrk completed in it — the number to compare; req/s moves with whatever else the machine runs. " +
		"Ratios are medians against the bare Go ReverseProxy of the same run. load CPU %: busy share of the load CPUs (near 100: the generator side, not the proxy, is the limit). " +
		"RSS: VmRSS of the proxy's process tree after start (idle) and after the last run.\n")
	if t := rep.targets(); t != "" {
		sb.WriteString("\n" + t)
	}
	return sb.String()
}

// targets checks the performance targets against this run.
func (rep *compareReport) targets() string {
	var sb strings.Builder
	line := func(what string, got, limit float64, atMost bool) {
		if math.IsNaN(got) {
			return
		}
		ok := got <= limit
		cmp := "≤"
		if !atMost {
			ok, cmp = got >= limit, "≥"
		}
		verdict := "met"
		if !ok {
			verdict = fmt.Sprintf("missed by %.0f%%", 100*math.Abs(got-limit)/limit)
		}
		fmt.Fprintf(&sb, "| %s | %.2f | %s %.2f | %s |\n", what, got, cmp, limit, verdict)
	}
	bare, plain, full, auth, fullAuth, caddy := rep.row(labelBare), rep.row(labelPlain), rep.row(labelFull), rep.row(labelAuth), rep.row(labelFullAuth), rep.row(labelCaddy)
	if bare != nil && full != nil {
		line("full chain CPU/req ÷ bare Go CPU/req", full.cpu().Med/bare.cpu().Med, 1.1, true)
	}
	if caddy != nil && full != nil {
		line("full chain CPU/req ÷ Caddy CPU/req", full.cpu().Med/caddy.cpu().Med, 1, true)
	}
	// "Runs at 0.9× the unauthenticated row": requests per CPU second,
	// which holds whatever else loads the machine; req/s beside it.
	if plain != nil && auth != nil {
		line("basic auth ÷ plain, requests per CPU second", plain.cpu().Med/auth.cpu().Med, 0.9, false)
		line("basic auth ÷ plain, req/s", auth.rps().Med/plain.rps().Med, 0.9, false)
	}
	if full != nil && fullAuth != nil {
		line("full chain + basic auth ÷ full chain, requests per CPU second", full.cpu().Med/fullAuth.cpu().Med, 0.9, false)
		line("full chain + basic auth ÷ full chain, req/s", fullAuth.rps().Med/full.rps().Med, 0.9, false)
	}
	if sb.Len() == 0 {
		return ""
	}
	return "| target | this run | limit | |\n|---|---:|---:|---|\n" + sb.String()
}
