package middleware

import (
	"log/slog"
	"net/http"
	"strconv"

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
	// Location is sent with a redirect status.
	Location string
	// Headers, when set, applies the host's response header policy.
	Headers func(w http.ResponseWriter, r *http.Request)
	// Jail, when set, receives an offence per answer.
	Jail string
}

// Respond answers every request itself. With StatusNoAnswer it logs 444
// and aborts the request: net/http closes an HTTP/1 connection without
// writing anything and resets an HTTP/2 stream.
func Respond(cfg RespondConfig, jails *rules.Jails, log *slog.Logger) http.Handler {
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
			h["Location"] = []string{cfg.Location}
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
	})
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
