package match

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// LogEntry is one access log line, as far as the rules care: who asked
// for what, when, from which page.
type LogEntry struct {
	Time time.Time
	IP   netip.Addr
	// Host is the requested host; empty for formats that do not log it
	// (nginx combined).
	Host   string
	Method string
	// Target is the request-target as logged ("/a/b?q"), unescaped from
	// the log's own escaping.
	Target string
	Status int
	// Referer is the Referer header; RefererSet is false when the log
	// says there was none ("-").
	Referer    string
	RefererSet bool
	UserAgent  string
}

// ErrLogLine reports a line that is not in a known access log format.
var ErrLogLine = errors.New("not an access log line")

// ParseLogLine parses one line of an nginx/Apache "combined" (or
// "common", or Apache "vhost_combined") access log, or of gatehouse's JSON
// access log. Lines of
// other formats give an error wrapping ErrLogLine.
func ParseLogLine(line []byte) (LogEntry, error) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > 0 && line[0] == '{' {
		return parseJSONLine(line)
	}
	return parseCombinedLine(line)
}

// jsonLine is gatehouse's JSON access log object (middleware.AccessLog).
type jsonLine struct {
	Time      string  `json:"time"`
	ClientIP  string  `json:"client_ip"`
	Host      string  `json:"host"`
	Method    string  `json:"method"`
	Path      string  `json:"path"`
	Status    int     `json:"status"`
	Referer   *string `json:"referer"`
	UserAgent string  `json:"user_agent"`
}

func parseJSONLine(line []byte) (LogEntry, error) {
	var j jsonLine
	if err := json.Unmarshal(line, &j); err != nil {
		return LogEntry{}, fmt.Errorf("%w: json: %v", ErrLogLine, err)
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return LogEntry{}, fmt.Errorf("%w: time %q", ErrLogLine, j.Time)
	}
	ip, err := netip.ParseAddr(j.ClientIP)
	if err != nil {
		return LogEntry{}, fmt.Errorf("%w: client_ip %q", ErrLogLine, j.ClientIP)
	}
	e := LogEntry{Time: t, IP: ip.Unmap(), Host: j.Host, Method: j.Method, Target: j.Path,
		Status: j.Status, UserAgent: j.UserAgent}
	if j.Referer != nil && *j.Referer != "" {
		e.Referer, e.RefererSet = *j.Referer, true
	}
	return e, nil
}

// parseCombinedLine parses
//
//	$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent ["$http_referer" "$http_user_agent"]
func parseCombinedLine(line []byte) (LogEntry, error) {
	var e LogEntry
	fail := func(what string) (LogEntry, error) {
		return LogEntry{}, fmt.Errorf("%w: %s", ErrLogLine, what)
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return fail("no client address")
	}
	rest := line[sp+1:]
	ip, err := netip.ParseAddr(string(line[:sp]))
	if err != nil {
		// Apache's vhost_combined: "%v %h …", the host name first.
		sp2 := bytes.IndexByte(rest, ' ')
		if sp2 <= 0 {
			return fail("bad client address")
		}
		if ip, err = netip.ParseAddr(string(rest[:sp2])); err != nil {
			return fail("bad client address")
		}
		e.Host, rest = string(line[:sp]), rest[sp2+1:]
	}
	e.IP = ip.Unmap()
	open := bytes.IndexByte(rest, '[')
	if open < 0 {
		return fail("no time")
	}
	rest = rest[open+1:]
	end := bytes.IndexByte(rest, ']')
	if end < 0 {
		return fail("no time")
	}
	if e.Time, err = time.Parse("02/Jan/2006:15:04:05 -0700", string(rest[:end])); err != nil {
		return fail("bad time")
	}
	rest = bytes.TrimLeft(rest[end+1:], " ")
	request, rest, ok := quoted(rest)
	if !ok {
		return fail("no request")
	}
	// "METHOD TARGET PROTO"; a garbled request line ("\x16\x03…", "-")
	// keeps what there is in Target.
	if m, r, ok := bytes.Cut(request, []byte(" ")); ok {
		e.Method = string(m)
		if t, _, ok := bytes.Cut(r, []byte(" ")); ok {
			e.Target = string(t)
		} else {
			e.Target = string(r)
		}
	} else {
		e.Target = string(request)
	}
	rest = bytes.TrimLeft(rest, " ")
	sp = bytes.IndexByte(rest, ' ')
	if sp < 0 {
		sp = len(rest)
	}
	if e.Status, err = strconv.Atoi(string(rest[:sp])); err != nil {
		return fail("bad status")
	}
	rest = rest[sp:]
	// Bytes sent, then the optional combined fields.
	rest = bytes.TrimLeft(rest, " ")
	if sp = bytes.IndexByte(rest, ' '); sp < 0 {
		return e, nil
	}
	rest = bytes.TrimLeft(rest[sp:], " ")
	ref, rest, ok := quoted(rest)
	if !ok {
		return e, nil
	}
	if string(ref) != "-" && len(ref) > 0 {
		e.Referer, e.RefererSet = string(ref), true
	}
	if ua, _, ok := quoted(bytes.TrimLeft(rest, " ")); ok && string(ua) != "-" {
		e.UserAgent = string(ua)
	}
	return e, nil
}

// quoted reads a double-quoted field at the start of b, undoing nginx's
// \xHH and Apache's \" \\ escapes, and returns it and what follows.
func quoted(b []byte) (field, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, b, false
	}
	var out []byte
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			if out == nil {
				return b[1:i], b[i+1:], true
			}
			return out, b[i+1:], true
		case c == '\\' && i+1 < len(b):
			if out == nil {
				out = append(make([]byte, 0, len(b)), b[1:i]...)
			}
			switch n := b[i+1]; {
			case n == 'x' && i+3 < len(b) && isHex(b[i+2]) && isHex(b[i+3]):
				v, _ := strconv.ParseUint(string(b[i+2:i+4]), 16, 8)
				out = append(out, byte(v))
				i += 3
			default:
				out = append(out, n)
				i++
			}
		default:
			if out != nil {
				out = append(out, c)
			}
		}
	}
	return nil, b, false
}
