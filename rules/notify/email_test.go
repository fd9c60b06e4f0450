package notify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/netip"
	"net/textproto"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/rules"
)

// smtpServer is a loopback SMTP server speaking just enough of RFC 5321
// (EHLO, STARTTLS per RFC 3207, AUTH PLAIN per RFC 4954, MAIL, RCPT,
// DATA, QUIT) to receive the notifier's mail and record what it did.
type smtpServer struct {
	addr     string
	offerTLS bool
	tls      *tls.Config
	sessions chan *smtpSession

	mu      sync.Mutex
	replies map[string][]string // verb → replies to use, in turn, instead of the usual one

	shutdown func() // closes the listener and waits for the session being served
}

// smtpSession is what the server saw on one connection.
type smtpSession struct {
	cmds     []string // verbs in order
	tls      bool     // STARTTLS completed
	tlsErr   error    // the TLS handshake failed
	authTLS  bool     // AUTH came after STARTTLS
	authed   bool
	authzid  string
	user     string
	pass     string
	mailFrom string
	rcpts    []string
	data     string
	quit     bool
}

func newSMTPServer(t *testing.T, offerTLS bool, cert tls.Certificate) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{
		addr:     ln.Addr().String(),
		offerTLS: offerTLS,
		tls:      &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		sessions: make(chan *smtpSession, 16),
		replies:  map[string][]string{},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.serve(conn) // one session at a time is all the notifier opens
		}
	}()
	s.shutdown = sync.OnceFunc(func() {
		_ = ln.Close() // stops the accept loop
		<-done
	})
	t.Cleanup(s.shutdown)
	return s
}

// reply makes the server answer verb with these replies, one per
// command, before going back to its usual answer.
func (s *smtpServer) reply(verb string, replies ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies[verb] = append(s.replies[verb], replies...)
}

func (s *smtpServer) override(verb string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.replies[verb]; len(r) > 0 {
		s.replies[verb] = r[1:]
		return r[0], true
	}
	return "", false
}

func (s *smtpServer) serve(conn net.Conn) {
	sess := &smtpSession{}
	defer func() {
		_ = conn.Close() // the client is gone or done
		s.sessions <- sess
	}()
	// A client that stalls ends its session instead of the test.
	if err := conn.SetDeadline(time.Now().Add(waitLimit)); err != nil {
		return
	}
	tp := textproto.NewConn(conn)
	say := func(format string, args ...any) bool { return tp.PrintfLine(format, args...) == nil }
	if !say("220 127.0.0.1 ESMTP gatehouse-test") {
		return
	}
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		sess.cmds = append(sess.cmds, verb)
		if r, ok := s.override(verb); ok {
			if !say("%s", r) {
				return
			}
			continue
		}
		ok := true
		switch verb {
		case "EHLO":
			ext := []string{"127.0.0.1 hello " + arg}
			if s.offerTLS && !sess.tls {
				ext = append(ext, "STARTTLS")
			}
			// AUTH is offered before STARTTLS too, so a client that
			// authenticates in clear text would be caught doing it.
			ext = append(ext, "AUTH PLAIN", "8BITMIME")
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				ok = ok && say("250%s%s", sep, e)
			}
		case "STARTTLS":
			if !s.offerTLS || sess.tls {
				ok = say("502 5.5.1 not now")
				break
			}
			if !say("220 2.0.0 ready to start TLS") {
				return
			}
			tc := tls.Server(conn, s.tls)
			if err := tc.Handshake(); err != nil {
				sess.tlsErr = err
				return
			}
			conn, tp, sess.tls = tc, textproto.NewConn(tc), true
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			raw, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(raw), "\x00")
			if !strings.EqualFold(mech, "PLAIN") || err != nil || len(parts) != 3 {
				ok = say("501 5.5.4 bad AUTH")
				break
			}
			sess.authed, sess.authTLS = true, sess.tls
			sess.authzid, sess.user, sess.pass = parts[0], parts[1], parts[2]
			ok = say("235 2.7.0 authenticated")
		case "MAIL":
			sess.mailFrom = arg
			ok = say("250 2.1.0 ok")
		case "RCPT":
			sess.rcpts = append(sess.rcpts, arg)
			ok = say("250 2.1.5 ok")
		case "DATA":
			if !say("354 end with <CRLF>.<CRLF>") {
				return
			}
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			sess.data = string(data)
			if r, over := s.override("DATA."); over {
				ok = say("%s", r)
				break
			}
			ok = say("250 2.0.0 queued")
		case "RSET", "NOOP":
			ok = say("250 2.0.0 ok")
		case "QUIT":
			sess.quit = true
			say("221 2.0.0 bye")
			return
		default:
			ok = say("502 5.5.2 unknown command")
		}
		if !ok {
			return
		}
	}
}

