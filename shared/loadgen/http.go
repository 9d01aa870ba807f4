package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Request is one HTTP/1.1 request as it goes on the wire, built once and
// sent as often as wanted: a worker's loop then costs one write and the
// reads of the answer, as with wrk, and none of net/http's per-request
// machinery (a request object, header maps, the transport's goroutine
// hand-offs). The load generator shares the CPUs it measures, so what it
// spends is taken from the server under test: net/http's client cost
// about 100 µs of CPU per list page.
type Request struct {
	addr string // host:port to dial
	wire []byte
	// wire[from:to] is the request-target, which WithPath replaces.
	from, to int
	// retry: safe to send again on a fresh connection when a kept-alive
	// one turns out closed before answering.
	retry bool
}

// NewRequest builds a request for an http:// URL, with header and body
// (Content-Length is set for a body or a method that carries one).
func NewRequest(method, rawURL string, header http.Header, body []byte) (Request, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Request{}, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return Request{}, fmt.Errorf("loadgen: %q: want an http:// URL with a host", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var b bytes.Buffer
	target := u.RequestURI()
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + u.Host + "\r\n")
	if err := header.WriteSubset(&b, map[string]bool{"Host": true, "Content-Length": true}); err != nil {
		return Request{}, err
	}
	if len(body) > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	from := len(method) + 1
	return Request{addr: addr, wire: b.Bytes(), from: from, to: from + len(target), retry: method == http.MethodGet || method == http.MethodHead}, nil
}

// WithPath is r for another path (and query) on the same host, with the
// same header and body: a step that walks many ids builds one Request and
// derives the others, a copy instead of parsing and rendering each
// (NewRequest: 1.4 µs and 5 allocations). path must be an
// origin-form request-target, such as "/tasks/1?x=y"; it panics otherwise,
// as a request the server cannot parse would measure nothing.
func (r Request) WithPath(path string) Request {
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n") {
		panic(fmt.Sprintf("loadgen: %q is not a request-target", path))
	}
	wire := make([]byte, 0, len(r.wire)-(r.to-r.from)+len(path))
	wire = append(append(append(wire, r.wire[:r.from]...), path...), r.wire[r.to:]...)
	r.wire, r.to = wire, r.from+len(path)
	return r
}

// Client keeps one connection per worker, dialled on first use and kept
// alive, as a gateway in front of a function does. Worker w's calls must
// not overlap (Run calls each worker's steps one after the other).
type Client struct {
	conns   []conn
	timeout time.Duration
}

type conn struct {
	nc   net.Conn
	addr string
	r    *bufio.Reader
	ctx  context.Context // the one stop watches
	stop func() bool     // ends the context watch
}

// NewClient is a client for n workers; each request must be answered in
// full within timeout.
func NewClient(n int, timeout time.Duration) *Client {
	return &Client{conns: make([]conn, n), timeout: timeout}
}

// Close closes every connection.
func (c *Client) Close() {
	for i := range c.conns {
		c.conns[i].close()
	}
}

// errNoAnswer: the connection ended before any byte of the answer, as a
// kept-alive connection does when the server closed it while idle.
var errNoAnswer = errors.New("connection closed before an answer")

// Do sends req as worker and reads the whole answer; it returns its status.
func (c *Client) Do(ctx context.Context, worker int, req Request) (int, error) {
	status, _, err := c.DoHeader(ctx, worker, req, "")
	return status, err
}

// DoHeader is Do that also returns the answer's header name (its last
// value; "" if absent): a client whose next request depends on the answer,
// as an If-Match on the ETag it was given, reads it without net/http.
func (c *Client) DoHeader(ctx context.Context, worker int, req Request, name string) (int, string, error) {
	cn := &c.conns[worker]
	if cn.nc != nil && cn.addr != req.addr {
		cn.close()
	}
	reused := cn.nc != nil
	status, value, err := cn.roundTrip(ctx, req, c.timeout, name)
	if err != nil && reused && req.retry && errors.Is(err, errNoAnswer) {
		status, value, err = cn.roundTrip(ctx, req, c.timeout, name)
	}
	return status, value, err
}

