package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// mailer sends messages as plain-text e-mail over SMTP.
type mailer struct {
	addr     string // host:port
	host     string // for TLS verification and PlainAuth
	helo     string
	from     *mail.Address
	to       []*mail.Address
	username string
	password string // never logged nor put in errors
	roots    *x509.CertPool
	insecure bool
	timeout  time.Duration
}

func newMailer(cfg EmailConfig, node string, timeout time.Duration) (*mailer, error) {
	var errs []error
	m := &mailer{
		addr:     cfg.SMTP,
		helo:     heloName(node),
		username: cfg.Username,
		password: cfg.Password,
		roots:    cfg.RootCAs,
		insecure: cfg.Insecure,
		timeout:  timeout,
	}
	host, port, err := net.SplitHostPort(cfg.SMTP)
	if err != nil || host == "" {
		errs = append(errs, fmt.Errorf("email smtp %q is not host:port", cfg.SMTP))
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		errs = append(errs, fmt.Errorf("email smtp %q: port %q is not a number from 1 to 65535", cfg.SMTP, port))
	}
	m.host = host
	if m.from, err = parseAddress(cfg.From); err != nil {
		errs = append(errs, fmt.Errorf("email from: %w", err))
	}
	if len(cfg.To) == 0 {
		errs = append(errs, errors.New("email to: no recipients"))
	}
	for i, s := range cfg.To {
		a, err := parseAddress(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("email to[%d]: %w", i, err))
			continue
		}
		m.to = append(m.to, a)
	}
	if cfg.Username == "" && cfg.Password != "" {
		errs = append(errs, errors.New("email: password without username"))
	}
	if strings.ContainsAny(cfg.Username, "\x00\r\n") || strings.ContainsAny(cfg.Password, "\x00\r\n") {
		errs = append(errs, errors.New("email: username or password contains NUL, CR or LF"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// parseAddress parses one RFC 5322 address ("ops@example.com" or
// "Ops <ops@example.com>").
func parseAddress(s string) (*mail.Address, error) {
	if s == "" {
		return nil, errors.New("empty address")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", s, err)
	}
	return a, nil
}

// heloName returns node if it can stand in EHLO (RFC 5321 §4.1.1.1
// wants the client's domain), else "localhost".
func heloName(node string) string {
	if node == "" || len(node) > 253 {
		return "localhost"
	}
	for _, r := range node {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return "localhost"
		}
	}
	return node
}

func (m *mailer) name() string { return "email" }

// send runs one SMTP session: EHLO, STARTTLS (required unless Insecure),
// AUTH PLAIN (only if a username is set, and only once TLS is up or the
// server is on loopback, as net/smtp enforces), MAIL, RCPT, DATA, QUIT.
// The whole session is bounded by ctx's deadline.
func (m *mailer) send(ctx context.Context, msg *message) (err error) {
	d := net.Dialer{Timeout: m.timeout}
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return fmt.Errorf("connect to smtp %s: %w", m.addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			_ = conn.Close() // the deadline error is the one worth reporting
			return fmt.Errorf("smtp %s: set deadline: %w", m.addr, err)
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() }) // unblocks the session on cancellation
	defer stop()
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		_ = conn.Close() // the greeting error is the one worth reporting
		return smtpError(fmt.Errorf("smtp %s: greeting: %w", m.addr, err))
	}
	defer func() { _ = c.Close() }() // after Quit this only closes an already closed connection
	if err := c.Hello(m.helo); err != nil {
		return smtpError(fmt.Errorf("smtp %s: ehlo: %w", m.addr, err))
	}
	secure := false
	if ok, _ := c.Extension("STARTTLS"); ok {
		tc := &tls.Config{ServerName: m.host, RootCAs: m.roots, MinVersion: tls.VersionTLS12}
		if err := c.StartTLS(tc); err != nil {
			return smtpError(fmt.Errorf("smtp %s: starttls: %w", m.addr, err))
		}
		secure = true
	} else if !m.insecure {
		return &permanentError{fmt.Errorf("smtp %s: server does not offer STARTTLS; refusing to send in clear text", m.addr)}
	}
	if m.username != "" {
		if !secure && !plainAuthAllowed(m.host) {
			return &permanentError{fmt.Errorf("smtp %s: no TLS; refusing to send credentials in clear text", m.addr)}
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return &permanentError{fmt.Errorf("smtp %s: server does not offer AUTH but a username is configured", m.addr)}
		}
		if err := c.Auth(smtp.PlainAuth("", m.username, m.password, m.host)); err != nil {
			return smtpError(fmt.Errorf("smtp %s: auth as configured user: %w", m.addr, err))
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return smtpError(fmt.Errorf("smtp %s: mail from: %w", m.addr, err))
	}
	for _, a := range m.to {
		if err := c.Rcpt(a.Address); err != nil {
			return smtpError(fmt.Errorf("smtp %s: rcpt to %s: %w", m.addr, a.Address, err))
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpError(fmt.Errorf("smtp %s: data: %w", m.addr, err))
	}
	if _, err := w.Write(m.compose(msg)); err != nil {
		return smtpError(fmt.Errorf("smtp %s: write message: %w", m.addr, err))
	}
	if err := w.Close(); err != nil {
		return smtpError(fmt.Errorf("smtp %s: end of data: %w", m.addr, err))
	}
	// The message is accepted once DATA's final reply is 250; a failed
	// QUIT does not make it undelivered, and a retry would send it twice.
	_ = c.Quit()
	return nil
}

// smtpError marks err permanent when retrying cannot help: a 5xx reply
// (RFC 5321 §4.2.1) or a certificate that does not verify. Network
// errors, timeouts, hang-ups and 4xx replies stay transient.
func smtpError(err error) error {
	if te, ok := errors.AsType[*textproto.Error](err); ok && te.Code >= 500 {
		return &permanentError{err}
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return &permanentError{err}
	}
	return err
}

// plainAuthAllowed reports whether net/smtp's PlainAuth would send
// credentials over a connection without TLS to host: only to these three
// names (net/smtp's isLocalhost).
func plainAuthAllowed(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// compose builds the RFC 5322 message: headers, then the text body in
// quoted-printable, so any line of any length and any UTF-8 travels
// through 7-bit SMTP unchanged.
func (m *mailer) compose(msg *message) []byte {
	var b bytes.Buffer
	to := make([]string, len(m.to))
	for i, a := range m.to {
		to[i] = a.String()
	}
	domain := m.from.Address[strings.LastIndexByte(m.from.Address, '@')+1:]
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("Date", msg.time.Format(time.RFC1123Z))
	header("From", m.from.String())
	header("To", strings.Join(to, ", "))
	header("Subject", subject(msg))
	header("Message-ID", "<"+rand.Text()+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated") // RFC 3834: no vacation replies
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	// Writes to a bytes.Buffer do not fail.
	_, _ = qp.Write([]byte(text(msg)))
	_ = qp.Close()
	return b.Bytes()
}

// subject is the mail's subject: "gatehouse: N ban(s)".
func subject(msg *message) string {
	return fmt.Sprintf("gatehouse: %d ban(s)", msg.total())
}

// text is the mail's body.
func text(msg *message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gatehouse on %s: %d ban(s) as of %s.\n", printable(msg.node, 253), msg.total(),
		msg.time.UTC().Format(time.RFC3339))
	for _, e := range msg.bans {
		jail := e.ban.Jail
		if jail == "" {
			jail = "(manual ban)"
		}
		fmt.Fprintf(&b, "\n%s\n", e.ban.IP())
		fmt.Fprintf(&b, "  jail:     %s\n", printable(jail, 256))
		fmt.Fprintf(&b, "  reason:   %s\n", printable(e.ban.Reason, maxNoteLen))
		fmt.Fprintf(&b, "  until:    %s (%s)\n", e.ban.Until.UTC().Format(time.RFC3339), banDuration(e.ban, msg.time))
		if e.ban.Count > 0 {
			fmt.Fprintf(&b, "  ban no.:  %d\n", e.ban.Count)
		}
		if len(e.requests) > 0 {
			b.WriteString("  last offences:\n")
			for _, r := range e.requests {
				fmt.Fprintf(&b, "    %s\n", r)
			}
		}
	}
	if msg.omitted > 0 {
		fmt.Fprintf(&b, "\n... and %d more ban(s) not listed here.\n", msg.omitted)
	}
	if msg.coalesced {
		b.WriteString("\nSome bans were coalesced: the notifier fell behind the ban list and\n" +
			"did not see every ban, so some are missing from this message.\n")
	}
	if msg.omitted > 0 || msg.coalesced {
		b.WriteString("`gatehouse bans list` shows every active ban.\n")
	}
	return b.String()
}
