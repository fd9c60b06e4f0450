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
		if rr.row.load != loadWrk {
			continue
		}
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
		"RSS: VmRSS of the proxy's process tree after start (idle) and after the last run. " +
		"Paired hosts: one gatehouse, two hosts (with and without basic auth), loaded alternately run by run with the same wrk settings and requests; the warm-up logs in, so the auth row checks a cached login.\n")
	sb.WriteString(rep.h2Table())
	sb.WriteString(rep.tlsTable())
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
	if n := rep.row(labelNginx); n != nil && full != nil {
		line("full chain CPU/req ÷ nginx CPU/req", full.cpu().Med/n.cpu().Med, 2, true)
	}
	if in := rep.row(labelIntel); in != nil && full != nil {
		line("full chain + CDN ranges + feeds ÷ full chain, CPU/req", in.cpu().Med/full.cpu().Med, 1.1, true)
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
	if open, auth := rep.row(labelPairOpen), rep.row(labelPairAuth); open != nil && auth != nil {
		line("paired hosts: basic auth (warm cache) ÷ no auth, CPU/req (median of pairs)", pairRatio(auth, open, runResult.cpuUSPerReq), 1.1, true)
	}
	// HTTP/2 has no goal of its own: it gets the HTTP/1.1 proxy's.
	if g, n := rep.row(labelH2), rep.row(labelNginxH2); g != nil && n != nil {
		line("HTTP/2 CPU/req ÷ nginx HTTP/2 CPU/req (the HTTP/1.1 goal, applied)", g.cpu().Med/n.cpu().Med, 2.0, true)
	}
	if g, n := rep.row(labelTLSFull), rep.row(labelNginxTLSFull); g != nil && n != nil {
		line("TLS full handshake CPU ÷ nginx", g.cpu().Med/n.cpu().Med, 1.5, true)
	}
	if g, n := rep.row(labelTLSResumed), rep.row(labelNginxTLSResumed); g != nil && n != nil {
		line("TLS resumed handshake CPU ÷ nginx", g.cpu().Med/n.cpu().Med, 1.5, true)
	}
	if sb.Len() == 0 {
		return ""
	}
	return "| target | this run | limit | |\n|---|---:|---:|---|\n" + sb.String()
}

// failedCells is a table row for a row that could not be measured, with
// n empty cells after the message.
func failedCells(rr *rowResult, n int) string {
	msg := "no runs"
	if rr.err != nil {
		msg = strings.SplitN(rr.err.Error(), "\n", 2)[0]
	}
	return fmt.Sprintf("| %s | FAILED: %s |%s\n", rr.row.label, strings.ReplaceAll(msg, "|", "/"), strings.Repeat(" |", n))
}

// peerOf is the nginx row a gatehouse TLS or HTTP/2 row is compared to.
var peerOf = map[string]string{
	labelH2:              labelNginxH2,
	labelTLSFull:         labelNginxTLSFull,
	labelTLSFullPQ:       labelNginxTLSFull,
	labelTLSResumed:      labelNginxTLSResumed,
	labelNginxH2:         labelNginxH2,
	labelNginxTLSFull:    labelNginxTLSFull,
	labelNginxTLSResumed: labelNginxTLSResumed,
}

// vsNginx is rr's median CPU per request or handshake divided by its
// nginx row's.
func (rep *compareReport) vsNginx(rr *rowResult) string {
	n := rep.row(peerOf[rr.row.label])
	if n == nil {
		return "–"
	}
	return fmtRatio(rr.cpu().Med, n.cpu().Med)
}

// h2Table renders the HTTP/2 rows, "" without any.
func (rep *compareReport) h2Table() string {
	var sb strings.Builder
	for _, rr := range rep.rows {
		if rr.row.load != loadH2 {
			continue
		}
		if rr.err != nil || len(rr.runs) == 0 {
			sb.WriteString(failedCells(rr, 7))
			continue
		}
		mean := rr.values(func(r runResult) float64 { return float64(r.mean) / 1e6 })
		var errs uint64
		for _, r := range rr.runs {
			errs += r.wrk.Errors
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s | %d |\n", rr.row.label,
			fmtSpread(rr.cpu(), 1), rep.vsNginx(rr), fmtSpread(rr.rps(), 0), fmtNum(mean.Med, 2),
			fmtNum(rr.values(runResult.cpuPct).Med, 0), fmtNum(rr.values(runResult.loadPct).Med, 0), errs)
	}
	if sb.Len() == 0 {
		return ""
	}
	c := rep.cfg
	return fmt.Sprintf("\n### HTTP/2 over TLS\n\nh2load -c %d -m %d -t 1 -D %s GET https://127.0.0.1%s (TLS 1.3, the bench's ECDSA P-256 certificate); the gatehouse row is the plain proxy config on its HTTPS listener, nginx proxies with `listen ssl http2`.\n\n",
		c.h2Conns, c.h2Streams, wrkDuration(c.duration), c.path) +
		"| row | CPU µs/req | CPU vs nginx | req/s | mean ms | proxy CPU % | load CPU % | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n" +
		sb.String()
}

// tlsTable renders the TLS handshake rows, "" without any.
func (rep *compareReport) tlsTable() string {
	var sb strings.Builder
	for _, rr := range rep.rows {
		if rr.row.load != loadTLSFull && rr.row.load != loadTLSResumed {
			continue
		}
		if rr.err != nil || len(rr.runs) == 0 {
			sb.WriteString(failedCells(rr, 7))
			continue
		}
		var n, resumed, errs uint64
		group := ""
		for _, r := range rr.runs {
			n += r.wrk.Requests
			resumed += r.resumed
			errs += r.wrk.Errors
			group = r.group
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s | %d |\n", rr.row.label,
			fmtSpread(rr.cpu(), 1), rep.vsNginx(rr), fmtSpread(rr.rps(), 0),
			fmt.Sprintf("%.1f%% (%s)", 100*float64(resumed)/float64(n), group),
			fmtNum(rr.values(runResult.cpuPct).Med, 0), fmtNum(rr.values(runResult.loadPct).Med, 0), errs)
	}
	if sb.Len() == 0 {
		return ""
	}
	c := rep.cfg
	return fmt.Sprintf("\n### TLS handshakes\n\n`gatehouse-bench handshake -c %d -d %s`: %d connections at a time, each a TCP connect, a TLS handshake, close_notify and close, no request; "+
		"full: no session kept; resumed: every connection resumes the session its worker got at start (TLS 1.3 PSK with a fresh X25519 share). The client offers X25519 only (as OpenSSL 3.0 clients do, so both servers do the same key exchange) except in the X25519MLKEM768 row, which offers Go's default list, as current browsers do. "+
		"Both servers sign with the same ECDSA P-256 key, session tickets on.\n\n", c.tlsConns, c.duration, c.tlsConns) +
		"| row | CPU µs/handshake | CPU vs nginx | handshakes/s | resumed (group) | proxy CPU % | load CPU % | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n" +
		sb.String()
}
