package notify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/notify/smtptest"
)

func TestSMTPConfig(t *testing.T) {
	t.Parallel()
	base := notify.SMTPConfig{Addr: "mail:587", From: "taskfn <noreply@taskfn.dev>", TLS: "starttls", Timeout: time.Second, ClaimLease: 2 * time.Second}
	tests := []struct {
		name   string
		change func(*notify.SMTPConfig)
		ok     bool
	}{
		{"valid", func(*notify.SMTPConfig) {}, true},
		{"implicit TLS", func(c *notify.SMTPConfig) { c.TLS = "tls" }, true},
		{"plain relay without credentials", func(c *notify.SMTPConfig) { c.TLS = "none" }, true},
		{"credentials in clear", func(c *notify.SMTPConfig) { c.TLS, c.Username = "none", "u" }, false},
		{"unknown TLS mode", func(c *notify.SMTPConfig) { c.TLS = "maybe" }, false},
		{"no port", func(c *notify.SMTPConfig) { c.Addr = "mail" }, false},
		{"bad sender", func(c *notify.SMTPConfig) { c.From = "not an address" }, false},
		{"no timeout", func(c *notify.SMTPConfig) { c.Timeout = 0 }, false},
		{"claim lease as long as a send", func(c *notify.SMTPConfig) { c.ClaimLease = c.Timeout }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := base
			tc.change(&cfg)
			s, err := notify.NewSender(cfg)
			if (err == nil) != tc.ok || (tc.ok && s == nil) {
				t.Errorf("NewSender: %v, %v; want ok=%v", s, err, tc.ok)
			}
		})
	}
	if s, err := notify.NewSender(notify.SMTPConfig{}); s != nil || err != nil {
		t.Errorf("empty SMTP_ADDR: %v, %v; want email off", s, err)
	}
}

// STARTTLS and AUTH PLAIN against a real server; a refusal for good is
// undeliverable, a wrong password and a temporary refusal are not.
func TestSenderSTARTTLSAndAuth(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.WithSTARTTLS(t), smtptest.WithAuth("taskfn", "s3cret"))
	cfg := notify.SMTPConfig{Addr: srv.Addr, From: "taskfn <noreply@taskfn.test>", Username: "taskfn", Password: "s3cret",
		TLS: "starttls", Timeout: 5 * time.Second, ClaimLease: 10 * time.Second, HeloName: "localhost"}
	sender := func(c notify.SMTPConfig) *notify.Sender {
		s, err := notify.NewSender(c)
		if err != nil {
			t.Fatal(err)
		}
		s.TLSConfig = srv.ClientTLS
		return s
	}
	ctx := context.Background()
	e := notify.Email{ToAddress: "zoë@taskfn.test", ToName: "Zoë\r\nBcc: x@evil.test", Subject: "Grüße\r\nBcc: y@evil.test",
		Body: "line one\nline two — ünïcode\n" + strings.Repeat("long ", 40), MessageID: "<1@taskfn.test>"}
	if err := sender(cfg).Send(ctx, e); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if !m.TLS || m.User != "taskfn" || m.From != "noreply@taskfn.test" {
		t.Errorf("session: tls %v, user %q, from %q", m.TLS, m.User, m.From)
	}
	if m.Subject != "Grüße  Bcc: y@evil.test" || m.Header.Get("Bcc") != "" || len(m.Header["To"]) != 1 {
		t.Errorf("header injection not neutralised: subject %q, headers %v", m.Subject, m.Header)
	}
	if !strings.HasPrefix(m.Body, "line one\nline two — ünïcode\nlong long") {
		t.Errorf("body %q", m.Body)
	}

	wrong := cfg
	wrong.Password = "nope"
	err := sender(wrong).Send(ctx, e)
	var ue *notify.UndeliverableError
	if err == nil || errors.As(err, &ue) {
		t.Errorf("wrong password: %v; want a retryable error", err)
	}
	srv.Reject("gone@taskfn.test")
	gone := e
	gone.ToAddress = "gone@taskfn.test"
	if err := sender(cfg).Send(ctx, gone); !errors.As(err, &ue) {
		t.Errorf("refused recipient: %v; want undeliverable", err)
	}
	srv.FailNext(1)
	if err := sender(cfg).Send(ctx, e); err == nil || errors.As(err, &ue) {
		t.Errorf("temporary refusal: %v; want a retryable error", err)
	}
	plain := cfg
	plain.Addr = smtptest.Start(t).Addr // offers no STARTTLS
	if err := sender(plain).Send(ctx, e); err == nil {
		t.Error("sent without the required STARTTLS")
	}
}