// next waits for the next finished session.
func (s *smtpServer) next(t *testing.T) *smtpSession {
	t.Helper()
	select {
	case sess := <-s.sessions:
		return sess
	case <-time.After(waitLimit):
		t.Fatalf("no SMTP session within %s", waitLimit)
		return nil
	}
}

// rest shuts the server down and returns the sessions not yet read.
// Call it once the client is done: every session it opened has then
// been accepted, and shutting down waits for it to end.
func (s *smtpServer) rest() []*smtpSession {
	s.shutdown()
	var out []*smtpSession
	for {
		select {
		case sess := <-s.sessions:
			out = append(out, sess)
		default:
			return out
		}
	}
}

// selfSigned makes a certificate for 127.0.0.1 and localhost and a pool
// that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gatehouse test SMTP"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestEmailSTARTTLSThenAuth(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	srv := newSMTPServer(t, true, cert)
	clock := newFakeClock()
	logs := newLogRecorder()
	s := start(t, Config{
		Email: &EmailConfig{
			SMTP: srv.addr, From: "gatehouse <gh@example.com>", To: []string{"ops@example.com", "Security <sec@example.com>"},
			Username: "gh-user", Password: "s3cret-pass", RootCAs: pool,
		},
		Node: "edge-1", Now: clock.Now, Log: logs.logger(),
	}, 0)
	s.n.Note(netip.MustParseAddr("203.0.113.7"), "GET /.env HTTP/1.1", "GET /\x1b[31mred HTTP/1.1")
	b := s.ban(t, "203.0.113.7", 2)

	sess := srv.next(t)
	if want := []string{"EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"}; !reflect.DeepEqual(sess.cmds, want) {
		t.Errorf("commands = %v, want %v", sess.cmds, want)
	}
	if !sess.tls || !sess.authed || !sess.authTLS {
		t.Errorf("tls %v, authed %v, auth over TLS %v; want all true", sess.tls, sess.authed, sess.authTLS)
	}
	if sess.authzid != "" || sess.user != "gh-user" || sess.pass != "s3cret-pass" {
		t.Errorf("AUTH PLAIN = %q, %q, %q; want \"\", %q, %q", sess.authzid, sess.user, sess.pass, "gh-user", "s3cret-pass")
	}
	if !strings.HasPrefix(sess.mailFrom, "FROM:<gh@example.com>") {
		t.Errorf("MAIL %q, want FROM:<gh@example.com>", sess.mailFrom)
	}
	if want := []string{"TO:<ops@example.com>", "TO:<sec@example.com>"}; !reflect.DeepEqual(sess.rcpts, want) {
		t.Errorf("RCPT = %q, want %q", sess.rcpts, want)
	}

	msg, err := mail.ReadMessage(strings.NewReader(sess.data))
	if err != nil {
		t.Fatalf("read message: %v\n%s", err, sess.data)
	}
	h := msg.Header
	for k, want := range map[string]string{
		"From":                      `"gatehouse" <gh@example.com>`,
		"To":                        `<ops@example.com>, "Security" <sec@example.com>`,
		"Subject":                   "gatehouse: 1 ban(s)",
		"Mime-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Date":                      clock.Now().Format(time.RFC1123Z),
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if d, err := h.Date(); err != nil || !d.Equal(clock.Now()) {
		t.Errorf("Date = %v, %v; want %v", d, err, clock.Now())
	}
	if id := h.Get("Message-Id"); !regexp.MustCompile(`^<[A-Z2-7]{20,}@example\.com>$`).MatchString(id) {
		t.Errorf("Message-ID = %q, want <random@example.com>", id)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("decode body: %v", err)
	}
	for _, want := range []string{
		"gatehouse on edge-1: 1 ban(s) as of 2031-03-04T05:06:07Z.",
		"\n203.0.113.7\n",
		"  jail:     probes\n",
		"  reason:   probe\n",
		"  until:    " + b.Until.Format(time.RFC3339) + " (1h0m0s)\n",
		"  ban no.:  2\n",
		"    GET /.env HTTP/1.1\n",
		`    GET /\u{001b}[31mred HTTP/1.1` + "\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	logs.wait(t, "notification sent")
	s.stop(t)
	if strings.Contains(logs.buf.String(), "s3cret-pass") || strings.Contains(logs.buf.String(), "gh-user") {
		t.Errorf("log shows credentials:\n%s", logs.buf)
	}
}

func TestEmailFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		offerTLS bool
		trusted  bool
		insecure bool
		username string
		replies  map[string][]string
		wantLog  string   // the notifier's last word
		wantErr  string   // in the log, when it failed
		wantCmds []string // of the last session
		sessions int
	}{{
		name: "no STARTTLS refused", username: "u",
		wantLog: "notification failed", wantErr: "does not offer STARTTLS",
		wantCmds: []string{"EHLO"}, sessions: 1,
	}, {
		name:     "no STARTTLS but insecure",
		insecure: true, wantLog: "notification sent",
		wantCmds: []string{"EHLO", "MAIL", "RCPT", "DATA", "QUIT"}, sessions: 1,
	}, {
		name: "STARTTLS used when offered though insecure", offerTLS: true, trusted: true, insecure: true, username: "u",
		wantLog:  "notification sent",
		wantCmds: []string{"EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"}, sessions: 1,
	}, {
		name: "untrusted certificate", offerTLS: true, username: "u",
		wantLog: "notification failed", wantErr: "certificate",
		wantCmds: []string{"EHLO", "STARTTLS"}, sessions: 1,
	}, {
		name: "4xx on DATA retried", offerTLS: true, trusted: true,
		replies:  map[string][]string{"DATA.": {"451 4.3.0 try again later"}},
		wantLog:  "notification sent",
		wantCmds: []string{"EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA", "QUIT"}, sessions: 2,
	}, {
		name: "5xx on RCPT not retried", offerTLS: true, trusted: true,
		replies: map[string][]string{"RCPT": {"550 5.1.1 no such user"}},
		wantLog: "notification failed", wantErr: "550",
		wantCmds: []string{"EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT"}, sessions: 1,
	}, {
		name: "bad credentials not retried", offerTLS: true, trusted: true, username: "u",
		replies: map[string][]string{"AUTH": {"535 5.7.8 authentication failed"}},
		wantLog: "notification failed", wantErr: "535",
		// net/smtp cancels the exchange with "*" and quits.
		wantCmds: []string{"EHLO", "STARTTLS", "EHLO", "AUTH", "*", "QUIT"}, sessions: 1,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cert, pool := selfSigned(t)
			srv := newSMTPServer(t, tc.offerTLS, cert)
			for verb, rs := range tc.replies {
				srv.reply(verb, rs...)
			}
			ec := &EmailConfig{SMTP: srv.addr, From: "gh@example.com", To: []string{"ops@example.com"}, Insecure: tc.insecure}
			if tc.trusted {
				ec.RootCAs = pool
			}
			if tc.username != "" {
				ec.Username, ec.Password = tc.username, "pw-secret"
			}
			logs := newLogRecorder()
			s := start(t, Config{Email: ec, Backoff: time.Millisecond, Log: logs.logger(), Now: newFakeClock().Now}, 0)
			s.ban(t, "192.0.2.1", 1)
			logs.wait(t, tc.wantLog)
			s.stop(t)
			sessions := srv.rest()
			if len(sessions) != tc.sessions {
				t.Fatalf("%d SMTP sessions, want %d; log:\n%s", len(sessions), tc.sessions, logs.buf)
			}
			last := sessions[len(sessions)-1]
			if !reflect.DeepEqual(last.cmds, tc.wantCmds) {
				t.Errorf("commands = %v, want %v", last.cmds, tc.wantCmds)
			}
			if last.authed && !last.authTLS && tc.offerTLS {
				t.Errorf("AUTH sent before STARTTLS")
			}
			if !strings.Contains(logs.buf.String(), tc.wantErr) {
				t.Errorf("log lacks %q:\n%s", tc.wantErr, logs.buf)
			}
			if strings.Contains(logs.buf.String(), "pw-secret") {
				t.Errorf("log shows the password:\n%s", logs.buf)
			}
		})
	}
}

