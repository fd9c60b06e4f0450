package match

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseLogLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		line    string
		want    LogEntry
		wantErr string
	}{
		{
			name: "nginx combined",
			line: `203.0.113.7 - - [25/Nov/2026:10:00:01 +0100] "GET /wp-login.php?x=1 HTTP/1.1" 404 153 "-" "Mozilla/5.0"` + "\n",
			want: LogEntry{Time: time.Date(2026, 11, 25, 9, 0, 1, 0, time.UTC), Method: "GET", Target: "/wp-login.php?x=1",
				Status: 404, UserAgent: "Mozilla/5.0"},
		},
		{
			name: "referer and escapes",
			line: `2001:db8::1 - bob [25/Nov/2026:10:00:01 +0000] "POST /a\x22b HTTP/1.1" 200 0 "https://evil.test/" "ua \"quoted\""`,
			want: LogEntry{Time: time.Date(2026, 11, 25, 10, 0, 1, 0, time.UTC), Method: "POST", Target: `/a"b`,
				Status: 200, Referer: "https://evil.test/", RefererSet: true, UserAgent: `ua "quoted"`},
		},
		{
			name: "apache vhost_combined",
			line: `www.example.com 192.0.2.222 - - [18/Aug/2024:21:08:39 +0100] "GET /f.jpg HTTP/1.1" 403 332 "-" "TrackBack/1.02"`,
			want: LogEntry{Time: time.Date(2024, 8, 18, 20, 8, 39, 0, time.UTC), Host: "www.example.com", Method: "GET",
				Target: "/f.jpg", Status: 403, UserAgent: "TrackBack/1.02"},
		},
		{
			name: "common format",
			line: `198.51.100.2 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.0" 200 12`,
			want: LogEntry{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Method: "GET", Target: "/", Status: 200},
		},
		{
			name: "garbled request line",
			line: `198.51.100.2 - - [01/Jan/2026:00:00:00 +0000] "\x16\x03\x01" 400 150 "-" "-"`,
			want: LogEntry{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Target: "\x16\x03\x01", Status: 400},
		},
		{
			name: "gatehouse json",
			line: `{"time":"2026-11-25T10:00:01.500Z","client_ip":"203.0.113.7","host":"media.example.com","method":"GET","path":"/v/a.mp4","status":403,"referer":"https://evil.test/","user_agent":"x"}`,
			want: LogEntry{Time: time.Date(2026, 11, 25, 10, 0, 1, 5e8, time.UTC), Host: "media.example.com", Method: "GET",
				Target: "/v/a.mp4", Status: 403, Referer: "https://evil.test/", RefererSet: true, UserAgent: "x"},
		},
		{name: "not a log line", line: "hello world", wantErr: "not an access log line"},
		{name: "bad time", line: `203.0.113.7 - - [yesterday] "GET / HTTP/1.1" 200 1`, wantErr: "bad time"},
		{name: "bad json", line: `{"time":1}`, wantErr: "json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseLogLine([]byte(tc.line))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrLogLine) {
					t.Fatalf("ParseLogLine(%q) error = %v, want %q", tc.line, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLogLine(%q): %v", tc.line, err)
			}
			if !got.Time.Equal(tc.want.Time) {
				t.Errorf("ParseLogLine(%q).Time = %v, want %v", tc.line, got.Time, tc.want.Time)
			}
			got.Time, got.IP = tc.want.Time, tc.want.IP
			if got != tc.want {
				t.Errorf("ParseLogLine(%q) = %+v, want %+v", tc.line, got, tc.want)
			}
		})
	}
}

// TestParseLogLineCorpus reads every line of fail2ban's nginx and Apache
// test logs that looks like an access log line.
func TestParseLogLineCorpus(t *testing.T) {
	t.Parallel()
	dir := corpusDir(t)
	parsed := 0
	for _, name := range []string{"nginx-botsearch", "apache-botsearch", "nginx-bad-request", "apache-badbots"} {
		f, err := os.Open(filepath.Join(dir, "fail2ban", "logs", name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, `] "`) || strings.HasPrefix(line, "#") {
				continue
			}
			if _, err := ParseLogLine([]byte(line)); err != nil {
				t.Errorf("%s: ParseLogLine(%q): %v", name, line, err)
			}
			parsed++
		}
		f.Close()
	}
	if parsed < 10 {
		t.Errorf("found %d access log lines in the corpus, want at least 10", parsed)
	}
}

// FuzzParseLogLine: never panics; a parsed line has a valid address and a
// non-zero time.
func FuzzParseLogLine(f *testing.F) {
	// Combined, common, escapes, garbled requests, JSON, garbage.
	f.Add([]byte(`203.0.113.7 - - [25/Nov/2026:10:00:01 +0100] "GET /x HTTP/1.1" 404 153 "-" "Mozilla/5.0"`))
	f.Add([]byte(`198.51.100.2 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.0" 200 12`))
	f.Add([]byte(`2001:db8::1 - b [25/Nov/2026:10:00:01 +0000] "P \x22\\ H" 200 0 "r\" "u\x`))
	f.Add([]byte(`{"time":"2026-11-25T10:00:01Z","client_ip":"::1","path":"/"}`))
	f.Add([]byte(`1.2.3.4 - - [`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseLogLine(line)
		if err != nil {
			return
		}
		if !e.IP.IsValid() || e.Time.IsZero() {
			t.Fatalf("ParseLogLine(%q) = %+v without address or time", line, e)
		}
	})
}

func BenchmarkParseLogLine(b *testing.B) {
	line := []byte(`203.0.113.7 - - [25/Nov/2026:10:00:01 +0100] "GET /wp-login.php?x=1 HTTP/1.1" 404 153 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)"`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseLogLine(line); err != nil {
			b.Fatal(err)
		}
	}
}
