package egress_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/egress"
)

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr     string
		loopback bool // AllowLoopback
		ok       bool
	}{
		{"93.184.215.14", false, true},
		{"2606:4700::1111", false, true},
		{"127.0.0.1", false, false},
		{"127.8.9.10", false, false},
		{"127.0.0.1", true, true},
		{"::1", false, false},
		{"::1", true, true},
		{"::ffff:127.0.0.1", false, false}, // IPv4-mapped loopback
		{"::ffff:10.1.2.3", false, false},
		{"10.0.0.1", false, false},
		{"172.16.5.4", false, false},
		{"192.168.1.1", false, false},
		{"169.254.169.254", false, false}, // cloud metadata
		{"169.254.169.254", true, false},  // allowing loopback allows nothing else
		{"fd00:ec2::254", false, false},   // AWS metadata over IPv6
		{"fe80::1", false, false},
		{"224.0.0.1", false, false},
		{"ff02::1", false, false},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"255.255.255.255", false, false},
		{"100.64.0.1", false, false},
		{"198.18.0.1", false, false},
		{"240.0.0.1", false, false},
		{"64:ff9b::7f00:1", false, false}, // NAT64 of 127.0.0.1
	} {
		t.Run(tc.addr, func(t *testing.T) {
			t.Parallel()
			err := egress.Policy{AllowLoopback: tc.loopback}.CheckAddr(netip.MustParseAddr(tc.addr))
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, egress.ErrRefused)) {
				t.Fatalf("CheckAddr(%s, loopback %v) = %v, want ok %v", tc.addr, tc.loopback, err, tc.ok)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url    string
		policy egress.Policy
		ok     bool
	}{
		{"https://93.184.215.14/hook", egress.Policy{}, true},
		{"http://93.184.215.14/hook", egress.Policy{}, false},
		{"http://93.184.215.14/hook", egress.Policy{AllowHTTP: true}, true},
		{"ftp://93.184.215.14/hook", egress.Policy{}, false},
		{"https://user:pw@93.184.215.14/hook", egress.Policy{}, false},
		{"https:///hook", egress.Policy{}, false},
		{"/hook", egress.Policy{}, false},
		{"https://127.0.0.1/hook", egress.Policy{}, false},
		{"https://[::1]:8443/hook", egress.Policy{}, false},
		{"https://169.254.169.254/latest/meta-data/", egress.Policy{}, false},
		{"https://10.0.0.1/hook", egress.Policy{}, false},
		{"https://localhost/hook", egress.Policy{}, false},
		{"https://api.localhost/hook", egress.Policy{}, false},
		{"https://localhost/hook", egress.Policy{AllowLoopback: true}, true},
		{"https://2130706433/hook", egress.Policy{}, false}, // 127.0.0.1 as one number: does not resolve here
	} {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			_, err := tc.policy.CheckURL(t.Context(), tc.url)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, egress.ErrRefused)) {
				t.Fatalf("CheckURL(%q) = %v, want ok %v", tc.url, err, tc.ok)
			}
		})
	}
}

// receiver counts the requests that reach it.
func receiver(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("thanks")) }

// The client checks the address it dials, whatever the URL said: these
// requests never connect (the refused ones send nothing anywhere).
func TestClientRefusesAtConnection(t *testing.T) {
	t.Parallel()
	srv, hits := receiver(t, ok)
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	strict := egress.Policy{AllowHTTP: true, Timeout: 2 * time.Second}
	for _, u := range []string{
		srv.URL,                          // 127.0.0.1
		"http://localhost" + port,        // a name resolving to loopback at delivery time
		"http://169.254.169.254/latest/", // metadata
		"http://10.0.0.1/hook",
		"http://[::ffff:127.0.0.1]" + port,
	} {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			resp, err := strict.Client().Get(u)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET %s reached %d", u, resp.StatusCode)
			}
			if !errors.Is(err, egress.ErrRefused) {
				t.Fatalf("GET %s: %v, want a refusal", u, err)
			}
		})
	}
	t.Cleanup(func() {
		if n := hits.Load(); n != 0 {
			t.Errorf("the receiver got %d requests", n)
		}
	})
}

func TestClientDeliversWhereAllowed(t *testing.T) {
	t.Parallel()
	srv, hits := receiver(t, ok)
	local := egress.Policy{AllowHTTP: true, AllowLoopback: true}
	resp, err := local.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := local.ReadBody(resp)
	if err != nil || string(body) != "thanks" || hits.Load() != 1 {
		t.Fatalf("body %q err %v hits %d", body, err, hits.Load())
	}
}

// A redirect is returned, not followed: its target (here the metadata
// path on a receiver) sees nothing.
func TestClientFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	target, targetHits := receiver(t, ok)
	first, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/latest/meta-data/", http.StatusFound)
	})
	resp, err := egress.Policy{AllowHTTP: true, AllowLoopback: true}.Client().Get(first.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || targetHits.Load() != 0 {
		t.Fatalf("status %d, redirect target hit %d times; want the 302 and no hit", resp.StatusCode, targetHits.Load())
	}
}

// A proxy from the environment would be the address dialled, past the
// check: the client uses none.
func TestClientIgnoresProxyEnvironment(t *testing.T) {
	proxy, proxyHits := receiver(t, ok)
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("HTTPS_PROXY", proxy.URL)
	_, err := egress.Policy{AllowHTTP: true, Timeout: time.Second}.Client().Get("http://10.0.0.1/hook")
	if !errors.Is(err, egress.ErrRefused) || proxyHits.Load() != 0 {
		t.Fatalf("err %v, proxy hit %d times", err, proxyHits.Load())
	}
}

func TestReadBodyIsBounded(t *testing.T) {
	t.Parallel()
	srv, _ := receiver(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
	})
	p := egress.Policy{AllowHTTP: true, AllowLoopback: true, MaxResponseBytes: 100}
	resp, err := p.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, err := p.ReadBody(resp); err != nil || len(b) != 100 {
		t.Fatalf("read %d bytes (%v), want 100", len(b), err)
	}
}

func TestClientTimesOut(t *testing.T) {
	t.Parallel()
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	start := time.Now()
	_, err := egress.Policy{AllowHTTP: true, AllowLoopback: true, Timeout: 200 * time.Millisecond}.Client().Get(srv.URL)
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("a stalled receiver: err %v after %s", err, time.Since(start))
	}
}
