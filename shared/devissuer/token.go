package devissuer

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// maxFormBytes bounds a token request; real ones are a few hundred bytes.
const maxFormBytes = 16 << 10

// oauthError is the error body of RFC 6749 §5.2, with Keycloak's wording so
// scripts written against the dev issuer behave the same against Keycloak.
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

var (
	errInvalidClient   = &oauthError{http.StatusUnauthorized, "invalid_client", "Invalid client or Invalid client credentials"}
	errBadCredentials  = &oauthError{http.StatusUnauthorized, "invalid_grant", "Invalid user credentials"}
	errAccountDisabled = &oauthError{http.StatusBadRequest, "invalid_grant", "Account disabled"}
	errNotSetUp        = &oauthError{http.StatusBadRequest, "invalid_grant", "Account is not fully set up"}
	errNoGrantType     = &oauthError{http.StatusBadRequest, "invalid_request", "Missing form parameter: grant_type"}
	errUnsupported     = &oauthError{http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type"}
	errNoDirectAccess  = &oauthError{http.StatusBadRequest, "unauthorized_client", "Client not allowed for direct access grants"}
	errNoServiceAcct   = &oauthError{http.StatusUnauthorized, "unauthorized_client", "Client not enabled to retrieve service account"}
	errPublicClientSA  = &oauthError{http.StatusBadRequest, "unauthorized_client", "Public client not allowed to retrieve service account"}
	errBadForm         = &oauthError{http.StatusBadRequest, "invalid_request", "Malformed form body"}
)

// tokenResponse is Keycloak's reply, less the refresh and ID tokens this
// issuer does not issue.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	TokenType        string `json:"token_type"`
	NotBeforePolicy  int    `json:"not-before-policy"`
	SessionState     string `json:"session_state,omitempty"`
	Scope            string `json:"scope"`
}

