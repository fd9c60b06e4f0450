//go:build linux

package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"gatehouse/cmd/gatehouse-bench/role"
)

// attackEnv describes the machine, the tools and the settings.
func attackEnv(ctx context.Context, cfg attackConfig) []string {
	env := []string{
		fmt.Sprintf("date: %s, one run of `gatehouse-bench attack` (BENCH_SMOKE=%v)", time.Now().UTC().Format("2006-01-02 15:04 MST"), cfg.smoke),
		"machine: " + machine(),
		"gatehouse: " + toolBanner(ctx, cfg.gatehouse, "version") + "; wrk " + versionOf(toolBanner(ctx, "wrk", "-v")),
	}
	if !cfg.smoke {
		env = append(env, "peers: nginx "+versionOf(toolBanner(ctx, "nginx", "-v"))+"; fail2ban "+versionOf(toolBanner(ctx, "fail2ban-server", "-V"))+
			" (banaction "+cfg.f2bAction+", backend auto)")
	}
	env = append(env,
		fmt.Sprintf("jail: maxretry %d, findtime 10m, bantime 1h; gatehouse: every probe preset, access log combined to a file; nginx: access_log combined", cfg.maxRetry),
		fmt.Sprintf("legit client: wrk -t%d -c%d from %s: %s alone (clean), then %s with the flood; %d run(s) per row (median, min–max)",
			cfg.threads, cfg.conns, attackLegitIP, wrkDuration(cfg.clean), wrkDuration(cfg.flood), cfg.runs),
		fmt.Sprintf("flood: %d scanner addresses, each a new connection per probe as fast as answered, %v timeout, %v pause after a failure; kernel sets read every %v",
			cfg.scanners, cfg.scanTimeout, cfg.scanPause, cfg.poll))
	if cfg.place.sut != nil {
		env = append(env, fmt.Sprintf("placement: proxy and fail2ban on CPU %s, upstream app on CPU %s; wrk, scanner and ban poller on CPU %s",
			cpuList(cfg.place.sut), cpuList(cfg.place.upstream), cpuList(cfg.place.load)))
	}
	return env
}

func (rep *attackReport) markdown() string {
	var sb strings.Builder
	sb.WriteString("## gatehouse-bench attack\n\n")
	for _, e := range rep.env {
		sb.WriteString("- " + e + "\n")
	}
	med := func(rr *attackRowResult, f func(attackRun) float64) spread {
		vs := make([]float64, len(rr.runs))
		for i, r := range rr.runs {
			vs[i] = f(r)
		}
		return spreadOf(vs)
	}
	failed := func(rr *attackRowResult) string {
		msg := "no runs"
		if rr.err != nil {
			msg = strings.SplitN(rr.err.Error(), "\n", 2)[0]
		}
		return "FAILED: " + strings.ReplaceAll(msg, "|", "/")
	}
	sb.WriteString("\n### Legit client\n\n| row | clean req/s | during flood req/s | during ÷ clean | after 95 % banned req/s | after ÷ clean | p99 ms clean → flood | wrk errors clean / flood |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, rr := range rep.rows {
		if len(rr.runs) == 0 {
			fmt.Fprintf(&sb, "| %s | %s | | | | | | |\n", rr.row.label, failed(rr))
			continue
		}
		clean, flood := med(rr, func(r attackRun) float64 { return r.cleanRPS }), med(rr, func(r attackRun) float64 { return r.floodRPS })
		cleanRate := med(rr, func(r attackRun) float64 { return r.cleanRate })
		after := med(rr, func(r attackRun) float64 { return r.afterRate })
		p99c := med(rr, func(r attackRun) float64 { return float64(r.cleanP99) / 1e6 })
		p99f := med(rr, func(r attackRun) float64 { return float64(r.floodP99) / 1e6 })
		var ec, ef uint64
		for _, r := range rr.runs {
			ec, ef = ec+r.cleanErrs, ef+r.floodErrs
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s → %s | %d / %d |\n", rr.row.label,
			fmtSpread(clean, 0), fmtSpread(flood, 0), fmtRatio(flood.Med, clean.Med),
			fmtSpread(after, 0), fmtRatio(after.Med, cleanRate.Med), fmtNum(p99c.Med, 2), fmtNum(p99f.Med, 2), ec, ef)
	}
	sb.WriteString("\n### Scanners\n\n| row | 50 % in kernel set (s) | 95 % in kernel set (s) | 100 % (s) | banning answer → kernel set, s: median / p95 | in set after the flood | answers per scanner mean / p95 / max | probes answered | probes failed / pending at end |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, rr := range rep.rows {
		if len(rr.runs) == 0 {
			continue
		}
		t50 := med(rr, func(r attackRun) float64 { return r.t50 })
		t95 := med(rr, func(r attackRun) float64 { return r.t95 })
		t100 := med(rr, func(r attackRun) float64 { return r.t100 })
		end := med(rr, func(r attackRun) float64 { return float64(r.bannedEnd) })
		mean := med(rr, func(r attackRun) float64 { m, _, _ := role.AnswersSummary(r.answered); return m })
		p95 := med(rr, func(r attackRun) float64 { _, p, _ := role.AnswersSummary(r.answered); return float64(p) })
		mx := med(rr, func(r attackRun) float64 { _, _, m := role.AnswersSummary(r.answered); return float64(m) })
		total := med(rr, func(r attackRun) float64 {
			n := 0
			for _, a := range r.answered {
				n += a
			}
			return float64(n)
		})
		latMed := med(rr, func(r attackRun) float64 { return percentile(r.banLatency, 50) })
		latP95 := med(rr, func(r attackRun) float64 { return percentile(r.banLatency, 95) })
		fail := med(rr, func(r attackRun) float64 { return float64(r.failed) })
		pend := med(rr, func(r attackRun) float64 { return float64(r.pending) })
		setCol := func(s spread, prec int) string {
			if banMode(rr.row, rep.cfg) == "" {
				return "no set"
			}
			return fmtSpread(s, prec)
		}
		lat := "no set"
		if banMode(rr.row, rep.cfg) != "" {
			lat = fmtNum(latMed.Med, 2) + " / " + fmtNum(latP95.Med, 2)
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s of %d | %s / %s / %s | %s | %s / %s |\n", rr.row.label,
			setCol(t50, 2), setCol(t95, 2), setCol(t100, 2), lat, setCol(end, 0), rep.cfg.scanners,
			fmtNum(mean.Med, 1), fmtNum(p95.Med, 0), fmtNum(mx.Med, 0), fmtNum(total.Med, 0), fmtNum(fail.Med, 0), fmtNum(pend.Med, 0))
	}
	sb.WriteString("\n### CPU per legit request\n\n| row | proxy µs/legit req clean | during flood | flood ÷ clean | fail2ban CPU s clean / flood | proxy + fail2ban µs/legit req during flood |\n|---|---:|---:|---:|---:|---:|\n")
	for _, rr := range rep.rows {
		if len(rr.runs) == 0 {
			continue
		}
		pc := med(rr, func(r attackRun) float64 { return r.proxyUSClean })
		pf := med(rr, func(r attackRun) float64 { return r.proxyUSFld })
		dc := med(rr, func(r attackRun) float64 { return r.defCPUClean })
		df := med(rr, func(r attackRun) float64 { return r.defCPUFlood })
		sf := med(rr, func(r attackRun) float64 { return r.stackUSFld })
		def := "–"
		if rr.row.fail2ban {
			def = fmtNum(dc.Med, 2) + " / " + fmtNum(df.Med, 2)
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s |\n", rr.row.label, fmtSpread(pc, 1), fmtSpread(pf, 1),
			fmtRatio(pf.Med, pc.Med), def, fmtSpread(sf, 1))
	}
	sb.WriteString("\nClean: the legit client alone; during flood: the same client while the scanners run (wrk's own count); after 95 % banned: legit requests the upstream app served from the moment 95 % of the scanners were in the kernel ban set to the end of the flood, per second, ÷ the app's clean-phase rate. " +
		"Times are from the scanners' first probe, read from the kernel sets every poll interval (an upper bound: a reading takes tens of ms on the busy load CPU); they include how fast the scanners themselves reach their maxretry-th probe. Banning answer → kernel set: per scanner, from the answer to its maxretry-th probe to the first reading that found it in the set. Answers per scanner: HTTP answers a scanner got (any status) before the kernel dropped its packets. " +
		"CPU per legit request: CPU of the proxy's process tree (and of fail2ban with its ban commands) during the phase ÷ legit requests completed.\n")
	if t := rep.targets(); t != "" {
		sb.WriteString("\n" + t)
	}
	return sb.String()
}

