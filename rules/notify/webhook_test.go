package notify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"gatehouse/rules"
)

func TestWebhookOneBan(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	clock := newFakeClock()
	s := start(t, Config{Webhook: rcv.srv.URL + "/hook", Node: "edge-1", Now: clock.Now}, 0)
	s.n.Note(netip.MustParseAddr("203.0.113.7"), "GET /.env HTTP/1.1", "GET /wp-login.php HTTP/1.1")
	b := s.ban(t, "203.0.113.7", 2)

	p := rcv.next(t)
	if p.method != http.MethodPost || p.contentType != "application/json" || p.userAgent != "gatehouse" {
		t.Errorf("request = %s, Content-Type %q, User-Agent %q; want POST, %q, %q",
			p.method, p.contentType, p.userAgent, "application/json", "gatehouse")
	}
	want := webhookPayload{
		Event: "ban",
		Bans: []webhookBan{{
			IP:              "203.0.113.7",
			Jail:            "probes",
			Reason:          "probe",
			Until:           b.Until.Format(time.RFC3339),
			DurationSeconds: 3600,
			Count:           2,
			Requests:        []string{"GET /.env HTTP/1.1", "GET /wp-login.php HTTP/1.1"},
		}},
		Node: "edge-1",
		Time: "2031-03-04T05:06:07Z",
	}
	if !reflect.DeepEqual(p.payload, want) {
		t.Errorf("payload = %+v, want %+v\nbody: %s", p.payload, want, p.body)
	}
	for _, key := range []string{`"omitted":0`, `"coalesced":false`, `"requests":[`} {
		if !strings.Contains(string(p.body), key) {
			t.Errorf("body %s lacks %s", p.body, key)
		}
	}

	// An unban is not news.
	s.bans.Unban(b.Prefix)
	s.stop(t)
	if rest := rcv.rest(); len(rest) != 0 {
		t.Errorf("after one ban and its unban: %d more requests, want 0; first: %s", len(rest), rest[0].body)
	}
}

func TestWebhookNoRequestsIsEmptyList(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	s := start(t, Config{Webhook: rcv.srv.URL, Now: newFakeClock().Now}, 0)
	s.ban(t, "2001:db8:1:2::/64", 1)
	p := rcv.next(t)
	if !strings.Contains(string(p.body), `"requests":[]`) || !strings.Contains(string(p.body), `"ip":"2001:db8:1:2::/64"`) {
		t.Errorf("body = %s, want ip 2001:db8:1:2::/64 and requests []", p.body)
	}
}

// A storm of 50 bans within MinInterval: the first goes out at once, the
// other 49 wait and go out together, not as 49 requests.
func TestWebhookStormIsDigested(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	clock := newFakeClock()
	s := start(t, Config{Webhook: rcv.srv.URL, MinInterval: time.Hour, MaxPerDigest: 10, Now: clock.Now}, 0)

	s.ban(t, "198.51.100.0", 1)
	if p := rcv.next(t); len(p.payload.Bans) != 1 || p.payload.Bans[0].IP != "198.51.100.0" || p.payload.Omitted != 0 {
		t.Fatalf("first message = %s, want the first ban alone", p.body)
	}
	for i := 1; i < 50; i++ {
		s.ban(t, fmt.Sprintf("198.51.100.%d", i), 1)
	}
	// Nothing is due before MinInterval; stopping sends what waits.
	s.stop(t)
	rest := rcv.rest()
	if len(rest) != 1 {
		t.Fatalf("after 49 more bans within MinInterval: %d requests, want 1 digest", len(rest))
	}
	d := rest[0].payload
	if len(d.Bans) != 10 || d.Omitted != 39 || d.Coalesced {
		t.Errorf("digest lists %d, omitted %d, coalesced %v; want 10, 39, false", len(d.Bans), d.Omitted, d.Coalesced)
	}
	for i, b := range d.Bans {
		if want := fmt.Sprintf("198.51.100.%d", i+1); b.IP != want {
			t.Errorf("digest ban %d = %s, want %s", i, b.IP, want)
		}
	}
}

