package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	rsaKey := testKey()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	js := func(k jose.JSONWebKey) string {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	pubRSA := js(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "rsa", Algorithm: "RS256", Use: "sig"})
	pubEC := js(jose.JSONWebKey{Key: &ecKey.PublicKey, KeyID: "ec", Algorithm: "ES256"})
	encRSA := js(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "enc", Algorithm: "RSA-OAEP", Use: "enc"})
	privRSA := js(jose.JSONWebKey{Key: rsaKey, KeyID: "private", Algorithm: "RS256", Use: "sig"})
	oct := js(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct", Algorithm: "HS256"})
	unknown := `{"kty":"XYZ","kid":"unknown"}`
	set := func(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }

	tests := []struct {
		name     string
		body     string
		wantKids []string
		wantErr  bool
	}{
		{"public signing keys kept", set(pubRSA, pubEC), []string{"rsa", "ec"}, false},
		{"encryption key skipped", set(encRSA, pubRSA), []string{"rsa"}, false},
		{"private key skipped", set(privRSA, pubRSA), []string{"rsa"}, false},
		{"symmetric key skipped", set(oct, pubRSA), []string{"rsa"}, false},
		{"unknown key type does not spoil the set", set(unknown, pubRSA), []string{"rsa"}, false},
		{"nothing usable", set(oct, encRSA), nil, true},
		{"not JSON", `<html>`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys, err := parseJWKS([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			var kids []string
			for _, k := range keys {
				kids = append(kids, k.KeyID)
			}
			if diff := cmp.Diff(tt.wantKids, kids); diff != "" {
				t.Errorf("kids (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJWKSRefetchSpacing drives the unknown-kid refetch limit with a fake
// clock: exact counts instead of a timing window.
func TestJWKSRefetchSpacing(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t)
	c := newClock()
	v := testVerifier(t, ti, c, func(cfg *Config) { cfg.TokenCacheSize = 0 })
	ctx := context.Background()
	if _, err := v.Verify(ctx, ti.token(t, c.now().Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	// Pre-signed: the flood should exercise the verifier, not RSA signing.
	forged := make([]string, 26)
	for i := range forged {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256,
			Key: jose.JSONWebKey{Key: testKeyOther(), KeyID: "kid-" + string(rune('a'+i))}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(map[string]any{"iss": ti.URL(), "sub": "x", "aud": "taskfn-api", "exp": c.now().Add(time.Hour).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		jws, err := signer.Sign(b)
		if err != nil {
			t.Fatal(err)
		}
		if forged[i], err = jws.CompactSerialize(); err != nil {
			t.Fatal(err)
		}
	}
	flood := func(n int) {
		for i := range n {
			if _, err := v.Verify(ctx, forged[i%len(forged)]); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("random kid: %v", err)
			}
		}
	}
	steps := []struct {
		name    string
		advance time.Duration
		want    int64
	}{
		{"flood right after the first fetch", time.Second, 1},
		{"still within JWKSMinRefresh", 8 * time.Second, 1},
		{"past JWKSMinRefresh: one refetch for the whole flood", 2 * time.Second, 2},
		{"and then quiet again", time.Second, 2},
	}
	for _, s := range steps {
		c.advance(s.advance)
		flood(50)
		if got := ti.jwks.Load(); got != s.want {
			t.Errorf("%s: %d JWKS fetches, want %d", s.name, got, s.want)
		}
	}
}

var testKeyOther = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})