// Each channel is rate limited and delivered on its own: a webhook that
// hangs does not hold back the e-mail.
func TestChannelsIndependent(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	srv := newSMTPServer(t, true, cert)
	hang := make(chan struct{})
	release := sync.OnceFunc(func() { close(hang) })
	hooked := make(chan struct{}, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hooked <- struct{}{}
		<-hang
	}))
	t.Cleanup(hook.Close)
	t.Cleanup(release) // before hook.Close, in case the test fails early

	s := start(t, Config{
		Webhook: hook.URL,
		Email:   &EmailConfig{SMTP: srv.addr, From: "gh@example.com", To: []string{"ops@example.com"}, RootCAs: pool},
		Now:     newFakeClock().Now,
	}, 0)
	s.ban(t, "192.0.2.1", 1)
	select {
	case <-hooked:
	case <-time.After(waitLimit):
		t.Fatal("no webhook request")
	}
	if sess := srv.next(t); sess.data == "" {
		t.Errorf("mail not delivered while the webhook hangs: %v", sess.cmds)
	}
	release()
}

func TestEmailText(t *testing.T) {
	t.Parallel()
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	m := &message{
		time:      now,
		node:      "edge-1",
		bans:      []entry{{ban: banOf("2001:db8::/64", "", "operator: abuse report", now, 2*time.Hour, 0)}},
		omitted:   4,
		coalesced: true,
	}
	got := text(m)
	for _, want := range []string{
		"gatehouse on edge-1: 5 ban(s) as of 2031-03-04T05:06:07Z.\n",
		"\n2001:db8::/64\n  jail:     (manual ban)\n  reason:   operator: abuse report\n  until:    2031-03-04T07:06:07Z (2h0m0s)\n",
		"... and 4 more ban(s) not listed here.",
		"Some bans were coalesced",
		"`gatehouse bans list` shows every active ban.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("text lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "ban no.") || strings.Contains(got, "last offences") {
		t.Errorf("text shows a count or requests it does not have:\n%s", got)
	}
	if s := subject(m); s != "gatehouse: 5 ban(s)" {
		t.Errorf("subject = %q, want %q", s, "gatehouse: 5 ban(s)")
	}
}

