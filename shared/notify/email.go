package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	htmlpkg "html"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPConfig says where emails go. An empty Addr turns email off: the
// inbox alone is used.
type SMTPConfig struct {
	Addr     string `envconfig:"SMTP_ADDR"` // host:port
	From     string `envconfig:"SMTP_FROM" default:"taskfn <noreply@taskfn.dev>"`
	Username string `envconfig:"SMTP_USERNAME"`
	Password string `envconfig:"SMTP_PASSWORD" secret:"true"`
	// TLS is starttls (required, the default), tls (implicit, port 465) or
	// none, for a relay on the same host or cluster network.
	TLS string `envconfig:"SMTP_TLS" default:"starttls"`
	// Timeout bounds one email's whole SMTP conversation, dial included.
	Timeout time.Duration `envconfig:"SMTP_TIMEOUT" default:"10s"`
	// ClaimLease is how long a sender owns an email it claimed: meanwhile
	// other deliveries of the event leave it alone, after it (the sender
	// died) one may send it. It must exceed Timeout, which ends every
	// send sooner, so a live sender never outlives its claim; the
	// default's 5s over Timeout's covers the claim and the mark around a
	// send. Longer only delays the email of a sender that died.
	ClaimLease time.Duration `envconfig:"SMTP_CLAIM_LEASE" default:"15s"`
	// HeloName is the name given in EHLO.
	HeloName string `envconfig:"SMTP_HELO_NAME" default:"localhost"`
}

// Enabled reports whether emails are sent at all.
func (c SMTPConfig) Enabled() bool { return c.Addr != "" }

// Email is one message to one recipient, as stored in email_outbox.
type Email struct {
	ID        string
	ToAddress string
	ToName    string
	Subject   string
	Body      string
	MessageID string
	// InlinePNG, if set, is an image shown below the text (a digest's
	// chart): the message becomes multipart/related, the text in plain
	// and in HTML, the image referenced by its Content-ID.
	InlinePNG []byte
}

// UndeliverableError is an email the server refused for good (an SMTP 5xx
// reply): retrying cannot help, so it is recorded as failed and the event
// is still acknowledged.
type UndeliverableError struct{ Err error }

func (e *UndeliverableError) Error() string { return "notify: undeliverable email: " + e.Err.Error() }
func (e *UndeliverableError) Unwrap() error { return e.Err }

// Sender delivers emails over SMTP, one connection per message: a sink
// sends a few per event, and a fresh connection never fails on one the
// server dropped meanwhile.
type Sender struct {
	cfg  SMTPConfig
	from *mail.Address
	// TLSConfig overrides the TLS settings (tests trust their own CA).
	TLSConfig *tls.Config
}

// NewSender checks cfg. It returns nil, nil when email is off.
func NewSender(cfg SMTPConfig) (*Sender, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	var errs []error
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		errs = append(errs, fmt.Errorf("SMTP_ADDR %q must be host:port", cfg.Addr))
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		errs = append(errs, fmt.Errorf("SMTP_FROM %q is not an address: %v", cfg.From, err))
	}
	switch cfg.TLS {
	case "starttls", "tls":
	case "none":
		// Credentials would cross the network in clear text.
		if cfg.Username != "" {
			errs = append(errs, errors.New("SMTP_USERNAME needs SMTP_TLS starttls or tls: the password must not travel in clear text"))
		}
	default:
		errs = append(errs, fmt.Errorf("SMTP_TLS %q: want starttls, tls or none", cfg.TLS))
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("SMTP_TIMEOUT %s must be positive", cfg.Timeout))
	}
	if cfg.ClaimLease <= cfg.Timeout {
		errs = append(errs, fmt.Errorf("SMTP_CLAIM_LEASE %s must exceed SMTP_TIMEOUT %s: another delivery may take an email over once its claim runs out", cfg.ClaimLease, cfg.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("notify: invalid SMTP config: %w", err)
	}
	return &Sender{cfg: cfg, from: from}, nil
}

// Send delivers e. A refusal for good is an *UndeliverableError; any other
// error may pass on a retry.
func (s *Sender) Send(ctx context.Context, e Email) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	conn, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("notify: smtp: %w", err)
	}
	// The SMTP client takes no context: closing the connection when the
	// deadline passes bounds every command, STARTTLS included.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	var c *smtp.Client
	if s.cfg.TLS == "starttls" {
		if c, err = smtp.NewClientStartTLS(conn, s.tlsConfig()); err != nil {
			return fmt.Errorf("notify: smtp: starttls: %w", err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = s.cfg.Timeout, s.cfg.Timeout
	// Failures before MAIL concern the server or our credentials, not
	// this message: they stay retryable whatever their code.
	if err := c.Hello(s.cfg.HeloName); err != nil {
		return fmt.Errorf("notify: smtp: %w", err)
	}
	if s.cfg.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)); err != nil {
			return fmt.Errorf("notify: smtp: auth: %w", err)
		}
	}
	msg, err := s.compose(e, time.Now())
	if err != nil {
		return &UndeliverableError{Err: err}
	}
	if ok, _ := c.Extension("SMTPUTF8"); !ok && !isASCII(e.ToAddress) {
		return &UndeliverableError{Err: fmt.Errorf("the server cannot take the non-ASCII address %q", e.ToAddress)}
	}
	if err := c.SendMail(s.from.Address, []string{e.ToAddress}, bytes.NewReader(msg)); err != nil {
		return classify(err)
	}
	// The server took the message at the final dot; a failed QUIT does
	// not undo that.
	_ = c.Quit()
	return nil
}

