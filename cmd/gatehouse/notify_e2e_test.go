package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBanWebhook: a ban made by a jail in the running gateway reaches a
// loopback webhook receiver as JSON.
func TestBanWebhook(t *testing.T) {
	t.Parallel()
	hook, got := webhookReceiver(t)
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [www.test]
    upstreams: [%s]
probes: {presets: [secrets]}
jails:
  probes: {maxretry: 2, findtime: 1m, bantime: 1h}
notify:
  webhook: %s/hook
`, up.URL(), hook)))
	g.get(t, "www.test", "/.env")
	g.get(t, "www.test", "/.aws/credentials")
	select {
	case p := <-got:
		if p.Event != "ban" || len(p.Bans) != 1 || p.Bans[0].IP != "127.0.0.1" || p.Bans[0].Jail != "probes" {
			t.Fatalf("webhook payload = %+v, want one ban of 127.0.0.1 by probes", p)
		}
		// The offence before the ban is quoted (the one that triggered it
		// may still be in flight when the notifier reads).
		if len(p.Bans[0].Requests) == 0 || !strings.Contains(p.Bans[0].Requests[0], "GET www.test/.env → 403 (probe secrets:") {
			t.Errorf("ban requests = %q, want the /.env probe quoted", p.Bans[0].Requests)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no webhook call within the deadline")
	}
}

// webhookPayload is what a ban webhook call carries.
type webhookPayload struct {
	Event string `json:"event"`
	Bans  []struct {
		IP, Jail, Reason string
		Requests         []string
	} `json:"bans"`
}

// webhookReceiver serves a loopback webhook receiver; its calls arrive on
// the channel.
func webhookReceiver(t *testing.T) (url string, calls <-chan webhookPayload) {
	t.Helper()
	got := make(chan webhookPayload, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var p webhookPayload
		if err := json.Unmarshal(b, &p); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		got <- p
	}))
	t.Cleanup(hook.Close)
	return hook.URL, got
}
