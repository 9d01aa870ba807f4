// Package smtptest runs a real SMTP server in-process for tests: it speaks
// the protocol over a loopback port, keeps the messages it accepts, and can
// be told to refuse, for a while or for good, or to stall, as real servers
// do.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one accepted message.
type Message struct {
	From   string
	To     []string
	Raw    []byte
	Header mail.Header
	// Subject and Body are decoded (RFC 2047 words, quoted-printable).
	Subject string
	Body    string
	TLS     bool   // the session was encrypted
	User    string // the authenticated user, if any
}

// Server is a running SMTP server.
type Server struct {
	Addr string
	// ClientTLS trusts the server's certificate; nil without TLS.
	ClientTLS *tls.Config

	mu       sync.Mutex
	msgs     []Message
	failNext int
	reject   map[string]bool
	user     string
	password string
	arrived  chan struct{}
	stall    *stall // nil: answer at once
}

// stall holds messages at DATA until released.
type stall struct {
	held     chan struct{}
	released chan struct{}
	once     sync.Once
}

func (st *stall) release() { st.once.Do(func() { close(st.released) }) }

// Option configures a Server.
type Option func(*Server, *smtp.Server)

// WithSTARTTLS offers STARTTLS with a certificate made for 127.0.0.1.
func WithSTARTTLS(t testing.TB) Option {
	return func(s *Server, srv *smtp.Server) {
		cert, pool := selfSigned(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.ClientTLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
}

// WithAuth requires AUTH PLAIN with these credentials before MAIL.
func WithAuth(user, password string) Option {
	return func(s *Server, _ *smtp.Server) { s.user, s.password = user, password }
}

// Start runs a server on a loopback port until the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{reject: map[string]bool{}, arrived: make(chan struct{}, 1)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, c: c}, nil
	}))
	srv.Domain = "smtptest.local"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.EnableSMTPUTF8 = true
	var done atomic.Bool
	srv.ErrorLog = testLogger{t: t, done: &done}
	for _, o := range opts {
		o(s, srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	s.Addr = ln.Addr().String()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		done.Store(true)
		s.mu.Lock()
		if s.stall != nil {
			s.stall.release()
		}
		s.mu.Unlock()
		_ = srv.Close()
		<-served
	})
	return s
}

// FailNext makes the next n messages fail at DATA with 451, a temporary
// refusal the client should retry.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// Stall makes the server slow: from now on each message, once read,
// waits for its reply until release is called (at the latest when the test
// ends), and then is answered as usual. stalled receives once for each
// message held (up to 64 not yet received), so a test knows a send is
// under way. The client waits meanwhile, up to its own timeout.
func (s *Server) Stall() (stalled <-chan struct{}, release func()) {
	st := &stall{held: make(chan struct{}, 64), released: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stall = st
	return st.held, func() {
		s.mu.Lock()
		if s.stall == st {
			s.stall = nil
		}
		s.mu.Unlock()
		st.release()
	}
}

// Reject makes RCPT TO:<addr> fail with 550, a refusal for good.
func (s *Server) Reject(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject[strings.ToLower(addr)] = true
}

// Messages returns the accepted messages so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// To returns the accepted messages to addr.
func (s *Server) To(addr string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
			}
		}
	}
	return out
}

// Wait waits until at least n messages arrived, or fails the test after
// timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if m := s.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.arrived:
		case <-deadline:
			t.Fatalf("smtptest: %d messages after %s, want %d", len(s.Messages()), timeout, n)
		}
	}
}

type session struct {
	s    *Server
	c    *smtp.Conn
	user string
	from string
	to   []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != ss.s.user || password != ss.s.password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	rejected := ss.s.reject[strings.ToLower(to)]
	ss.s.mu.Unlock()
	if rejected {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	st := ss.s.stall
	ss.s.mu.Unlock()
	if st != nil {
		select {
		case st.held <- struct{}{}:
		default:
		}
		<-st.released
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.failNext > 0 {
		ss.s.failNext--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	m := Message{From: ss.from, To: append([]string(nil), ss.to...), Raw: raw, User: ss.user}
	_, m.TLS = ss.c.TLSConnectionState()
	if msg, err := mail.ReadMessage(strings.NewReader(string(raw))); err == nil {
		m.Header = msg.Header
		m.Subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		var body io.Reader = msg.Body
		if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(msg.Body)
		}
		b, _ := io.ReadAll(body)
		m.Body = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	ss.s.msgs = append(ss.s.msgs, m)
	select {
	case ss.s.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// testLogger sends the server's own errors to the test log while the
// test runs; a connection goroutine may outlive it.
type testLogger struct {
	t    testing.TB
	done *atomic.Bool
}

func (l testLogger) Printf(format string, v ...any) {
	if !l.done.Load() {
		l.t.Logf("smtptest: "+format, v...)
	}
}

func (l testLogger) Println(v ...any) {
	if !l.done.Load() {
		l.t.Log(append([]any{"smtptest:"}, v...)...)
	}
}
