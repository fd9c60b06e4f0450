package middleware

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gatehouse/rules/intel/geo"
	"gatehouse/signer"
)

// Access log formats.
const (
	// FormatJSON writes one JSON object per request.
	FormatJSON = "json"
	// FormatCombined writes nginx's "combined" format, so existing log
	// tools and fail2ban filters keep working.
	FormatCombined = "combined"
	// FormatCombinedHost is FormatCombined with the request's host in
	// front, like nginx's vcombined / Apache's vhost_combined, for one
	// file shared by several hosts.
	FormatCombinedHost = "combined_host"
	// FormatOff writes nothing; OnDone still runs.
	FormatOff = "off"
)

// AccessLogConfig configures AccessLog.
type AccessLogConfig struct {
	// Format is FormatJSON, FormatCombined, FormatCombinedHost or
	// FormatOff. Default FormatJSON.
	Format string
	// Out receives one complete line per Write. It must be safe for
	// concurrent use. Required unless Format is FormatOff.
	Out io.Writer
	// Hosts gives some configured hosts their own format and output, by
	// Scope.Host (per-host access logs). Default none: every request goes
	// to Format and Out.
	Hosts map[string]AccessLogTarget
	// HostOf names the configured host of a request answered before it
	// was routed (a probe, a ban, a malformed request: Scope.Host is
	// empty) from Scope.RequestHost, or the Host header when that is not
	// set yet; "" for none. So such a request is logged where its host's
	// requests are. It is only called when
	// Hosts is not empty. nil: such requests go to Format and Out.
	HostOf func(requestHost string) string
	// OnDone, when set, is called after every request with its final
	// status and body size (metrics hang here). It must not retain r or s.
	OnDone func(r *http.Request, s *Scope, status int, size int64, d time.Duration)
	// Geo, when set, gives the json format the client's "country" and
	// "asn" (looked up once per request, by LookupGeo). nil: left out.
	Geo *geo.DB
}

// AccessLogTarget is where one host's access log lines go.
type AccessLogTarget struct {
	// Format is FormatJSON, FormatCombined, FormatCombinedHost or
	// FormatOff. Required.
	Format string
	// Out receives the lines, as AccessLogConfig.Out. Required unless
	// Format is FormatOff.
	Out io.Writer
}

// logFormat is an access log format resolved once, so the request path
// compares integers.
type logFormat uint8

const (
	logJSON logFormat = iota
	logCombined
	logCombinedHost
	logOff
)

// accessTarget is a validated AccessLogTarget.
type accessTarget struct {
	format logFormat
	out    io.Writer
}

func newAccessTarget(format string, out io.Writer) (accessTarget, error) {
	var f logFormat
	switch format {
	case FormatJSON:
		f = logJSON
	case FormatCombined:
		f = logCombined
	case FormatCombinedHost:
		f = logCombinedHost
	case FormatOff:
		return accessTarget{format: logOff}, nil
	default:
		return accessTarget{}, fmt.Errorf("access log format %q is not one of json, combined, combined_host, off", format)
	}
	if out == nil {
		return accessTarget{}, errors.New("access log: no output writer")
	}
	return accessTarget{format: f, out: out}, nil
}

