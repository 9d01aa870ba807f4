package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
)

// BenchmarkVerify measures a verification with the signature check (cold:
// cache off), from the verified-token cache, and through Require.
func BenchmarkVerify(b *testing.B) {
	iss := authtest.NewIssuer(b)
	token := iss.Token(b, "u-1", auth.RoleMember)
	ctx := context.Background()
	verifier := func(b *testing.B, cacheSize int) *auth.Verifier {
		cfg := iss.Config()
		cfg.TokenCacheSize = cacheSize
		v := newVerifier(b, cfg)
		// Discovery and the JWKS fetch happen once per process: keep
		// them out of the numbers.
		if _, err := v.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
		return v
	}
	b.Run("cold", func(b *testing.B) {
		v := verifier(b, 0)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		v := verifier(b, 1000)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("require", func(b *testing.B) {
		v := verifier(b, 1000)
		h := v.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}), auth.RoleMember)
		req := httptest.NewRequest(http.MethodGet, "/tasks", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusNoContent {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
	b.Run("cached-parallel", func(b *testing.B) {
		v := verifier(b, 1000)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(ctx, token); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