func (cn *conn) close() {
	if cn.nc != nil {
		cn.stop()
		cn.nc.Close()
		cn.nc, cn.ctx, cn.stop = nil, nil, nil
	}
}

func (cn *conn) roundTrip(ctx context.Context, req Request, timeout time.Duration, name string) (int, string, error) {
	if cn.nc == nil {
		d := net.Dialer{Timeout: timeout}
		nc, err := d.DialContext(ctx, "tcp", req.addr)
		if err != nil {
			return 0, "", err
		}
		cn.nc, cn.addr = nc, req.addr
		// A list page (20 kB) in one read.
		if cn.r == nil {
			cn.r = bufio.NewReaderSize(nc, 64<<10)
		} else {
			cn.r.Reset(nc)
		}
	}
	if cn.ctx != ctx {
		// A run that ends mid-request does not wait for the answer.
		if cn.stop != nil {
			cn.stop()
		}
		nc := cn.nc
		cn.ctx, cn.stop = ctx, context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	}
	status, value, keep, err := cn.exchange(req, timeout, name)
	if err != nil || !keep {
		cn.close()
	}
	return status, value, err
}

// exchange writes req and reads its answer to the end, and the value of
// its header name if name is not "". keep is false when the connection
// cannot carry another request.
func (cn *conn) exchange(req Request, timeout time.Duration, name string) (status int, value string, keep bool, err error) {
	if err := cn.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, "", false, err
	}
	if _, err := cn.nc.Write(req.wire); err != nil {
		return 0, "", false, fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	r := cn.r
	line, err := r.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && (err == io.EOF || errors.Is(err, net.ErrClosed) || isReset(err)) {
			err = fmt.Errorf("%w: %w", errNoAnswer, err)
		}
		return 0, "", false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, "", false, fmt.Errorf("loadgen: malformed status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, "", false, fmt.Errorf("loadgen: malformed status line %q", line)
	}
	keep = line[7] == '1' // HTTP/1.0 closes unless asked otherwise
	length, chunked := int64(-1), false
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return status, "", false, fmt.Errorf("loadgen: reading the header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		key, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, "", false, fmt.Errorf("loadgen: malformed header line %q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case headerIs(key, "Content-Length"):
			if length, err = strconv.ParseInt(string(v), 10, 64); err != nil || length < 0 {
				return status, "", false, fmt.Errorf("loadgen: bad Content-Length %q", v)
			}
		case headerIs(key, "Transfer-Encoding"):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case headerIs(key, "Connection"):
			keep = keep && !bytes.EqualFold(v, []byte("close"))
		case name != "" && headerIs(key, name):
			value = string(v)
		}
	}
	switch {
	case status/100 == 1 || status == http.StatusNoContent || status == http.StatusNotModified:
		// No body (RFC 9112, section 6.3).
	case chunked:
		_, err = io.Copy(io.Discard, httputil.NewChunkedReader(r))
		if err == nil {
			// The trailer section, then the empty line that ends it.
			for {
				line, err = r.ReadSlice('\n')
				if err != nil || len(bytes.TrimRight(line, "\r\n")) == 0 {
					break
				}
			}
		}
	case length >= 0:
		_, err = r.Discard(int(length))
	default:
		// Delimited by the end of the connection.
		_, err = io.Copy(io.Discard, r)
		keep = false
	}
	return status, value, keep && err == nil, err
}

func headerIs(name []byte, canonical string) bool {
	return bytes.EqualFold(bytes.TrimSpace(name), []byte(canonical))
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// HTTP is a Step that sends the request next gives the worker and wants
// status back. The answer is read to the end, so the connection is reused
// and the response counts in full.
func HTTP(client *Client, want int, next func(worker int) Request) Step {
	return func(ctx context.Context, worker int) error {
		req := next(worker)
		status, err := client.Do(ctx, worker, req)
		if err != nil {
			return err
		}
		if status != want {
			return fmt.Errorf("%s: status %d, want %d", bytes.SplitN(req.wire, []byte("\r"), 2)[0], status, want)
		}
		return nil
	}
}
