package whsign

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The specification's published test vector.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = 1614265330
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustParse(t *testing.T, s string) Secret {
	t.Helper()
	sec, err := ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret(%q): %v", s, err)
	}
	return sec
}

func mustNew(t *testing.T) Secret {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatalf("NewSecret: %v", err)
	}
	return s
}

func TestSpecVector(t *testing.T) {
	s := mustParse(t, specSecret)
	ts := time.Unix(specTS, 0)
	if got := s.Sign(specID, ts, []byte(specBody)); got != specSig {
		t.Fatalf("Sign = %q, want %q", got, specSig)
	}
	h := s.Headers(specID, ts, []byte(specBody))
	want := map[string]string{HeaderID: specID, HeaderTimestamp: "1614265330", HeaderSignature: specSig}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	// Sub-second parts are not part of the signature.
	if got := s.Sign(specID, ts.Add(999*time.Millisecond), []byte(specBody)); got != specSig {
		t.Errorf("Sign with sub-second time = %q, want %q", got, specSig)
	}
	if err := Verify([]Secret{s}, h, []byte(specBody), ts, time.Minute); err != nil {
		t.Errorf("Verify of spec vector: %v", err)
	}
}

func TestParseSecret(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xab}, n)) }
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"spec secret", specSecret, true},
		{"min length", Prefix + b64(24), true},
		{"max length", Prefix + b64(64), true},
		{"missing prefix", strings.TrimPrefix(specSecret, Prefix), false},
		{"wrong prefix", "whsek_" + b64(32), false},
		{"bad base64", Prefix + "not*base64!", false},
		{"url base64 alphabet", Prefix + strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16))), false},
		{"empty", "", false},
		{"prefix only", Prefix, false},
		{"too short", Prefix + b64(23), false},
		{"too long", Prefix + b64(65), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSecret(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidSecret) {
					t.Fatalf("ParseSecret(%q) err = %v, want ErrInvalidSecret", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecret(%q): %v", tt.in, err)
			}
			if got := s.String(); got != tt.in {
				t.Errorf("String() = %q, want round trip %q", got, tt.in)
			}
			r := s.Redacted()
			enc := strings.TrimPrefix(tt.in, Prefix)
			if strings.Contains(r, enc) || !strings.HasPrefix(r, Prefix+enc[:4]) {
				t.Errorf("Redacted() = %q: must start with the first 4 chars and not contain the secret", r)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, b := mustNew(t), mustNew(t)
	if len(a.Bytes()) != 32 {
		t.Errorf("key length = %d, want 32", len(a.Bytes()))
	}
	if bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two NewSecret calls returned the same key")
	}
	if got := mustParse(t, a.String()); !bytes.Equal(got.Bytes(), a.Bytes()) {
		t.Error("String/ParseSecret did not round-trip")
	}
	// Bytes must be a copy.
	k := a.Bytes()
	k[0] ^= 0xff
	if bytes.Equal(k, a.Bytes()) {
		t.Error("mutating Bytes() changed the secret")
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tol := 5 * time.Minute
	s1, s2 := mustNew(t), mustNew(t)
	body := []byte(`{"event":"task.created"}`)
	const id = "msg_1"

	signed := func(s Secret, ts time.Time) http.Header { return s.Headers(id, ts, body) }
	with := func(h http.Header, key, val string) http.Header {
		h = h.Clone()
		h.Set(key, val)
		return h
	}
	without := func(h http.Header, keys ...string) http.Header {
		h = h.Clone()
		for _, k := range keys {
			h.Del(k)
		}
		return h
	}
	good := signed(s1, now)
	otherSig := s2.Sign(id, now, body)
	goodSig := good.Get(HeaderSignature)
	v2 := "v2," + strings.TrimPrefix(goodSig, "v1,")

	tests := []struct {
		name    string
		secrets []Secret
		h       http.Header
		body    []byte
		want    error
	}{
		{"good", []Secret{s1}, good, body, nil},
		{"tampered body", []Secret{s1}, good, []byte(`{"event":"task.deleted"}`), ErrNoMatch},
		{"tampered id", []Secret{s1}, with(good, HeaderID, "msg_2"), body, ErrNoMatch},
		{"tampered timestamp", []Secret{s1}, with(good, HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10)), body, ErrNoMatch},
		{"wrong secret", []Secret{s2}, good, body, ErrNoMatch},
		{"no secrets", nil, good, body, ErrNoMatch},
		{"zero secret ignored", []Secret{{}}, signed(Secret{}, now), body, ErrNoMatch},
		{"rotated: second secret matches", []Secret{s2, s1}, good, body, nil},
		{"multiple signatures, one matching", []Secret{s1}, with(good, HeaderSignature, "v1,AAAA "+otherSig+" "+goodSig), body, nil},
		{"multiple signatures, none matching", []Secret{s1}, with(good, HeaderSignature, "v1,AAAA "+otherSig), body, ErrNoMatch},
		{"v2-only entry", []Secret{s1}, with(good, HeaderSignature, v2), body, ErrNoMatch},
		{"bare signature without version", []Secret{s1}, with(good, HeaderSignature, strings.TrimPrefix(goodSig, "v1,")), body, ErrNoMatch},
		{"timestamp at tolerance (old)", []Secret{s1}, signed(s1, now.Add(-tol)), body, nil},
		{"timestamp at tolerance (new)", []Secret{s1}, signed(s1, now.Add(tol)), body, nil},
		{"timestamp too old", []Secret{s1}, signed(s1, now.Add(-tol-time.Second)), body, ErrTimestamp},
		{"timestamp too new", []Secret{s1}, signed(s1, now.Add(tol+time.Second)), body, ErrTimestamp},
		{"timestamp far future", []Secret{s1}, with(good, HeaderTimestamp, "9223372036854775807"), body, ErrTimestamp},
		{"malformed timestamp", []Secret{s1}, with(good, HeaderTimestamp, "yesterday"), body, ErrTimestamp},
		{"timestamp in milliseconds", []Secret{s1}, with(good, HeaderTimestamp, strconv.FormatInt(now.UnixMilli(), 10)), body, ErrTimestamp},
		{"missing id", []Secret{s1}, without(good, HeaderID), body, ErrNoMatch},
		{"missing timestamp", []Secret{s1}, without(good, HeaderTimestamp), body, ErrTimestamp},
		{"missing signature", []Secret{s1}, without(good, HeaderSignature), body, ErrNoMatch},
		{"missing all headers", []Secret{s1}, http.Header{}, body, ErrNoMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secrets, tt.h, tt.body, now, tol)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestIndependentLibrary cross-checks against the official Go library of
// the specification, so a misreading shared by our code and our tests
// cannot pass unnoticed.
func TestIndependentLibrary(t *testing.T) {
	mine := mustNew(t)
	theirs, err := standardwebhooks.NewWebhook(mine.String())
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	// Their Verify uses the wall clock with a 5 minute tolerance.
	now := time.Now()
	bodies := [][]byte{[]byte(specBody), {}, []byte("not json \x00\xff. with dots."), bytes.Repeat([]byte("x"), 1<<16)}
	for i, body := range bodies {
		id := "msg_" + strconv.Itoa(i)
		if err := theirs.Verify(body, mine.Headers(id, now, body)); err != nil {
			t.Errorf("body %d: their Verify rejected our headers: %v", i, err)
		}
		sig, err := theirs.Sign(id, now, body)
		if err != nil {
			t.Fatalf("their Sign: %v", err)
		}
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		h.Set(HeaderSignature, sig)
		if err := Verify([]Secret{mine}, h, body, now, time.Minute); err != nil {
			t.Errorf("body %d: our Verify rejected their signature: %v", i, err)
		}
	}

	// And the spec vector through their library.
	spec, err := standardwebhooks.NewWebhook(specSecret)
	if err != nil {
		t.Fatalf("NewWebhook(spec): %v", err)
	}
	sig, err := spec.Sign(specID, time.Unix(specTS, 0), []byte(specBody))
	if err != nil || sig != specSig {
		t.Fatalf("their Sign of spec vector = %q, %v; want %q", sig, err, specSig)
	}
}