func (iss *Issuer) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, errBadForm)
		return
	}
	grant := r.PostForm.Get("grant_type")
	if grant == "" {
		writeOAuthError(w, errNoGrantType)
		return
	}
	client, oerr := iss.authenticateClient(r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	var (
		claims map[string]any
		resp   tokenResponse
	)
	switch grant {
	case "password":
		claims, resp, oerr = iss.passwordGrant(r, client)
	case "client_credentials":
		claims, resp, oerr = iss.clientCredentialsGrant(client)
	default:
		oerr = errUnsupported
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	tok, err := iss.Sign(claims)
	if err != nil {
		writeOAuthError(w, &oauthError{http.StatusInternalServerError, "server_error", "Could not sign the token"})
		return
	}
	resp.AccessToken = tok
	resp.TokenType = "Bearer"
	resp.ExpiresIn = iss.realm.lifespan()
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// authenticateClient finds the client and, for a confidential one, checks
// its secret from client_secret_basic or client_secret_post.
func (iss *Issuer) authenticateClient(r *http.Request) (*Client, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, ok := iss.realm.client(id)
	if !ok || !c.enabled() || c.BearerOnly {
		return nil, errInvalidClient
	}
	if !c.PublicClient && subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return nil, errInvalidClient
	}
	return c, nil
}

func (iss *Issuer) passwordGrant(r *http.Request, c *Client) (map[string]any, tokenResponse, *oauthError) {
	if !c.DirectAccessGrantsEnabled {
		return nil, tokenResponse{}, errNoDirectAccess
	}
	u, ok := iss.realm.user(r.PostForm.Get("username"))
	if !ok {
		return nil, tokenResponse{}, errBadCredentials
	}
	cred, ok := u.password()
	given := r.PostForm.Get("password")
	if !ok || given == "" || subtle.ConstantTimeCompare([]byte(given), []byte(cred.Value)) != 1 {
		return nil, tokenResponse{}, errBadCredentials
	}
	// Keycloak checks the password before it tells whether the account is
	// usable, so a wrong password never reveals that the account exists.
	if !u.Enabled {
		return nil, tokenResponse{}, errAccountDisabled
	}
	if cred.Temporary {
		return nil, tokenResponse{}, errNotSetUp
	}
	scope := scopeFor(r.PostForm.Get("scope"))
	session := uuid.NewString()
	claims := iss.baseClaims(c, u.ID, scope)
	claims["sid"] = session
	claims["preferred_username"] = strings.ToLower(u.Username)
	claims["email_verified"] = u.EmailVerified
	if u.Email != "" {
		claims["email"] = u.Email
	}
	if name := strings.TrimSpace(u.FirstName + " " + u.LastName); name != "" {
		claims["name"] = name
	}
	if u.FirstName != "" {
		claims["given_name"] = u.FirstName
	}
	if u.LastName != "" {
		claims["family_name"] = u.LastName
	}
	roleClients := roleClaims(claims, c, u)
	claims["aud"] = audience(c, roleClients)
	return claims, tokenResponse{SessionState: session, Scope: scope}, nil
}

// roleClaims puts u's realm roles, groups (as c's group membership mapper
// names them) and client roles into claims, as Keycloak does for a user
// and for a client's service-account user alike, and returns the other
// clients u holds roles of (for aud).
func roleClaims(claims map[string]any, c *Client, u *User) []string {
	if len(u.RealmRoles) > 0 {
		claims["realm_access"] = map[string]any{"roles": u.RealmRoles}
	}
	// Keycloak's group membership mapper: the user's groups, by full path
	// or by name, and always the claim (empty) once mapped.
	if name, full := c.groupsClaim(); name != "" {
		gs := make([]string, 0, len(u.Groups))
		for _, g := range u.Groups {
			if !full {
				g = g[strings.LastIndexByte(g, '/')+1:]
			}
			gs = append(gs, g)
		}
		claims[name] = gs
	}
	// Keycloak's "audience resolve" mapper adds every other client the user
	// holds roles of to aud.
	var roleClients []string
	if len(u.ClientRoles) > 0 {
		access := map[string]any{}
		for client, roles := range u.ClientRoles {
			if len(roles) == 0 {
				continue
			}
			access[client] = map[string]any{"roles": roles}
			if client != c.ClientID {
				roleClients = append(roleClients, client)
			}
		}
		slices.Sort(roleClients)
		claims["resource_access"] = access
	}
	return roleClients
}

// clientCredentialsGrant issues a token to the client's service account. Its
// subject is stable per issuer and client, as Keycloak's service-account user
// id is stable once created.
func (iss *Issuer) clientCredentialsGrant(c *Client) (map[string]any, tokenResponse, *oauthError) {
	if c.PublicClient {
		return nil, tokenResponse{}, errPublicClientSA
	}
	if !c.ServiceAccountsEnabled {
		return nil, tokenResponse{}, errNoServiceAcct
	}
	scope := scopeFor("")
	sub := uuid.NewSHA1(uuid.NameSpaceURL, []byte(iss.url+"#service-account-"+c.ClientID)).String()
	// The realm export may hold the service-account user (its
	// serviceAccountClientId names the client), with its id, roles and
	// groups: then the token carries them, as Keycloak's does.
	u, ok := iss.realm.serviceAccount(c.ClientID)
	if ok {
		sub = u.ID
	}
	claims := iss.baseClaims(c, sub, scope)
	claims["preferred_username"] = "service-account-" + c.ClientID
	claims["client_id"] = c.ClientID
	claims["email_verified"] = false
	var roleClients []string
	if ok {
		roleClients = roleClaims(claims, c, u)
	}
	claims["aud"] = audience(c, roleClients)
	return claims, tokenResponse{Scope: scope}, nil
}

func (iss *Issuer) baseClaims(c *Client, sub, scope string) map[string]any {
	now := iss.now().Unix()
	return map[string]any{
		"iss":   iss.url,
		"sub":   sub,
		"azp":   c.ClientID,
		"typ":   "Bearer",
		"iat":   now,
		"exp":   now + int64(iss.realm.lifespan()),
		"jti":   uuid.NewString(),
		"acr":   "1",
		"scope": scope,
	}
}

// audience is what Keycloak puts in aud: the audience mappers' clients, the
// clients the user holds roles of, and "account" (the default roles give every
// user account-management roles). A single audience is a string, as
// Keycloak writes it.
func audience(c *Client, roleClients []string) any {
	var aud []string
	for _, a := range append(append(c.audiences(), roleClients...), "account") {
		if !slices.Contains(aud, a) {
			aud = append(aud, a)
		}
	}
	if len(aud) == 1 {
		return aud[0]
	}
	return aud
}

// scopeFor mirrors Keycloak's default client scopes: profile and email are
// always granted, openid only when asked for.
func scopeFor(requested string) string {
	if slices.Contains(strings.Fields(requested), "openid") {
		return "openid profile email"
	}
	return "profile email"
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	writeJSON(w, e.status, e)
}
