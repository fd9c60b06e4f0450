package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gatehouse/rules/testenv"
)

// watchTestConfig is a config with one sshd watch source reading log.
func watchTestConfig(t *testing.T, log string) string {
	t.Helper()
	return writeFile(t, "gatehouse.yaml", `watch:
  - name: sshd
    filter: sshd
    files: [`+log+`]
jails:
  sshd: {maxretry: 5, findtime: 10m, bantime: 1h}
`)
}

// TestRulesTestWatch: a hand-written Debian auth.log (rsyslog's RFC 3339
// times, months before the test runs) through the sshd watch source: the
// scanner's fifth failure within findtime bans it, its sixth comes while
// banned, a host name is not resolved, a successful login and other
// services' lines are missed; from a file, from standard input and
// gzip-compressed alike.
func TestRulesTestWatch(t *testing.T) {
	t.Parallel()
	log, err := filepath.Abs(filepath.Join("testdata", "watch", "auth.log"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := watchTestConfig(t, log)
	want := []string{
		"Watch source: sshd, filter sshd (default mode), jail sshd (maxretry 5, findtime 10m, bantime 1h)\n",
		"Lines: 11 read", "Time span: 2026-03-14T10:00:01Z to 2026-03-14T10:06:00Z\n",
		"Lines without a timestamp: 0\n", "Failregex: 7 lines\n", "[6] ^Failed", "Missed (no failregex matched): 4\n",
		"Blamed but older than findtime before the newest line: 0\n", "Blamed a host name, not resolved: 1\n",
		"Offences for jail sshd: 6\n", "Bans that would follow: 1\n",
		"  2026-03-14T10:00:12Z  203.0.113.7/32       sshd     ban #1 until 2026-03-14T11:00:12Z\n",
		"Offences by clients banned at the time (kept out by the kernel set): 1\n",
		"Missed lines (4 of 4):\n", "  2026-03-14T10:00:05.000000+00:00 web1 sshd[1201]: Connection closed by invalid user admin",
		"Accepted publickey for deploy", "CRON[1300]"}
	for _, tc := range []struct {
		name  string
		stdin []byte
		args  []string
	}{
		{name: "file", args: []string{log}},
		{name: "stdin", stdin: data},
		{name: "stdin gzip", stdin: gzipped(t, string(data)), args: []string{"-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"rules", "test", "-c", cfg, "--watch", "sshd", "--print-missed"}, tc.args...)
			out, errOut, code := runGatehouseStdin(t, bytes.NewReader(tc.stdin), args...)
			if code != 0 || errOut != "" {
				t.Fatalf("rules test %v = %d\n%s%s", args, code, out, errOut)
			}
			wantInOrder(t, tc.name, out, want...)
		})
	}
}

// TestRulesTestWatchUsage: the flags that go together, and the exit
// codes of the access-log replay.
func TestRulesTestWatchUsage(t *testing.T) {
	t.Parallel()
	empty := writeFile(t, "empty.log", "")
	noTime := writeFile(t, "notime.log", "sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2\n")
	cfg := watchTestConfig(t, empty)
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "watch without config", args: []string{"--watch", "sshd", empty}, wantCode: exitUsage, wantErr: "usage:"},
		{name: "filter with config", args: []string{"-c", cfg, "--filter", "sshd", empty}, wantCode: exitUsage, wantErr: "usage:"},
		{name: "mode with watch", args: []string{"-c", cfg, "--watch", "sshd", "--mode", "ddos", empty}, wantCode: exitUsage, wantErr: "usage:"},
		{name: "top with watch", args: []string{"-c", cfg, "--watch", "sshd", "--top", "3", empty}, wantCode: exitUsage, wantErr: "usage:"},
		{name: "print-missed without watch", args: []string{"-c", cfg, "--print-missed", empty}, wantCode: exitUsage, wantErr: "usage:"},
		{name: "unknown source", args: []string{"-c", cfg, "--watch", "postfix", empty}, wantCode: exitUsage,
			wantErr: "watch postfix: no such watch source (the config has [sshd])"},
		{name: "unknown filter", args: []string{"--filter", "sshd2", empty}, wantCode: exitUsage, wantErr: `filter "sshd2" is not built in`},
		{name: "unknown mode", args: []string{"--filter", "sshd", "--mode", "paranoid", empty}, wantCode: exitUsage,
			wantErr: `mode "paranoid" is not one of normal, ddos, extra, aggressive`},
		{name: "no lines", args: []string{"-c", cfg, "--watch", "sshd", empty}, wantCode: exitRuntime, wantErr: "warning: no lines to replay"},
		{name: "no timestamps", args: []string{"--filter", "sshd", noTime}, wantCode: exitRuntime,
			wantErr: "warning: " + noTime + ": none of its 1 lines has a timestamp the filter reads"},
		{name: "missing log", args: []string{"--filter", "sshd", empty + ".1"}, wantCode: exitRuntime, wantErr: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, code := runGatehouse(t, append([]string{"rules", "test"}, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("rules test %v = %d, stderr %q; want %d and %q\n%s", tc.args, code, errOut, tc.wantCode, tc.wantErr, out)
			}
		})
	}
}

