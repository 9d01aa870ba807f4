package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

const (
	// maxJWKSBytes bounds the JWKS body; Keycloak's is a few KiB.
	maxJWKSBytes = 1 << 20
	// fetchTimeout bounds one discovery or JWKS request even with a caller's
	// http.Client that has no timeout.
	fetchTimeout = 10 * time.Second
)

// keySet is the issuer's JWKS, an oidc.KeySet. Keys are fetched on first use
// and refetched when a token names an unknown kid, because that is how a key
// rotation shows. The kid comes from an unauthenticated header, so refetches
// are rate limited to one per minRefresh and concurrent misses share one
// request: random kids cannot turn requests into load on Keycloak.
type keySet struct {
	url        string
	client     *http.Client
	algs       []jose.SignatureAlgorithm
	minRefresh time.Duration // between fetches once keys are loaded
	retryEvery time.Duration // between fetches while none ever loaded
	now        func() time.Time

	keys  atomic.Pointer[[]jose.JSONWebKey] // nil until the first successful fetch
	group singleflight.Group

	mu        sync.Mutex
	lastFetch time.Time // start of the last attempt, whatever its outcome
	lastErr   error     // outcome of that attempt
}

func newKeySet(url string, client *http.Client, algs []string, minRefresh, retryEvery time.Duration) *keySet {
	ks := &keySet{url: url, client: client, minRefresh: minRefresh, retryEvery: retryEvery, now: time.Now}
	for _, a := range algs {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	return ks
}

// VerifySignature implements oidc.KeySet: it returns the payload of jwt if
// one of the issuer's keys signed it.
func (ks *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	// go-oidc has checked alg already; parsing with the same list again keeps
	// this type safe on its own.
	jws, err := jose.ParseSignedCompact(jwt, ks.algs)
	if err != nil {
		return nil, invalid(descInvalid, err)
	}
	hdr := jws.Signatures[0].Header
	keys, err := ks.candidates(ctx, hdr.KeyID)
	if err != nil {
		return nil, err
	}
	for i := range keys {
		k := &keys[i]
		if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
			continue
		}
		if payload, err := jws.Verify(k); err == nil {
			return payload, nil
		}
	}
	return nil, invalid(descInvalid, errors.New("signature matches no key of the issuer"))
}

// ready loads the keys if they never were.
func (ks *keySet) ready(ctx context.Context) error {
	if ks.keys.Load() != nil {
		return nil
	}
	return ks.refresh(ctx)
}

// candidates returns the keys a token with kid may be signed with, fetching
// the JWKS when the kid is unknown and the rate limit allows.
func (ks *keySet) candidates(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if keys := ks.match(kid); len(keys) > 0 {
		return keys, nil
	}
	if err := ks.refresh(ctx); err != nil {
		return nil, err
	}
	if keys := ks.match(kid); len(keys) > 0 {
		return keys, nil
	}
	return nil, invalid(descInvalid, fmt.Errorf("no key with kid %q", kid))
}

// match returns the keys with kid; a token without kid may be signed by any.
func (ks *keySet) match(kid string) []jose.JSONWebKey {
	p := ks.keys.Load()
	if p == nil {
		return nil
	}
	if kid == "" {
		return *p
	}
	for i, k := range *p {
		if k.KeyID == kid {
			// Kids are unique in practice; one key saves an allocation.
			return (*p)[i : i+1 : i+1]
		}
	}
	return nil
}

// refresh fetches the JWKS unless the last attempt was too recent, in which
// case it returns that attempt's error (nil when it succeeded). Concurrent
// callers share one attempt; a caller that gives up does not cancel it for
// the others.
func (ks *keySet) refresh(ctx context.Context) error {
	ch := ks.group.DoChan("jwks", func() (any, error) { return nil, ks.fetchIfDue() })
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for the JWKS: %w", ErrUnavailable, ctx.Err())
	}
}

func (ks *keySet) fetchIfDue() error {
	ks.mu.Lock()
	wait := ks.retryEvery
	if ks.keys.Load() != nil {
		wait = ks.minRefresh
	}
	now := ks.now()
	if !ks.lastFetch.IsZero() && now.Sub(ks.lastFetch) < wait {
		err := ks.lastErr
		ks.mu.Unlock()
		return err
	}
	ks.lastFetch = now
	ks.mu.Unlock()

	keys, err := ks.fetch()

	ks.mu.Lock()
	defer ks.mu.Unlock()
	if err != nil {
		ks.lastErr = fmt.Errorf("%w: JWKS: %w", ErrUnavailable, err)
		return ks.lastErr
	}
	ks.keys.Store(&keys)
	ks.lastErr = nil
	return nil
}

func (ks *keySet) fetch() ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", ks.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", ks.url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: body larger than %d bytes", ks.url, maxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS keeps the public signing keys of a JWKS. A key this package
// cannot use (an encryption key, an unknown type) is skipped rather than
// failing the set, so Keycloak adding one does not lock every caller out.
func parseJWKS(body []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decoding JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		// Private or symmetric material has no business in a JWKS; verifying
		// with it would let whoever can read the JWKS sign.
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no usable signing key")
	}
	return keys, nil
}