// AccessLog records every request once it has been answered: the final
// status, body bytes and duration, in the configured format. It must run
// directly below WithScope so that it sees every answer, including the
// gateway's own refusals. Line buffers and response recorders are pooled.
func AccessLog(cfg AccessLogConfig) (func(http.Handler) http.Handler, error) {
	if cfg.Format == "" {
		cfg.Format = FormatJSON
	}
	global, err := newAccessTarget(cfg.Format, cfg.Out)
	if err != nil {
		return nil, err
	}
	var hosts map[string]*accessTarget
	for name, ht := range cfg.Hosts {
		t, err := newAccessTarget(ht.Format, ht.Out)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", name, err)
		}
		if hosts == nil {
			hosts = make(map[string]*accessTarget, len(cfg.Hosts))
		}
		hosts[name] = &t
	}
	hostOf := cfg.HostOf
	// target picks the output of one request: its host's, when it has
	// one, else the global one. Two map lookups at most; no allocation.
	target := func(r *http.Request, s *Scope) *accessTarget {
		if hosts == nil {
			return &global
		}
		name := s.Host
		if name == "" && hostOf != nil {
			// Before the hygiene layer read it, the Host header stands in.
			if h := s.RequestHost; h != "" {
				name = hostOf(h)
			} else if r.Host != "" {
				name = hostOf(r.Host)
			}
		}
		if t := hosts[name]; t != nil {
			return t
		}
		return &global
	}
	recorders := sync.Pool{New: func() any { return new(recorder) }}
	buffers := sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
	done := func(r *http.Request, rec *recorder) {
		status, size := rec.status, rec.size
		if status == 0 {
			status = http.StatusOK // nothing written: net/http sends 200
		}
		rec.ResponseWriter = nil
		recorders.Put(rec)

		s := ScopeFrom(r)
		d := time.Since(s.Start)
		if cfg.OnDone != nil {
			cfg.OnDone(r, s, status, size, d)
		}
		t := target(r, s)
		if t.format == logOff {
			return
		}
		bp := buffers.Get().(*[]byte)
		line := (*bp)[:0]
		switch t.format {
		case logJSON:
			if cfg.Geo != nil {
				LookupGeo(s, cfg.Geo)
			}
			line = appendJSONLine(line, r, s, status, size, d)
		case logCombinedHost:
			line = appendLogHost(line, r, s)
			line = append(line, ' ')
			line = appendCombinedLine(line, r, s, status, size)
		default:
			line = appendCombinedLine(line, r, s, status, size)
		}
		// A failing log sink must not fail the request, and the sink
		// reports its own errors.
		_, _ = t.out.Write(line)
		if cap(line) <= 64<<10 {
			*bp = line
			buffers.Put(bp)
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := recorders.Get().(*recorder)
			rec.ResponseWriter, rec.status, rec.size = w, 0, 0
			// Deferred, so that a request the proxy aborts mid-body
			// (panic(http.ErrAbortHandler)) is still logged and counted.
			defer done(r, rec)
			next.ServeHTTP(rec, r)
		})
	}, nil
}

// recorder captures the status and body size of a response. It forwards
// Flush and Hijack (server-sent events, WebSocket) and unwraps for
// http.ResponseController.
type recorder struct {
	http.ResponseWriter
	status int
	size   int64
}

func (rec *recorder) WriteHeader(code int) {
	// 1xx responses are interim; the final status comes later.
	if rec.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.size += int64(n)
	return n, err
}

func (rec *recorder) Flush() {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	// Flushing is best effort: a writer that cannot flush simply buffers.
	_ = http.NewResponseController(rec.ResponseWriter).Flush()
}

// Hijack records a protocol switch: after it the connection belongs to
// the caller (a WebSocket tunnel), which writes the 101 itself.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil && rec.status == 0 {
		rec.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// logStatus records a status that was not sent (444: closed without an
// answer).
func (rec *recorder) logStatus(code int) { rec.status = code }

const hexDigits = "0123456789abcdef"

// appendJSONLine appends one JSON access log object and a newline.
func appendJSONLine(b []byte, r *http.Request, s *Scope, status int, size int64, d time.Duration) []byte {
	b = append(b, `{"time":"`...)
	b = s.Start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","client_ip":"`...)
	b = appendAddr(b, s)
	b = append(b, `","host":`...)
	b = appendJSONString(b, r.Host)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, r.Method)
	// The query string is left out: signed links carry signatures there.
	b = append(b, `,"path":`...)
	b = appendJSONString(b, r.URL.EscapedPath())
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, r.Proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, size, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendFloat(b, d.Seconds(), 'f', 6, 64)
	b = append(b, `,"upstream":`...)
	b = appendJSONString(b, s.Upstream)
	if s.User != "" {
		b = append(b, `,"user":`...)
		b = appendJSONString(b, s.User)
	}
	if s.GeoDone {
		// A country is two letters (geo.CountryIndex): no escaping.
		b = append(b, `,"country":"`...)
		b = append(b, s.Country...)
		b = append(b, `","asn":`...)
		b = strconv.AppendUint(b, uint64(s.ASN), 10)
	}
	if s.ClientCert != "" {
		b = append(b, `,"client_cert":`...)
		b = appendJSONString(b, s.ClientCert)
	}
	// A Referer may be a signed link (a page opened through one): its
	// signature is redacted.
	b = append(b, `,"referer":`...)
	b = appendJSONRedacted(b, r.Header.Get("Referer"))
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, r.Header.Get("User-Agent"))
	return append(b, "}\n"...)
}

