package middleware

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"gatehouse/rules"
)

// StatusNoAnswer is nginx's 444: the connection is closed without an
// answer. It is only ever logged.
const StatusNoAnswer = 444

// RespondConfig configures Respond: a fixed answer, nginx's return.
type RespondConfig struct {
	// Status is the answer's status, or StatusNoAnswer.
	Status int
	// Body is the text/plain body. "": the status text.
	Body string
	// Location is sent with a redirect status. It may use the variables
	// of LocationVariables, as nginx's return does.
	Location string
	// Headers, when set, applies the host's response header policy.
	Headers func(w http.ResponseWriter, r *http.Request)
	// Jail, when set, receives an offence per answer.
	Jail string
}

// Respond answers every request itself. With StatusNoAnswer it logs 444
// and aborts the request: net/http closes an HTTP/1 connection without
// writing anything and resets an HTTP/2 stream.
func Respond(cfg RespondConfig, jails *rules.Jails, log *slog.Logger) (http.Handler, error) {
	loc, err := parseLocation(cfg.Location)
	if err != nil {
		return nil, err
	}
	body := cfg.Body
	if body == "" && cfg.Status != StatusNoAnswer {
		body = http.StatusText(cfg.Status)
	}
	if body != "" {
		body += "\n"
	}
	length, text := []string{strconv.Itoa(len(body))}, []byte(body)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := ScopeFrom(r)
		if cfg.Jail != "" && jails != nil {
			s.Offence = "respond " + strconv.Itoa(cfg.Status)
			jails.Report(cfg.Jail, s.ClientIP, "respond "+strconv.Itoa(cfg.Status))
		}
		if cfg.Status == StatusNoAnswer {
			logStatus(w, StatusNoAnswer)
			panic(http.ErrAbortHandler)
		}
		if cfg.Headers != nil {
			cfg.Headers(w, r)
		}
		h := w.Header()
		if cfg.Location != "" {
			h["Location"] = []string{loc.expand(r, s)}
		}
		if cfg.Status == http.StatusNoContent || cfg.Status == http.StatusNotModified {
			w.WriteHeader(cfg.Status)
			return
		}
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		h["Content-Length"] = length
		h["X-Content-Type-Options"] = []string{"nosniff"}
		w.WriteHeader(cfg.Status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(text)
		}
	}), nil
}

// LocationVariables are the nginx variables a respond location may use:
// "https://$host$request_uri" keeps the host, path and query.
var LocationVariables = []string{"$scheme", "$host", "$request_uri", "$uri", "$args", "$is_args"}

// location is a parsed respond location: literal text and variables.
type location []locationPart

type locationPart struct {
	lit string
	v   string // "" for literal text
}

// CheckLocation reports why s is no respond location: a variable it
// may not use, or a target that is neither an absolute http(s) URL nor
// a path starting with "/" (checked with the variables filled in as a
// request would).
func CheckLocation(s string) error {
	loc, err := parseLocation(s)
	if err != nil {
		return err
	}
	var sample strings.Builder
	for _, p := range loc {
		sample.WriteString(p.lit)
		if v, ok := locationSample[p.v]; ok {
			sample.WriteString(v)
		}
	}
	t := sample.String()
	u, err := url.Parse(t)
	if err != nil || strings.ContainsAny(t, "\r\n\x00 ") ||
		!(strings.HasPrefix(t, "/") && !strings.HasPrefix(t, "//") || (u.Scheme == "http" || u.Scheme == "https") && u.Host != "") {
		return fmt.Errorf("%q is not an absolute http(s) URL nor a path starting with /", s)
	}
	return nil
}

// locationSample is what each variable stands for in CheckLocation.
var locationSample = map[string]string{"$scheme": "https", "$host": "h.example", "$request_uri": "/p?q",
	"$uri": "/p", "$args": "q", "$is_args": "?"}

func parseLocation(s string) (location, error) {
	var loc location
	for s != "" {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			loc = append(loc, locationPart{lit: s})
			break
		}
		if i > 0 {
			loc = append(loc, locationPart{lit: s[:i]})
		}
		s = s[i+1:]
		braced := strings.HasPrefix(s, "{")
		if braced {
			s = s[1:]
		}
		n := 0
		for n < len(s) && (s[n] == '_' || 'a' <= s[n] && s[n] <= 'z' || 'A' <= s[n] && s[n] <= 'Z' || '0' <= s[n] && s[n] <= '9') {
			n++
		}
		name := "$" + s[:n]
		if braced {
			if n == len(s) || s[n] != '}' {
				return nil, fmt.Errorf("%q: a ${ without its }", "${"+s)
			}
			s = s[n+1:]
		} else {
			s = s[n:]
		}
		if !slices.Contains(LocationVariables, name) {
			return nil, fmt.Errorf("variable %s is not expanded; a location may use %s", name, strings.Join(LocationVariables, ", "))
		}
		loc = append(loc, locationPart{v: name})
	}
	return loc, nil
}

// expand writes the location for r.
func (loc location) expand(r *http.Request, s *Scope) string {
	if len(loc) == 1 && loc[0].v == "" {
		return loc[0].lit
	}
	var b strings.Builder
	for _, p := range loc {
		switch p.v {
		case "":
			b.WriteString(p.lit)
		case "$scheme":
			if r.TLS != nil {
				b.WriteString("https")
			} else {
				b.WriteString("http")
			}
		case "$host":
			b.WriteString(s.RequestHost)
		case "$request_uri":
			b.WriteString(r.URL.RequestURI())
		case "$uri":
			// The canonical path, as nginx's $uri is normalised.
			b.WriteString((&url.URL{Path: s.Path.Path}).EscapedPath())
		case "$args":
			b.WriteString(r.URL.RawQuery)
		case "$is_args":
			if r.URL.RawQuery != "" {
				b.WriteByte('?')
			}
		}
	}
	out := b.String()
	if strings.HasPrefix(out, "//") || strings.HasPrefix(out, "/\\") {
		// "$request_uri" first, for the path "//evil.example/": a
		// browser reads "//evil.example/" as another site.
		out = "/" + strings.TrimLeft(out, "/\\")
	}
	return out
}

// statusLogger is the access log's recorder: it logs a status a handler
// did not send.
type statusLogger interface{ logStatus(code int) }

// logStatus tells the access log, if any wraps w, the status to log.
func logStatus(w http.ResponseWriter, code int) {
	for {
		if sl, ok := w.(statusLogger); ok {
			sl.logStatus(code)
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}
