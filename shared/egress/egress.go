// Package egress makes the outbound HTTP requests taskfn sends to
// addresses its users chose (webhook subscribers, issue #18) safe from
// server-side request forgery: only https (plain http by explicit
// setting, for local use), never an address inside the cluster, the
// host or the cloud's metadata service, no redirects, bounded time and
// response size. The address is checked twice: when a URL is registered
// (CheckURL) and on every connection, against the IP actually dialled
// after DNS resolution (net.Dialer.Control), so a name that resolves to
// 127.0.0.1 only at delivery time, DNS rebinding, is refused too.
package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefused wraps every refusal: a scheme, a destination or a redirect
// the policy does not allow. Callers use errors.Is.
var ErrRefused = errors.New("egress: refused")

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// Policy says what outbound requests may reach.
type Policy struct {
	// AllowHTTP permits plain http URLs: for local use only.
	AllowHTTP bool
	// AllowLoopback permits 127.0.0.0/8 and ::1: for local use and
	// tests only, where the receiver runs on the same machine.
	AllowLoopback bool
	// Timeout bounds a whole request, connection to last byte (default 10s).
	Timeout time.Duration
	// MaxResponseBytes bounds what ReadBody reads (default 64 KiB).
	MaxResponseBytes int64
	// Resolver looks names up (nil: net.DefaultResolver).
	Resolver *net.Resolver
}

func (p Policy) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return 10 * time.Second
}

// blocked are the ranges netip's predicates do not name: shared address
// space (carrier NAT), IETF protocol assignments, benchmarking, the
// reserved 240/4 and "this network" 0/8, and NAT64's well-known prefix,
// which would carry a blocked IPv4 address inside it.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
}

// CheckAddr refuses an address a request must not reach: loopback
// (unless allowed), private (10/8, 172.16/12, 192.168/16, fc00::/7, which
// holds AWS's IPv6 metadata address), link-local (169.254/16, the
// metadata address of every major cloud, and fe80::/10), multicast,
// unspecified, and the ranges of blocked. IPv4-mapped IPv6 addresses are
// judged as the IPv4 address they carry.
func (p Policy) CheckAddr(a netip.Addr) error {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return refused("no address")
	case a.IsLoopback():
		if p.AllowLoopback {
			return nil
		}
		return refused("%s is a loopback address", a)
	case a.IsPrivate():
		return refused("%s is a private address", a)
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return refused("%s is a link-local address (the cloud metadata service lives there)", a)
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return refused("%s is a multicast address", a)
	case a.IsUnspecified():
		return refused("%s is the unspecified address", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return refused("%s is the broadcast address", a)
	}
	for _, b := range blocked {
		if b.Contains(a) {
			return refused("%s is in the reserved range %s", a, b)
		}
	}
	return nil
}

// CheckURL validates a URL when it is registered: an absolute https (or,
// if allowed, http) URL with a host, without credentials, whose host is
// an allowed address or a name all of whose addresses are allowed. It
// returns the URL parsed. Passing is no promise for later: the name may
// resolve elsewhere by then, which the Client checks on every
// connection.
func (p Policy) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, refused("not a URL: %v", err)
	}
	switch {
	case u.Scheme == "http" && !p.AllowHTTP:
		return nil, refused("plain http is not allowed: use https")
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, refused("scheme %q: use https", u.Scheme)
	case u.User != nil:
		return nil, refused("credentials in the URL are not allowed")
	case u.Hostname() == "":
		return nil, refused("the URL has no host")
	case u.Fragment != "":
		return nil, refused("the URL has a fragment")
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return u, p.CheckAddr(a)
	}
	if strings.HasSuffix(strings.ToLower(host), ".localhost") || strings.EqualFold(host, "localhost") {
		if !p.AllowLoopback {
			return nil, refused("%s names this host", host)
		}
	}
	addrs, err := p.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, refused("%s does not resolve: %v", host, err)
	}
	for _, a := range addrs {
		if err := p.CheckAddr(a); err != nil {
			return nil, fmt.Errorf("%s resolves to %s: %w", host, a, err)
		}
	}
	return u, nil
}

func (p Policy) resolver() *net.Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// Client returns an http.Client that applies the policy on every
// connection: the dialer's Control sees the IP about to be dialled and
// refuses it if the policy does; redirects are never followed (the
// response to a redirect is returned as is, for the caller to count as a
// failure); no proxy from the environment, which would make the proxy
// the address dialled; the whole request bounded by Timeout.
func (p Policy) Client() *http.Client {
	d := &net.Dialer{
		Timeout:  p.timeout(),
		Resolver: p.resolver(),
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return refused("cannot read the address %q", address)
			}
			return p.CheckAddr(ap.Addr())
		},
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   p.timeout(),
		ResponseHeaderTimeout: p.timeout(),
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   p.timeout(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// ReadBody reads at most MaxResponseBytes of resp's body (what a receiver
// answered, kept for the delivery log) and drains nothing more: a huge
// answer costs a bounded read.
func (p Policy) ReadBody(resp *http.Response) ([]byte, error) {
	limit := p.MaxResponseBytes
	if limit <= 0 {
		limit = 64 << 10
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return b, fmt.Errorf("egress: read the response: %w", err)
	}
	return b, nil
}
