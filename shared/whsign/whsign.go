// Package whsign signs and verifies webhooks per the Standard Webhooks
// specification (https://www.standardwebhooks.com/).
//
// A delivery carries three headers: webhook-id (unique per message, reused
// on retries so receivers can deduplicate), webhook-timestamp (unix seconds,
// so receivers can reject replays) and webhook-signature (a space-separated
// list of "v1,<base64 HMAC-SHA256>" entries; several entries let a sender
// sign with old and new secrets during rotation). The signed content is
// "<id>.<timestamp>.<body>", which binds the id and timestamp to the body.
package whsign

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names and the secret prefix defined by the specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
	Prefix          = "whsec_"
)

var (
	// ErrInvalidSecret is returned (wrapped with detail) by ParseSecret.
	ErrInvalidSecret = errors.New("whsign: invalid secret")
	// ErrNoMatch means no v1 signature matched any of the secrets, or the
	// id or signature header was missing.
	ErrNoMatch = errors.New("whsign: no matching signature")
	// ErrTimestamp means the timestamp header was missing, malformed or
	// outside the tolerance.
	ErrTimestamp = errors.New("whsign: timestamp missing, malformed or outside tolerance")
)

// Key length bounds from the specification; 32 is what NewSecret uses.
const (
	minKeyLen = 24
	maxKeyLen = 64
	newKeyLen = 32
)

// Secret is an HMAC signing key. The zero value is not a valid secret:
// Verify ignores it, so a forgotten initialisation cannot accept
// signatures made with an empty key.
type Secret struct{ key []byte }

// NewSecret returns a fresh 32-byte secret from crypto/rand.
func NewSecret() (Secret, error) {
	key := make([]byte, newKeyLen)
	if _, err := rand.Read(key); err != nil {
		return Secret{}, fmt.Errorf("whsign: generating secret: %w", err)
	}
	return Secret{key: key}, nil
}

// ParseSecret parses the "whsec_<base64>" form produced by String.
func ParseSecret(s string) (Secret, error) {
	enc, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: missing %q prefix", ErrInvalidSecret, Prefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		// Don't include err: its message can echo parts of the secret.
		return Secret{}, fmt.Errorf("%w: not valid base64", ErrInvalidSecret)
	}
	if len(key) < minKeyLen || len(key) > maxKeyLen {
		return Secret{}, fmt.Errorf("%w: key is %d bytes, want %d..%d", ErrInvalidSecret, len(key), minKeyLen, maxKeyLen)
	}
	return Secret{key: key}, nil
}

// String returns the full "whsec_..." form. It is the secret itself: show it
// once or store it, never log it (use Redacted for that).
func (s Secret) String() string {
	return Prefix + base64.StdEncoding.EncodeToString(s.key)
}

// Redacted returns a short, non-secret form that is enough to tell secrets
// apart in UIs and logs.
func (s Secret) Redacted() string {
	enc := base64.StdEncoding.EncodeToString(s.key)
	return Prefix + enc[:min(4, len(enc))] + "…"
}

// Bytes returns a copy of the key so callers cannot mutate the Secret.
func (s Secret) Bytes() []byte {
	return append([]byte(nil), s.key...)
}

// Sign returns the "v1,<base64>" signature of body for message id at ts.
// ts is truncated to whole seconds, as the header carries.
func (s Secret) Sign(id string, ts time.Time, body []byte) string {
	return "v1," + s.mac(id, strconv.FormatInt(ts.Unix(), 10), body)
}

// mac is the base64 HMAC-SHA256 of "<id>.<ts>.<body>". Writing the parts
// one by one avoids copying the body.
func (s Secret) mac(id, ts string, body []byte) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Headers returns the three headers for a delivery of body.
func (s Secret) Headers(id string, ts time.Time, body []byte) http.Header {
	h := make(http.Header, 3)
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, s.Sign(id, ts, body))
	return h
}

// Verify checks headers h against body. The timestamp must be within
// tolerance of now in both directions (old ones are replays, future ones
// would stay replayable for longer). Any v1 signature matching any secret
// is accepted, so senders can rotate keys; entries of other versions are
// ignored, as the specification requires. Zero-value secrets are skipped.
// The error wraps ErrTimestamp or ErrNoMatch.
func Verify(secrets []Secret, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id := h.Get(HeaderID)
	tsRaw := h.Get(HeaderTimestamp)
	sigs := h.Values(HeaderSignature)
	if id == "" {
		return fmt.Errorf("%w: missing %s header", ErrNoMatch, HeaderID)
	}
	if tsRaw == "" {
		return fmt.Errorf("%w: missing %s header", ErrTimestamp, HeaderTimestamp)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: missing %s header", ErrNoMatch, HeaderSignature)
	}

	// Check the timestamp before any HMAC work: it is cheap and rejects
	// replays outright.
	sec, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not unix seconds", ErrTimestamp, HeaderTimestamp)
	}
	// Sub saturates rather than overflows, so absurd values are just rejected.
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: off by %s, tolerance %s", ErrTimestamp, d.Truncate(time.Second), tolerance)
	}

	// Compute each secret's expected signature once, keeping the raw header
	// text so the comparison covers exactly what was signed.
	want := make([][]byte, 0, len(secrets))
	for _, s := range secrets {
		if len(s.key) == 0 {
			continue
		}
		want = append(want, []byte(s.mac(id, tsRaw, body)))
	}
	for _, line := range sigs {
		for _, entry := range strings.Fields(line) {
			version, sig, ok := strings.Cut(entry, ",")
			if !ok || version != "v1" {
				continue
			}
			for _, w := range want {
				// Constant time, so response timing leaks nothing about
				// how much of a forged signature was right.
				if hmac.Equal([]byte(sig), w) {
					return nil
				}
			}
		}
	}
	return ErrNoMatch
}