// When MinInterval has passed, the next event sends everything waiting,
// including the changes queued but not yet read.
func TestWebhookDigestAfterInterval(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	clock := newFakeClock()
	s := start(t, Config{Webhook: rcv.srv.URL, MinInterval: time.Minute, Now: clock.Now}, 0)

	s.ban(t, "192.0.2.1", 1)
	rcv.next(t)
	for i := 2; i <= 30; i++ {
		s.ban(t, fmt.Sprintf("192.0.2.%d", i), 1)
	}
	clock.Advance(time.Minute)
	// The event that finds the interval over is this ban, or the end of
	// the first delivery if Run learns of it only now; either way the 29
	// waiting bans go out together, and 192.0.2.31 with them or after.
	s.ban(t, "192.0.2.31", 1)
	p := rcv.next(t)
	if got := len(p.payload.Bans); got < 29 || p.payload.Bans[0].IP != "192.0.2.2" || p.payload.Bans[28].IP != "192.0.2.30" {
		t.Errorf("digest after MinInterval lists %d bans (%s), want 192.0.2.2 to 192.0.2.30 at least", got, p.body)
	}
	if want := "2031-03-04T05:07:07Z"; p.payload.Time != want {
		t.Errorf("digest time = %s, want %s", p.payload.Time, want)
	}
	s.stop(t)
	total := len(p.payload.Bans)
	rest := rcv.rest()
	for _, r := range rest {
		total += len(r.payload.Bans)
	}
	if len(rest) > 1 || total != 30 {
		t.Errorf("after the first digest: %d more requests, %d bans in all; want at most 1 more, 30 bans", len(rest), total)
	}
}

// A ban waiting for MinInterval is sent when the interval ends, with no
// further event: the timer, on the real clock.
func TestWebhookDigestByTimer(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	s := start(t, Config{Webhook: rcv.srv.URL, MinInterval: 20 * time.Millisecond}, 0)
	s.ban(t, "192.0.2.1", 1)
	rcv.next(t)
	s.ban(t, "192.0.2.2", 1)
	if p := rcv.next(t); len(p.payload.Bans) != 1 || p.payload.Bans[0].IP != "192.0.2.2" {
		t.Errorf("second message = %s, want 192.0.2.2 alone", p.body)
	}
}

// A re-ban of a prefix already waiting replaces its entry.
func TestWebhookReBanReplaces(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	s := start(t, Config{Webhook: rcv.srv.URL, MinInterval: time.Hour, Now: newFakeClock().Now}, 0)
	s.ban(t, "192.0.2.1", 1)
	rcv.next(t)
	s.ban(t, "192.0.2.9", 1)
	s.ban(t, "192.0.2.9", 2)
	s.stop(t)
	rest := rcv.rest()
	if len(rest) != 1 || len(rest[0].payload.Bans) != 1 || rest[0].payload.Bans[0].Count != 2 {
		t.Errorf("after two bans of one address: %d requests (%v), want one listing it once with count 2", len(rest), rest)
	}
}

func TestWebhookRetries5xx(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 500, 503, 200)
	logs := newLogRecorder()
	s := start(t, Config{Webhook: rcv.srv.URL + "/secret-token", Backoff: time.Millisecond, Log: logs.logger(), Now: newFakeClock().Now}, 0)
	s.ban(t, "192.0.2.1", 1)
	first := rcv.next(t)
	for range 2 {
		if p := rcv.next(t); string(p.body) != string(first.body) {
			t.Errorf("retry body = %s, want the first attempt's %s", p.body, first.body)
		}
	}
	logs.wait(t, "notification sent")
	s.stop(t)
	if rest := rcv.rest(); len(rest) != 0 {
		t.Errorf("after 500, 503, 200: %d more requests, want 0", len(rest))
	}
	if strings.Contains(logs.buf.String(), "secret-token") {
		t.Errorf("log shows the webhook URL's path:\n%s", logs.buf)
	}
}

func TestWebhookGivesUpAfterRetries(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 500, 500, 500, 500, 500)
	logs := newLogRecorder()
	s := start(t, Config{Webhook: rcv.srv.URL, Retries: 2, Backoff: time.Millisecond, Log: logs.logger(), Now: newFakeClock().Now}, 0)
	s.ban(t, "192.0.2.1", 1)
	logs.wait(t, "notification failed")
	s.stop(t)
	if n := len(rcv.rest()); n != 3 {
		t.Errorf("with Retries 2 against a failing receiver: %d requests, want 3", n)
	}
}

func TestWebhook4xxNotRetried(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 400)
	logs := newLogRecorder()
	s := start(t, Config{Webhook: rcv.srv.URL, Backoff: time.Millisecond, Log: logs.logger(), Now: newFakeClock().Now}, 0)
	s.ban(t, "192.0.2.1", 1)
	logs.wait(t, "notification failed")
	s.stop(t)
	if n := len(rcv.rest()); n != 1 {
		t.Errorf("after a 400: %d requests, want 1", n)
	}
	if !strings.Contains(logs.buf.String(), "400 Bad Request") {
		t.Errorf("log does not name the status:\n%s", logs.buf)
	}
}