func (s *Sender) tlsConfig() *tls.Config {
	if s.TLSConfig != nil {
		return s.TLSConfig
	}
	host, _, _ := net.SplitHostPort(s.cfg.Addr)
	return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
}

func (s *Sender) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{}
	if s.cfg.TLS == "tls" {
		return (&tls.Dialer{NetDialer: d, Config: s.tlsConfig()}).DialContext(ctx, "tcp", s.cfg.Addr)
	}
	return d.DialContext(ctx, "tcp", s.cfg.Addr)
}

// classify makes a permanent refusal of the message (a 5xx reply to MAIL,
// RCPT or DATA) an *UndeliverableError.
func classify(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 && se.Code < 600 {
		return &UndeliverableError{Err: err}
	}
	return fmt.Errorf("notify: smtp: %w", err)
}

// compose renders e as an RFC 5322 message in UTF-8, quoted-printable.
func (s *Sender) compose(e Email, now time.Time) ([]byte, error) {
	to, err := mail.ParseAddress(e.ToAddress)
	if err != nil {
		return nil, fmt.Errorf("recipient %q: %w", e.ToAddress, err)
	}
	to.Name = headerText(e.ToName)
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", s.from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", headerText(e.Subject)))
	header("Date", now.UTC().Format(time.RFC1123Z))
	header("Message-ID", e.MessageID)
	header("MIME-Version", "1.0")
	header("Auto-Submitted", "auto-generated")
	body := strings.ReplaceAll(strings.ReplaceAll(e.Body, "\r\n", "\n"), "\n", "\r\n")
	if e.InlinePNG != nil {
		if err := writeRelated(&b, body, e.InlinePNG); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	if err := writeQP(&b, body); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeQP(w io.Writer, text string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(text)); err != nil {
		return err
	}
	return qp.Close()
}

// chartCID is the Content-ID of an email's inline image, which its HTML
// refers to as cid:chart@taskfn.
const chartCID = "chart@taskfn"

// writeRelated writes the Content-Type header, the blank line and a
// multipart/related body: a multipart/alternative of text (plain, and
// HTML showing the image) and the PNG, inline, with its Content-ID.
func writeRelated(b *bytes.Buffer, text string, png []byte) error {
	related := multipart.NewWriter(b)
	b.WriteString(`Content-Type: multipart/related; type="multipart/alternative"; boundary="` + related.Boundary() + "\"\r\n\r\n")
	inner := multipart.NewWriter(io.Discard).Boundary() // a fresh random boundary
	part, err := related.CreatePart(textproto.MIMEHeader{"Content-Type": {`multipart/alternative; boundary="` + inner + `"`}})
	if err != nil {
		return err
	}
	alt := multipart.NewWriter(part)
	if err := alt.SetBoundary(inner); err != nil {
		return err
	}
	html := "<html><body><pre style=\"font-family: sans-serif; white-space: pre-wrap\">" + htmlpkg.EscapeString(text) +
		"</pre>\r\n<p><img src=\"cid:" + chartCID + "\" alt=\"Your week in a chart\"></p></body></html>\r\n"
	for _, p := range []struct{ typ, text string }{{"text/plain", text}, {"text/html", html}} {
		w, err := alt.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.typ + `; charset="utf-8"`},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return err
		}
		if err := writeQP(w, p.text); err != nil {
			return err
		}
	}
	if err := alt.Close(); err != nil {
		return err
	}
	w, err := related.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"image/png"},
		"Content-Transfer-Encoding": {"base64"},
		"Content-ID":                {"<" + chartCID + ">"},
		"Content-Disposition":       {`inline; filename="digest.png"`},
	})
	if err != nil {
		return err
	}
	enc := base64.StdEncoding.EncodeToString(png)
	for len(enc) > 76 { // RFC 2045: lines of at most 76 characters
		if _, err := io.WriteString(w, enc[:76]+"\r\n"); err != nil {
			return err
		}
		enc = enc[76:]
	}
	if _, err := io.WriteString(w, enc+"\r\n"); err != nil {
		return err
	}
	return related.Close()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// headerText keeps a value on one header line.
func headerText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// messageID is the same for every attempt at one email, so a receiver
// that got a message twice (accepted, then our record of it was lost) can
// tell it is one message.
func messageID(eventID, recipient, from string) string {
	h := sha256.Sum256([]byte(eventID + "\x00" + recipient))
	domain := "taskfn.invalid"
	if a, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			domain = d
		}
	}
	return "<" + hex.EncodeToString(h[:16]) + "@" + domain + ">"
}
