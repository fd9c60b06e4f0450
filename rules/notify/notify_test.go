package notify

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	email := func(mod func(*EmailConfig)) *EmailConfig {
		e := &EmailConfig{SMTP: "smtp.example.com:587", From: "gh@example.com", To: []string{"ops@example.com"}}
		mod(e)
		return e
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // each must appear; none: valid
		secret  string   // must not appear in the error
	}{
		{name: "webhook", cfg: Config{Webhook: "https://hooks.example.com/x"}},
		{name: "email", cfg: Config{Email: email(func(*EmailConfig) {})}},
		{name: "nothing", cfg: Config{}, wantErr: []string{"neither webhook nor email"}},
		{name: "webhook scheme", cfg: Config{Webhook: "ftp://hooks.example.com/tok3n"},
			wantErr: []string{`scheme "ftp" is not https or http`}, secret: "tok3n"},
		{name: "webhook no host", cfg: Config{Webhook: "https:///tok3n"}, wantErr: []string{"no host"}, secret: "tok3n"},
		{name: "webhook unparsable", cfg: Config{Webhook: "https://exa mple.com/tok3n\x7f"}, wantErr: []string{"not a valid URL"}, secret: "tok3n"},
		{name: "webhook relative", cfg: Config{Webhook: "hooks.example.com/tok3n"}, wantErr: []string{`scheme ""`}, secret: "tok3n"},
		{name: "negatives", cfg: Config{Webhook: "https://hooks.example.com/", MinInterval: -1, Timeout: -time.Second, Backoff: -1, MaxPerDigest: -1, NoteLines: -1, NoteIPs: -2},
			wantErr: []string{"min interval -1ns is negative", "timeout -1s is negative", "backoff -1ns is negative",
				"max per digest -1 is negative", "note lines -1 is negative", "note ips -2 is negative"}},
		{name: "smtp no port", cfg: Config{Email: email(func(e *EmailConfig) { e.SMTP = "smtp.example.com" })},
			wantErr: []string{`email smtp "smtp.example.com" is not host:port`}},
		{name: "smtp bad port", cfg: Config{Email: email(func(e *EmailConfig) { e.SMTP = "smtp.example.com:smtp" })},
			wantErr: []string{`port "smtp" is not a number`}},
		{name: "from and to", cfg: Config{Email: email(func(e *EmailConfig) {
			e.From = "not an address"
			e.To = []string{"ops@example.com", "x\r\nBcc: y@example.com"}
		})},
			wantErr: []string{"email from: address \"not an address\"", "email to[1]: address"}},
		{name: "no recipients", cfg: Config{Email: email(func(e *EmailConfig) { e.To = nil })}, wantErr: []string{"email to: no recipients"}},
		{name: "password alone", cfg: Config{Email: email(func(e *EmailConfig) { e.Password = "hunter2" })},
			wantErr: []string{"password without username"}, secret: "hunter2"},
		{name: "both reported", cfg: Config{Webhook: "gopher://x", Email: email(func(e *EmailConfig) { e.To = nil })},
			wantErr: []string{`scheme "gopher"`, "no recipients"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, err := New(tc.cfg)
			if len(tc.wantErr) == 0 {
				if err != nil || n == nil {
					t.Fatalf("New = %v, %v; want a Notifier", n, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New = nil error, want %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New error = %q, want it to contain %q", err, w)
				}
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("New error = %q shows the secret %q", err, tc.secret)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	n, err := New(Config{Webhook: "https://hooks.example.com/x", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if n.minInterval != time.Minute || n.maxPerDigest != 100 || n.retries != 0 || n.backoff != time.Second ||
		n.timeout != 10*time.Second || n.recent.lines != 5 || notedIPs(n, 1001) != 1000 || n.node == "" || n.now == nil || n.closeIdle == nil {
		t.Errorf("defaults: interval %s, per digest %d, retries %d, backoff %s, timeout %s, note lines %d, note ips %d, node %q",
			n.minInterval, n.maxPerDigest, n.retries, n.backoff, n.timeout, n.recent.lines, notedIPs(n, 1001), n.node)
	}
	if n, err = New(Config{Webhook: "https://hooks.example.com/x"}); err != nil || n.retries != 3 {
		t.Errorf("Retries 0: retries = %d, %v; want 3", n.retries, err)
	}
}

// notedIPs notes a line for each of k addresses and returns how many
// addresses n then keeps lines for: its NoteIPs capacity when k exceeds it.
func notedIPs(n *Notifier, k int) int {
	for i := range k {
		n.recent.add(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), []string{"GET / HTTP/1.1"})
	}
	return n.recent.lru.Len()
}
