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
	if cfg.rotate {
		esc := "off (-escalate=false)"
		if cfg.escalate {
			esc = "`" + attackEscalate + "` on the probes jail"
		}
		env[len(env)-1] = fmt.Sprintf("flood: %d IPv6 attackers, one /48 each, a fresh address from the current /64 for every probe and the next /64 every %d probes, a new connection per probe as fast as answered, %v timeout, %v pause after a failure; kernel sets read every %v; prefix escalation %s",
			cfg.scanners, cfg.rotateEvery, cfg.scanTimeout, cfg.scanPause, cfg.poll, esc)
	}
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
	if rep.cfg.rotate {
		rep.attackersTable(&sb, med)
	} else {
		sb.WriteString("\n### Scanners\n\n| row | 95 % had their banning answer (s) | 50 % in kernel set (s) | 95 % in kernel set (s) | 100 % (s) | banning answer → kernel set, s: median / p95 | in set after the flood | answers per scanner mean / p95 / max | answers beyond maxretry mean / p95 / max | probes answered | probes failed / pending at end | kernel entries after the flood | SYNs dropped: listen queue full |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	}
	for _, rr := range rep.rows {
		if len(rr.runs) == 0 || rep.cfg.rotate {
			continue
		}
		nth95 := med(rr, func(r attackRun) float64 { return percentile(r.nthAnswer, 95) })
		t50 := med(rr, func(r attackRun) float64 { return r.t50 })
		t95 := med(rr, func(r attackRun) float64 { return r.t95 })
		t100 := med(rr, func(r attackRun) float64 { return r.t100 })
		end := med(rr, func(r attackRun) float64 { return float64(r.bannedEnd) })
		mean := med(rr, func(r attackRun) float64 { m, _, _ := role.AnswersSummary(r.answered); return m })
		p95 := med(rr, func(r attackRun) float64 { _, p, _ := role.AnswersSummary(r.answered); return float64(p) })
		mx := med(rr, func(r attackRun) float64 { _, _, m := role.AnswersSummary(r.answered); return float64(m) })
		xMean := med(rr, func(r attackRun) float64 { m, _, _ := excess(r.answered, rep.cfg.maxRetry); return m })
		xP95 := med(rr, func(r attackRun) float64 { _, p, _ := excess(r.answered, rep.cfg.maxRetry); return float64(p) })
		xMax := med(rr, func(r attackRun) float64 { _, _, m := excess(r.answered, rep.cfg.maxRetry); return float64(m) })
		entries := med(rr, func(r attackRun) float64 { return float64(r.entriesEnd) })
		drops := med(rr, func(r attackRun) float64 { return listenDrops(r) })
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
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s of %d | %s / %s / %s | %s / %s / %s | %s | %s / %s | %s | %s |\n", rr.row.label,
			fmtSpread(nth95, 2), setCol(t50, 2), setCol(t95, 2), setCol(t100, 2), lat, setCol(end, 0), rep.cfg.scanners,
			fmtNum(mean.Med, 1), fmtNum(p95.Med, 0), fmtNum(mx.Med, 0), fmtNum(xMean.Med, 2), fmtNum(xP95.Med, 0), fmtNum(xMax.Med, 0),
			fmtNum(total.Med, 0), fmtNum(fail.Med, 0), fmtNum(pend.Med, 0), setCol(entries, 0), fmtNum(drops.Med, 0))
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
		"Times are from the scanners' first probe, read from the kernel sets every poll interval (an upper bound: a reading takes tens of ms on the busy load CPU); they include how fast the scanners themselves reach their maxretry-th probe. 95 % had their banning answer: when 95 % of the scanners had got the answer to their maxretry-th probe, the attackers' own pace; the kernel set's times cannot be earlier. Banning answer → kernel set: per scanner, from the answer to its maxretry-th probe to the first reading that found it in the set. Answers per scanner: HTTP answers a scanner got (any status) before the kernel dropped its packets; beyond maxretry: those after its banning answer. " +
		"SYNs dropped: the server namespace's ListenDrops over the flood (a dropped SYN is retried a second later). " +
		"With -ipv6-rotate, a /48 is cut off when one entry of the kernel set covers it whole (escalation); bans of its /64s alone never cut off an attacker that moves on. " +
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
		legit := func() {
			line("legit after 95 % banned ÷ clean", vals(func(r attackRun) float64 { return r.afterRate / r.cleanRate }), 0.9, false)
			line("CPU per legit request, flood ÷ clean", vals(func(r attackRun) float64 { return r.proxyUSFld / r.proxyUSClean }), 1.2, true)
		}
		if rep.cfg.rotate {
			line("95 % of attacking /48s cut off (s)", vals(func(r attackRun) float64 { return r.t95 }), 2, true)
			legit()
			continue
		}
		// 1,000 scanners: 0.5 s and 1 answer beyond maxretry; up to
		// 5,000: 1 s and 2.
		t95, extra := 0.5, 1.0
		if rep.cfg.scanners > 1000 {
			t95, extra = 1, 2
		}
		line("95 % of scanners in the kernel set (s)", vals(func(r attackRun) float64 { return r.t95 }), t95, true)
		line("answers per scanner beyond maxretry (mean)", vals(func(r attackRun) float64 { m, _, _ := excess(r.answered, rep.cfg.maxRetry); return m }), extra, true)
		legit()
	}
	if sb.Len() == 0 {
		return ""
	}
	return "| target | this run | limit | |\n|---|---:|---:|---|\n" + sb.String()
}

