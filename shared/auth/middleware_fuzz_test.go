package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
)

// FuzzRequire drives the bearer header parsing and token verification
// of every route (Require, behind each Gate) with a verifier trusting a
// real issuer over HTTP: whatever Authorization lines a client sends (n:
// none, the first, or both), the answer is the route (200), 401 with a
// challenge, or 403 for a caller without the role; never a 5xx, which
// would tell the client to retry what can never succeed. The verifier
// refreshes keys at most hourly, so a fuzzed kid costs the issuer nothing.
func FuzzRequire(f *testing.F) {
	iss := authtest.NewIssuer(f)
	cfg := iss.Config()
	cfg.JWKSMinRefresh = time.Hour
	v := newVerifier(f, cfg)
	h := v.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := auth.FromContext(r.Context()); !ok || id.Subject == "" {
			http.Error(w, "no identity", http.StatusInternalServerError)
		}
	}), auth.RoleMember, auth.RoleAdmin)

	member := iss.Token(f, "carol", auth.RoleMember)
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	with := func(change func(c map[string]any)) string {
		c := iss.Claims("mallory", auth.RoleAdmin)
		change(c)
		return iss.Sign(f, c)
	}
	parts := strings.Split(member, ".")
	for _, c := range []struct {
		n             uint8
		first, second string
	}{
		{1, "Bearer " + member, ""}, {1, "bearer  " + member + " ", ""}, {2, "Bearer " + member, "Bearer x"},
		{1, "Bearer " + iss.Token(f, "eve"), ""}, {0, "", ""}, {1, "", ""}, {1, "Bearer", ""}, {1, "Bearer ", ""},
		{1, "Basic YWxpY2U6YWxpY2U=", ""}, {1, "Bearer not-a-jwt", ""}, {1, "Bearer aaa.bbb.ccc", ""},
		{1, "Bearer " + enc(map[string]string{"alg": "none"}) + "." + parts[1] + ".", ""},
		{1, "Bearer " + parts[0] + "." + enc(iss.Claims("mallory", auth.RoleAdmin)) + "." + parts[2], ""},
		{1, "Bearer " + signWith(f, jose.RS256, attackerKey(), "no-such-kid", iss.Claims("mallory", auth.RoleAdmin)), ""},
		{1, "Bearer " + signWith(f, jose.HS256, []byte("a secret of thirty-two bytes, ok"), "", iss.Claims("mallory", auth.RoleAdmin)), ""},
		{1, "Bearer " + with(func(c map[string]any) { c["exp"] = time.Now().Unix() - 600 }), ""},
		{1, "Bearer " + with(func(c map[string]any) { c["nbf"] = 1e300 }), ""},
		{1, "Bearer " + with(func(c map[string]any) { c["aud"] = 42 }), ""},
		{1, "Bearer " + with(func(c map[string]any) { delete(c, "sub") }), ""},
		{1, "Bearer " + with(func(c map[string]any) { c["realm_access"] = "task-admin" }), ""},
		{1, "Bearer " + strings.Repeat("a", 20<<10), ""},
	} {
		f.Add(c.n, c.first, c.second)
	}
	f.Fuzz(func(t *testing.T, n uint8, first, second string) {
		r := httptest.NewRequest(http.MethodGet, "/tasks", nil)
		for i, line := range []string{first, second} {
			if int(n%3) > i {
				r.Header.Add("Authorization", line)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK, http.StatusForbidden:
		case http.StatusUnauthorized:
			if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="taskfn"`) {
				t.Fatalf("401 without a Bearer challenge: %q", w.Header().Get("WWW-Authenticate"))
			}
		default:
			t.Fatalf("Authorization %q: status %d: %s", r.Header.Values("Authorization"), w.Code, w.Body)
		}
	})
}