// A line of any length and bytes survives composing: quoted-printable
// keeps every line short and 7-bit, and decoding gives the text back.
func TestEmailComposeRoundTrip(t *testing.T) {
	t.Parallel()
	mr, err := newMailer(EmailConfig{SMTP: "127.0.0.1:25", From: "gh@example.com", To: []string{"ops@example.com"}}, "edge-1", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	long := "GET /" + strings.Repeat("ä=x ", 120) + " HTTP/1.1"
	m := &message{time: now, node: "edge-1", bans: []entry{{ban: banOf("192.0.2.1/32", "probes", "probe", now, time.Hour, 1), requests: []string{printable(long, maxNoteLen)}}}}
	raw := mr.compose(m)
	for i, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line %d is %d bytes long, want at most 78", i, len(line))
		}
		for _, c := range []byte(line) {
			if c >= 0x80 {
				t.Errorf("line %d has the 8-bit byte %#x", i, c)
				break
			}
		}
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	// Decoded, the text has the CRLF line ends of mail.
	if want := strings.ReplaceAll(text(m), "\n", "\r\n"); string(body) != want {
		t.Errorf("decoded body = %q, want %q", body, want)
	}
}

func banOf(prefix, jail, reason string, created time.Time, d time.Duration, count int) rules.Ban {
	return rules.Ban{Prefix: netip.MustParsePrefix(prefix), Jail: jail, Reason: reason, Created: created, Until: created.Add(d), Count: count}
}

func TestHeloName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ node, want string }{
		{"edge-1.example.com", "edge-1.example.com"},
		{"", "localhost"},
		{"bad name", "localhost"},
		{"evil\r\nMAIL FROM:<x>", "localhost"},
		{strings.Repeat("a", 254), "localhost"},
	} {
		if got := heloName(tc.node); got != tc.want {
			t.Errorf("heloName(%q) = %q, want %q", tc.node, got, tc.want)
		}
	}
}