// attackersTable writes the -ipv6-rotate table: per attacking /48.
func (rep *attackReport) attackersTable(sb *strings.Builder, med func(*attackRowResult, func(attackRun) float64) spread) {
	sb.WriteString("\n### IPv6 attackers, per /48\n\n| row | 50 % of /48s cut off (s) | 95 % cut off (s) | 100 % (s) | cut off after the flood | answers per /48 mean / p95 / max | /64s per /48 mean | last answer, s: median / p95 | probes answered | probes failed / pending at end | kernel entries after the flood | SYNs dropped: listen queue full |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, rr := range rep.rows {
		if len(rr.runs) == 0 {
			continue
		}
		f := func(g func(attackRun) float64) spread { return med(rr, g) }
		setCol := func(s spread, prec int) string {
			if banMode(rr.row, rep.cfg) == "" {
				return "no set"
			}
			return fmtSpread(s, prec)
		}
		t50, t95, t100 := f(func(r attackRun) float64 { return r.t50 }), f(func(r attackRun) float64 { return r.t95 }), f(func(r attackRun) float64 { return r.t100 })
		end := f(func(r attackRun) float64 { return float64(r.bannedEnd) })
		mean := f(func(r attackRun) float64 { m, _, _ := role.AnswersSummary(r.answered); return m })
		p95 := f(func(r attackRun) float64 { _, p, _ := role.AnswersSummary(r.answered); return float64(p) })
		mx := f(func(r attackRun) float64 { _, _, m := role.AnswersSummary(r.answered); return float64(m) })
		nets := f(func(r attackRun) float64 { m, _, _ := role.AnswersSummary(r.subnets); return m })
		lastMed := f(func(r attackRun) float64 { return percentile(r.lastAnswer, 50) })
		lastP95 := f(func(r attackRun) float64 { return percentile(r.lastAnswer, 95) })
		total := f(func(r attackRun) float64 {
			n := 0
			for _, a := range r.answered {
				n += a
			}
			return float64(n)
		})
		fail := f(func(r attackRun) float64 { return float64(r.failed) })
		pend := f(func(r attackRun) float64 { return float64(r.pending) })
		entries := f(func(r attackRun) float64 { return float64(r.entriesEnd) })
		drops := f(func(r attackRun) float64 { return listenDrops(r) })
		fmt.Fprintf(sb, "| %s | %s | %s | %s | %s of %d | %s / %s / %s | %s | %s / %s | %s | %s / %s | %s | %s |\n", rr.row.label,
			setCol(t50, 2), setCol(t95, 2), setCol(t100, 2), setCol(end, 0), rep.cfg.scanners,
			fmtNum(mean.Med, 1), fmtNum(p95.Med, 0), fmtNum(mx.Med, 0), fmtNum(nets.Med, 1),
			fmtNum(lastMed.Med, 2), fmtNum(lastP95.Med, 2), fmtNum(total.Med, 0), fmtNum(fail.Med, 0), fmtNum(pend.Med, 0),
			setCol(entries, 0), fmtNum(drops.Med, 0))
	}
}

// excess summarises the answers per scanner beyond maxRetry, the ones
// after its banning answer (mean, p95, max).
func excess(answered []int, maxRetry int) (float64, int, int) {
	x := make([]int, len(answered))
	for i, a := range answered {
		x[i] = max(0, a-maxRetry)
	}
	return role.AnswersSummary(x)
}

// listenDrops is the SYNs the server namespace dropped during the flood
// because a listen queue was full; NaN when the counters were not read.
func listenDrops(r attackRun) float64 {
	v, ok := r.netstat["TcpExt.ListenDrops"]
	if !ok {
		return math.NaN()
	}
	return float64(v)
}
