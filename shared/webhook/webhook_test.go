package webhook_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/egress"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/webhook"
	"github.com/taskfn/taskfn/shared/whsign"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, most := 10*time.Second, time.Hour
	for _, tt := range []struct {
		name string
		n    int
		r    float64
		want time.Duration
	}{
		{"first, least jitter", 1, 0, 5 * time.Second},
		{"first, most jitter", 1, 0.999999, 10*time.Second - 10*time.Microsecond},
		{"third doubles twice", 3, 0, 20 * time.Second},
		{"capped", 12, 0, 30 * time.Minute},
		{"no overflow far out", 200, 0.5, 45 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := webhook.Backoff(base, most, tt.n, tt.r)
			if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("Backoff(n=%d, r=%v) = %s, want %s", tt.n, tt.r, got, tt.want)
			}
		})
	}
}

func TestTouched(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, data string
		want       []string
		poison     bool
	}{
		{"task", `{"task":{"project":"web"}}`, []string{"web"}, false},
		{"relation across", `{"project":"web","other_project":"ops"}`, []string{"web", "ops"}, false},
		{"relation within", `{"project":"web","other_project":"web"}`, []string{"web"}, false},
		{"before projects", `{"task":{"id":"x"}}`, nil, false},
		{"not JSON", `nope`, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := webhook.Touched([]byte(tt.data))
			if (err != nil) != tt.poison || tt.poison && !errors.Is(err, errs.ErrPoison) {
				t.Fatalf("err %v, want poison %v", err, tt.poison)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("touched (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSealer(t *testing.T) {
	t.Parallel()
	s, err := webhook.NewSealer("dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktMzJieXQ=")
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := whsign.NewSecret()
	id, other := uuid.New(), uuid.New()
	sealed, err := s.Seal(id, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open(id, sealed); err != nil || got.String() != secret.String() {
		t.Errorf("open: %v", err)
	}
	if _, err := s.Open(other, sealed); err == nil {
		t.Error("a sealed secret opens for another webhook")
	}
	for _, key := range []string{"", "short", "not base64!"} {
		if _, err := webhook.NewSealer(key); !errors.Is(err, webhook.ErrConfig) {
			t.Errorf("key %q: %v, want ErrConfig", key, err)
		}
	}
}

// FuzzParseInput drives the reading of a webhook body: any bytes give an
// Input or an errs.Invalid / validation error (400, 422), never a panic;
// what Draft accepts names only subscribable types and a URL the policy
// allows.
func FuzzParseInput(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://example.com/h","types":["dev.taskfn.task.created.v1"],"project":"web"}`,
		`{"url":null,"types":[],"content_mode":"binary","enabled":false}`,
		`{"secret":"whsec_x","id":"y"}`, `[]`, `{"types":[1]}`, `{"url":"http://127.0.0.1/"}`,
	} {
		f.Add([]byte(s))
	}
	// No DNS: a name resolves nowhere, so only literal addresses pass.
	policy := egress.Policy{Resolver: &noDNS}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := webhook.ParseInput(body)
		if err != nil {
			if !refusal(err) {
				t.Fatalf("not a 400 or 422: %v", err)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		w, err := webhook.Draft(ctx, in, "owner", policy)
		if err != nil {
			var ve *errs.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Draft: not a 422: %v", err)
			}
			return
		}
		if _, err := policy.CheckURL(ctx, w.URL); err != nil || len(w.Types) == 0 || len(w.Types) > webhook.MaxTypes {
			t.Fatalf("Draft accepted %+v", w)
		}
	})
}

// refusal: a 400 (errs.Invalid) or a 422 (*errs.ValidationError).
func refusal(err error) bool {
	var ve *errs.ValidationError
	return errs.KindOf(err) == errs.Invalid || errors.As(err, &ve)
}

// noDNS resolves nothing, without the network.
var noDNS = net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no DNS in this test")
}}

// FuzzTouched drives the sink's reading of an event's data: any bytes
// give at most three distinct non-empty projects, or poison (400, dead-
// lettered), never a panic.
func FuzzTouched(f *testing.F) {
	for _, s := range []string{`{"task":{"project":"web"}}`, `{"project":"a","other_project":"b","task":{"project":"c"}}`, `null`, `{"task":null}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := webhook.Touched(data)
		if err != nil {
			if !errors.Is(err, errs.ErrPoison) {
				t.Fatalf("not poison: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, p := range got {
			if p == "" || seen[p] {
				t.Fatalf("touched %q", got)
			}
			seen[p] = true
		}
		if len(got) > 3 {
			t.Fatalf("touched %q", got)
		}
	})
}

// A name that resolves to loopback (or to the metadata address) is
// refused at registration: the lookup goes, over the DNS protocol, to a
// resolver of the test's on loopback that answers every A query with
// the address it is given.
func TestDraftRefusesNamesResolvingInside(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		ip   [4]byte
		want string
	}{
		{"loopback", [4]byte{127, 0, 0, 1}, "loopback"},
		{"metadata", [4]byte{169, 254, 169, 254}, "link-local"},
		{"private", [4]byte{10, 1, 2, 3}, "private"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			policy := egress.Policy{Resolver: fakeDNS(t, tt.ip)}
			in, err := webhook.ParseInput([]byte(`{"url":"https://hooks.example.test/x","types":["dev.taskfn.task.created.v1"]}`))
			if err != nil {
				t.Fatal(err)
			}
			_, err = webhook.Draft(t.Context(), in, "o", policy)
			var ve *errs.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "url" || !strings.Contains(ve.Fields[0].Detail, tt.want) {
				t.Fatalf("Draft: %v, want a 422 on url saying %s", err, tt.want)
			}
		})
	}
}

// fakeDNS serves, on a loopback UDP port, an answer of ip to every A
// query and no address to any other, and returns a resolver using it.
func fakeDNS(t *testing.T, ip [4]byte) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			end := 12 // the question: labels, then type and class
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5
			if end > n {
				continue
			}
			qtype := binary.BigEndian.Uint16(q[end-4:])
			resp := append([]byte(nil), q[:end]...)
			resp[2], resp[3] = 0x81, 0x80            // a response, recursion available, no error
			binary.BigEndian.PutUint16(resp[6:], 0)  // answers
			binary.BigEndian.PutUint16(resp[8:], 0)  // authority
			binary.BigEndian.PutUint16(resp[10:], 0) // additional
			if qtype == 1 {                          // A
				binary.BigEndian.PutUint16(resp[6:], 1)
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4) // name → the question, A, IN, TTL 60, 4 bytes
				resp = append(resp, ip[:]...)
			}
			_, _ = pc.WriteTo(resp, addr)
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}