// An attempt that gets no answer within Timeout is retried.
func TestWebhookTimeoutRetried(t *testing.T) {
	t.Parallel()
	requests := make(chan struct{}, 8)
	hang := make(chan struct{}, 1)
	hang <- struct{}{} // the first request hangs
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read to the end, so the server watches for the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		requests <- struct{}{}
		select {
		case <-hang:
			select {
			case <-r.Context().Done(): // the client gave up
			case <-release:
			}
			return
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	logs := newLogRecorder()
	s := start(t, Config{Webhook: srv.URL, Timeout: 200 * time.Millisecond, Backoff: time.Millisecond, Log: logs.logger(), Now: newFakeClock().Now}, 0)
	s.ban(t, "192.0.2.1", 1)
	logs.wait(t, "notification sent")
	s.stop(t)
	if n := len(requests); n != 2 {
		t.Errorf("after one hung attempt: %d requests, want 2", n)
	}
}

// When the subscription overflows, the notifier resynchronises, says so,
// and does not list the active bans from the snapshot.
func TestWebhookOverflowCoalesced(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	n, err := New(Config{Webhook: rcv.srv.URL, MinInterval: time.Hour, Now: newFakeClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	s := &started{n: n, bans: rules.NewBanList(rules.BanListConfig{})}
	s.sub = s.bans.Subscribe(1)
	t.Cleanup(s.sub.Close)
	s.ban(t, "192.0.2.1", 1)
	s.ban(t, "192.0.2.2", 1) // overflows: C holds one change
	s.ban(t, "192.0.2.3", 1)

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx, s.sub) }()
	p := rcv.next(t)
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if !p.payload.Coalesced {
		t.Errorf("message after an overflow = %s, want coalesced true", p.body)
	}
	for _, b := range p.payload.Bans {
		if b.IP != "192.0.2.1" {
			t.Errorf("message after an overflow lists %s, a ban seen only in the snapshot", b.IP)
		}
	}
	if rest := rcv.rest(); len(rest) != 0 {
		t.Errorf("%d more requests after the coalesced message, want 0", len(rest))
	}
}

// Closing the subscription ends Run, sending what waits.
func TestRunEndsWhenSubscriptionCloses(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	n, err := New(Config{Webhook: rcv.srv.URL, MinInterval: time.Hour, Now: newFakeClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	s := &started{n: n, bans: rules.NewBanList(rules.BanListConfig{})}
	s.sub = s.bans.Subscribe(0)
	s.ban(t, "192.0.2.1", 1)
	s.ban(t, "192.0.2.2", 1)
	s.sub.Close()
	if err := n.Run(t.Context(), s.sub); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	var ips []string
	for _, p := range rcv.rest() {
		for _, b := range p.payload.Bans {
			ips = append(ips, b.IP)
		}
	}
	if want := []string{"192.0.2.1", "192.0.2.2"}; !reflect.DeepEqual(ips, want) {
		t.Errorf("bans sent = %v, want %v", ips, want)
	}
}

func TestRunTwiceRefused(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	s := start(t, Config{Webhook: rcv.srv.URL}, 0)
	// The first Run may not have started yet: wait until it has sent.
	s.ban(t, "192.0.2.1", 1)
	rcv.next(t)
	if err := s.n.Run(t.Context(), s.sub); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run = %v, want already running", err)
	}
	if err := s.n.Run(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "nil subscription") {
		t.Errorf("Run(nil) = %v, want nil subscription", err)
	}
}

func TestNoteNilNotifier(t *testing.T) {
	t.Parallel()
	var n *Notifier
	n.Note(netip.MustParseAddr("192.0.2.1"), "GET / HTTP/1.1") // must not panic
}

// Clients waiting for a digest that an escalated ban then replaces leave
// it: the digest names their network, as escalated, once.
func TestWebhookEscalatedNetworkReplacesMembers(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	s := start(t, Config{Webhook: rcv.srv.URL, MinInterval: time.Hour, Now: newFakeClock().Now}, 0)
	s.ban(t, "198.51.100.7", 1)
	rcv.next(t)
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "203.0.113.9"} {
		s.ban(t, a, 1)
	}
	if _, n, err := s.bans.Escalate(rules.Ban{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Jail: "probes",
		Reason: rules.EscalatedReason("probes", 3), Count: 1, Until: time.Now().Add(time.Hour)}); err != nil || n != 3 {
		t.Fatalf("Escalate = %d, %v; want 3 replaced", n, err)
	}
	s.stop(t)
	rest := rcv.rest()
	if len(rest) != 1 {
		t.Fatalf("%d requests after the first, want 1 digest", len(rest))
	}
	var got []string
	for _, b := range rest[0].payload.Bans {
		got = append(got, b.IP+" "+b.Reason)
	}
	if want := []string{"203.0.113.9 probe", "192.0.2.0/24 escalated from 3 bans in jail probes"}; !reflect.DeepEqual(got, want) {
		t.Errorf("digest lists %q, want %q", got, want)
	}
}
