package auth

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/httpx"
)

// challenge is the WWW-Authenticate value every refusal starts with.
const challenge = `Bearer realm="taskfn"`

// Require lets a request through to next only with a valid bearer access
// token whose caller holds at least one of roles (any valid caller when roles
// is empty), with the caller's Identity in the request context. It answers
// 401 for a missing or refused token, 403 for a caller without the role and
// 503 while the issuer cannot be reached.
func (v *Verifier) Require(next http.Handler, roles ...Role) http.Handler {
	roles = slices.Clone(roles)
	need := make([]string, len(roles))
	for i, r := range roles {
		need[i] = string(r)
	}
	forbidden := "this operation needs one of the roles " + strings.Join(need, ", ")

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, p := bearerToken(r)
		if p != nil {
			httpx.WriteProblem(w, r, p)
			return
		}
		id, err := v.Verify(r.Context(), raw)
		if err != nil {
			refuse(w, r, err, zerolog.DebugLevel, "the identity provider")
			return
		}
		if len(roles) > 0 && !id.HasAny(roles...) {
			p := httpx.Forbidden(forbidden)
			p.Header = http.Header{"Www-Authenticate": {challenge + `, error="insufficient_scope"`}}
			httpx.WriteProblem(w, r, p)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

// bearerToken takes the token from the Authorization header (RFC 6750 §2.1;
// the scheme is case-insensitive per RFC 9110).
func bearerToken(r *http.Request) (string, *httpx.Problem) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", unauthorized(challenge, "the request needs an access token: Authorization: Bearer <token>")
	}
	if len(values) > 1 {
		return "", invalidToken("the request carries more than one Authorization header")
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		// Another scheme is no credential for us; RFC 6750 §3.1 asks for a
		// bare challenge then.
		return "", unauthorized(challenge, "the request needs an access token: Authorization: Bearer <token>")
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", invalidToken("the bearer token is empty")
	}
	return token, nil
}

// invalidToken is the 401 for a token that was sent but refused. desc goes
// into a quoted header parameter, so it must hold no quote or backslash;
// every caller passes a constant.
func invalidToken(desc string) *httpx.Problem {
	return unauthorized(challenge+`, error="invalid_token", error_description="`+desc+`"`, desc)
}

func unauthorized(wwwAuthenticate, detail string) *httpx.Problem {
	p := httpx.NewProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized", detail)
	p.Header = http.Header{"Www-Authenticate": {wwwAuthenticate}}
	return p
}

// refuse answers err from a Verify: 401 naming why a token was refused
// (logged at level), or 503 with Retry-After while issuer, as the answer
// names it, cannot be reached.
func refuse(w http.ResponseWriter, r *http.Request, err error, level zerolog.Level, issuer string) {
	log := zerolog.Ctx(r.Context())
	var te *tokenError
	if errors.As(err, &te) {
		log.WithLevel(level).Err(err).Msg("auth: token refused")
		httpx.WriteProblem(w, r, invalidToken(te.desc))
		return
	}
	log.Warn().Err(err).Msg("auth: cannot verify tokens")
	p := httpx.Unavailable(issuer + " cannot be reached; retry shortly")
	p.Header = http.Header{"Retry-After": {"1"}}
	httpx.WriteProblem(w, r, p)
}