func appendAddr(b []byte, s *Scope) []byte {
	if !s.ClientIP.IsValid() {
		return append(b, '-')
	}
	return s.ClientIP.AppendTo(b)
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, so every line is valid JSON whatever a client sent.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONChars(b, s)
	return append(b, '"')
}

// appendJSONRedacted appends s as a JSON string with every gh_signature
// value replaced by signer.RedactedSignature.
func appendJSONRedacted(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendRedacted(b, s, appendJSONChars)
	return append(b, '"')
}

// appendRedacted appends s escaped by esc, with every gh_signature value
// replaced by signer.RedactedSignature.
func appendRedacted(b []byte, s string, esc func([]byte, string) []byte) []byte {
	for {
		start, end := signer.SignatureSpan(s)
		if start < 0 {
			return esc(b, s)
		}
		b = esc(b, s[:start])
		b = append(b, signer.RedactedSignature...)
		s = s[end:]
	}
}

// appendJSONChars appends s escaped for the inside of a JSON string.
func appendJSONChars(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}

// appendLogHost appends nginx's $host for the combined_host format: the
// request's host as the hygiene layer read it (Scope.RequestHost), or, for
// a request refused before it (a banned or flooding client), the Host
// header lower-cased without its port; "-" when there is none. It is
// escaped like every other field, so a client cannot shift the fields with
// a crafted Host.
func appendLogHost(b []byte, r *http.Request, s *Scope) []byte {
	if s.RequestHost != "" {
		return appendNginxEscaped(b, s.RequestHost)
	}
	h := hostWithoutPort(r.Host)
	if h == "" {
		return append(b, '-')
	}
	start := len(b)
	b = appendNginxEscaped(b, h)
	for i := start; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return b
}

// hostWithoutPort strips a ":port" from a Host value: "a.example:8080" →
// "a.example", "[2001:db8::1]:80" → "[2001:db8::1]".
func hostWithoutPort(h string) string {
	i := strings.LastIndexByte(h, ':')
	if i < 0 || strings.IndexByte(h[i:], ']') >= 0 {
		return h
	}
	if strings.HasPrefix(h, "[") || strings.IndexByte(h[:i], ':') < 0 {
		return h[:i]
	}
	return h // a bare IPv6 address: no port to strip
}

// appendCombinedLine appends one line in nginx's combined format:
//
//	$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
func appendCombinedLine(b []byte, r *http.Request, s *Scope, status int, size int64) []byte {
	b = appendAddr(b, s)
	b = append(b, " - "...)
	if s.User != "" {
		b = appendNginxEscaped(b, s.User)
	} else {
		b = append(b, '-')
	}
	b = append(b, " ["...)
	b = s.Start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, `] "`...)
	b = appendNginxEscaped(b, r.Method)
	b = append(b, ' ')
	// The request-target keeps its query, as nginx's $request does; a
	// gh_signature in it (a request the signed-link check did not strip:
	// refused earlier, or outside signed_links.paths) is redacted, and so
	// is one in the Referer.
	b = appendNginxRedacted(b, r.RequestURI)
	b = append(b, ' ')
	b = appendNginxEscaped(b, r.Proto)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, size, 10)
	b = append(b, ` "`...)
	if ref := r.Header.Get("Referer"); ref != "" {
		b = appendNginxRedacted(b, ref)
	} else {
		b = append(b, '-')
	}
	b = append(b, `" "`...)
	b = appendNginxField(b, r.Header.Get("User-Agent"))
	return append(b, "\"\n"...)
}

func appendNginxField(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendNginxEscaped(b, s)
}

// appendNginxRedacted is appendNginxEscaped with every gh_signature
// value replaced by signer.RedactedSignature.
func appendNginxRedacted(b []byte, s string) []byte {
	return appendRedacted(b, s, appendNginxEscaped)
}

// appendNginxEscaped escapes like nginx's access log: '"', '\\' and bytes
// outside printable ASCII become \xHH, so a client cannot forge a field or
// a line.
func appendNginxEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c >= 0x7f {
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}