// sshdCorpus returns the path of fail2ban's sshd sample log.
func sshdCorpus(t *testing.T) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join(repoRoot, "..", "shared", "corpora", "fail2ban", "logs", "sshd"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		testenv.Missing(t, "fail2ban corpus: %v", err)
	}
	return path
}

var (
	showFail    = regexp.MustCompile(`(?m)^fail failregex\[\d+\] (\S+)\t(.*)$`)
	reportCount = func(out, label string) int {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + `: (\d+)`).FindStringSubmatch(out)
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
)

// TestRulesTestWatchCorpus: fail2ban's sshd sample log through the
// built-in filter alone, in its default mode: every line fail2ban's
// annotations say blames a host (unconditionally, in the log's first
// section, which is judged in the default mode) is listed by
// --show-matches as blaming that host, and no line they say does not;
// every line is read, comments skipped. The same log through a watch
// source splits those lines into offences, old and unresolved ones.
func TestRulesTestWatchCorpus(t *testing.T) {
	t.Parallel()
	corpus := sshdCorpus(t)
	data, err := os.ReadFile(corpus)
	if err != nil {
		t.Fatal(err)
	}
	lines, comments := 0, 0
	wantHost := map[string]string{} // line → host, for match: true
	wantNone := map[string]bool{}   // lines with match: false
	var ann map[string]any
	section := 0
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.TrimSpace(l) == "":
			continue
		case strings.HasPrefix(l, "#"):
			comments++
			if strings.HasPrefix(l, "# filterOptions:") {
				section++
			}
			if j, ok := strings.CutPrefix(l, "# failJSON:"); ok {
				ann = nil
				if err := json.Unmarshal([]byte(j), &ann); err != nil {
					t.Fatalf("%s: %q: %v", corpus, l, err)
				}
			}
			continue
		}
		lines++
		if a := ann; a != nil && section == 1 && a["constraint"] == nil {
			if a["match"] == true && a["host"] != nil {
				wantHost[l] = a["host"].(string)
			} else if a["match"] == false {
				wantNone[l] = true
			}
		}
		ann = nil
	}
	if len(wantHost) < 40 || len(wantNone) < 10 {
		t.Fatalf("%s: %d lines blaming a host, %d blaming none: the annotations were not read", corpus, len(wantHost), len(wantNone))
	}

	out, errOut, code := runGatehouse(t, "rules", "test", "--filter", "sshd", "--show-matches", corpus)
	if code != 0 {
		t.Fatalf("rules test --filter sshd = %d\n%s%s", code, out, errOut)
	}
	if want := "Lines: " + strconv.Itoa(lines) + " read"; !strings.Contains(out, want) ||
		!strings.Contains(out, strconv.Itoa(comments)+" comment lines (#) skipped") {
		t.Errorf("report lacks %q or %d comments:\n%s", want, comments, out)
	}
	got := map[string]string{}
	for _, m := range showFail.FindAllStringSubmatch(out, -1) {
		got[m[2]] = m[1]
	}
	for l, host := range wantHost {
		g, ok := got[l]
		if a, err := netip.ParseAddr(host); err == nil {
			host = a.Unmap().String()
		}
		if !ok || g != host {
			t.Errorf("line %q: blamed %q (listed %v), want %q", l, g, ok, host)
		}
	}
	for l := range wantNone {
		if g, ok := got[l]; ok {
			t.Errorf("line %q: blamed %q, want no one", l, g)
		}
	}
	blamed := reportCount(out, "Blamed")
	if blamed != len(got) {
		t.Errorf("Blamed: %d, but --show-matches listed %d", blamed, len(got))
	}

	// The aggressive mode blames more of the same log.
	aggr, errOut, code := runGatehouse(t, "rules", "test", "--filter", "sshd", "--mode", "aggressive", corpus)
	if code != 0 || reportCount(aggr, "Blamed") <= blamed {
		t.Errorf("rules test --filter sshd --mode aggressive = %d, blamed %d, want more than %d\n%s%s", code,
			reportCount(aggr, "Blamed"), blamed, aggr, errOut)
	}

	// Through a watch source: the same lines, judged against the jail.
	cfg := watchTestConfig(t, corpus)
	out, errOut, code = runGatehouse(t, "rules", "test", "-c", cfg, "--watch", "sshd", corpus)
	if code != 0 {
		t.Fatalf("rules test --watch sshd = %d\n%s%s", code, out, errOut)
	}
	offences, old := reportCount(out, "Offences for jail sshd"), reportCount(out, "Blamed but older than findtime before the newest line")
	unresolved := reportCount(out, "Blamed a host name, not resolved")
	if offences+old+unresolved != blamed || offences <= 0 || old <= 0 || unresolved <= 0 {
		t.Errorf("offences %d + old %d + unresolved %d, want %d, each > 0:\n%s", offences, old, unresolved, blamed, out)
	}
}
