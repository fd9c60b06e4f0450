package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// maxWebhookAnswer bounds how much of a webhook's answer is read (and
// thrown away) so the connection can be reused.
const maxWebhookAnswer = 64 << 10

// webhook posts messages as JSON.
type webhook struct {
	url    string // a secret: never logged nor put in errors
	host   string // what logs and errors name instead
	client *http.Client
}

// webhookPayload is the JSON body of a webhook POST.
type webhookPayload struct {
	// Event is always "ban".
	Event string       `json:"event"`
	Bans  []webhookBan `json:"bans"`
	// Omitted counts the bans of this message not listed in Bans.
	Omitted int `json:"omitted"`
	// Coalesced: the notifier fell behind the ban list; some bans made
	// since the last message are in neither Bans nor Omitted.
	Coalesced bool `json:"coalesced"`
	// Node is Config.Node.
	Node string `json:"node"`
	// Time is when the message was made, RFC 3339 UTC.
	Time string `json:"time"`
}

type webhookBan struct {
	// IP is an address, or a prefix in CIDR notation when the ban covers
	// more than one address (as in the admin API).
	IP string `json:"ip"`
	// Jail is "" for a manual ban.
	Jail   string `json:"jail"`
	Reason string `json:"reason"`
	// Until is when the ban ends, RFC 3339 UTC.
	Until string `json:"until"`
	// DurationSeconds is the ban's length, from when it was made.
	DurationSeconds int64 `json:"duration_seconds"`
	// Count is which ban of this client by Jail this is.
	Count int `json:"count"`
	// Requests are the last offences noted for the client, oldest
	// first: request lines, or for a watch jail "watch SOURCE FILE: LINE";
	// empty when none were noted.
	Requests []string `json:"requests"`
}

func newWebhook(raw string, client *http.Client) (*webhook, error) {
	// The URL is a secret: errors describe it without quoting it.
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("webhook: not a valid URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("webhook: scheme %q is not https or http", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("webhook: URL has no host")
	}
	if u.Fragment != "" {
		return nil, errors.New("webhook: URL has a #fragment, which is never sent")
	}
	return &webhook{url: raw, host: u.Host, client: client}, nil
}

// newHTTPClient returns the webhook client used when Config.HTTPClient is
// nil, and a function that closes its idle connections.
func newHTTPClient(timeout time.Duration) (*http.Client, func()) {
	t := &http.Transport{
		Proxy:                 nil, // notifications go where configured, not through $HTTPS_PROXY
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          2,
		IdleConnTimeout:       90 * time.Second,
	}
	c := &http.Client{
		Transport: t,
		Timeout:   timeout,
		// A redirected POST becomes a GET (301, 302) or is resent to a
		// place nobody configured; neither is a delivery.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, t.CloseIdleConnections
}

func (w *webhook) name() string { return "webhook" }

func (w *webhook) send(ctx context.Context, m *message) error {
	p := webhookPayload{
		Event:     "ban",
		Bans:      make([]webhookBan, 0, len(m.bans)),
		Omitted:   m.omitted,
		Coalesced: m.coalesced,
		Node:      m.node,
		Time:      m.time.UTC().Format(time.RFC3339),
	}
	for _, e := range m.bans {
		reqs := e.requests
		if reqs == nil {
			reqs = []string{}
		}
		p.Bans = append(p.Bans, webhookBan{
			IP:              e.ban.IP(),
			Jail:            e.ban.Jail,
			Reason:          e.ban.Reason,
			Until:           e.ban.Until.UTC().Format(time.RFC3339),
			DurationSeconds: int64(banDuration(e.ban, m.time) / time.Second),
			Count:           e.ban.Count,
			Requests:        reqs,
		})
	}
	body, err := json.Marshal(p)
	if err != nil {
		return &permanentError{fmt.Errorf("encode webhook payload: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return &permanentError{fmt.Errorf("post webhook to %s: %w", w.host, stripURL(err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatehouse")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook to %s: %w", w.host, stripURL(err))
	}
	// Drained to reuse the connection; what the receiver says is not used.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebhookAnswer))
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c <= 299:
		return nil
	case c >= 500, c == http.StatusRequestTimeout, c == http.StatusTooManyRequests:
		return fmt.Errorf("post webhook to %s: %s", w.host, resp.Status)
	default:
		return &permanentError{fmt.Errorf("post webhook to %s: %s", w.host, resp.Status)}
	}
}

// stripURL returns the cause inside a *url.Error, whose text would
// include the webhook URL and with it any token in its path or query.
func stripURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}