// targets checks the performance targets for the gatehouse rows.
func (rep *attackReport) targets() string {
	var sb strings.Builder
	for _, rr := range rep.rows {
		// The none row shows what the kernel set is worth; the targets
		// are about the rows that have one.
		if rr.row.kind != kindGatehouse || rr.row.firewall == "none" || len(rr.runs) == 0 {
			continue
		}
		vals := func(f func(attackRun) float64) float64 {
			vs := make([]float64, len(rr.runs))
			for i, r := range rr.runs {
				vs[i] = f(r)
			}
			return spreadOf(vs).Med
		}
		line := func(what string, got, limit float64, atMost bool) {
			verdict := "met"
			cmp := "≤"
			ok := got <= limit
			if !atMost {
				cmp, ok = "≥", got >= limit
			}
			if math.IsNaN(got) {
				verdict, ok = "not reached", false
			}
			if !ok && !math.IsNaN(got) {
				verdict = fmt.Sprintf("missed by %.0f%%", 100*math.Abs(got-limit)/limit)
			}
			fmt.Fprintf(&sb, "| %s: %s | %s | %s %.2f | %s |\n", rr.row.label, what, fmtNum(got, 2), cmp, limit, verdict)
		}
		line("95 % of scanners in the kernel set (s)", vals(func(r attackRun) float64 { return r.t95 }), 2, true)
		line("banning answer → kernel set, p95 (s)", vals(func(r attackRun) float64 { return percentile(r.banLatency, 95) }), 2, true)
		line("answers per scanner (max)", vals(func(r attackRun) float64 { _, _, m := role.AnswersSummary(r.answered); return float64(m) }), 5, true)
		line("legit after 95 % banned ÷ clean", vals(func(r attackRun) float64 { return r.afterRate / r.cleanRate }), 0.9, false)
		line("CPU per legit request, flood ÷ clean", vals(func(r attackRun) float64 { return r.proxyUSFld / r.proxyUSClean }), 1.3, true)
	}
	if sb.Len() == 0 {
		return ""
	}
	return "| target | this run | limit | |\n|---|---:|---:|---|\n" + sb.String()
}
