// Package devissuer is a Keycloak-shaped OpenID Connect issuer for local
// development and tests: it serves discovery, a JWKS and a token endpoint for
// the realm export in knative/keycloak, so the functions verify real RS256
// tokens without a Keycloak running. It is compiled only into the dev runner
// and test helpers; production always talks to Keycloak.
package devissuer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Realm is the part of a Keycloak realm export the issuer understands. The
// field names are Keycloak's, so the same file imports into Keycloak.
type Realm struct {
	Realm               string `json:"realm"`
	Enabled             bool   `json:"enabled"`
	AccessTokenLifespan int    `json:"accessTokenLifespan"` // seconds; 0 means Keycloak's default, 300
	Roles               struct {
		Realm []RoleRep `json:"realm"`
	} `json:"roles"`
	Groups  []Group  `json:"groups"`
	Clients []Client `json:"clients"`
	Users   []User   `json:"users"`
}

// Group is a realm group and its subgroups; a user names one by its full
// path ("/projects/web/member").
type Group struct {
	Name      string  `json:"name"`
	SubGroups []Group `json:"subGroups"`
}

// paths adds the full path of g and its subgroups, under parent, to out.
func (g Group) paths(parent string, out map[string]bool) {
	p := parent + "/" + g.Name
	out[p] = true
	for _, s := range g.SubGroups {
		s.paths(p, out)
	}
}

// RoleRep is a role definition.
type RoleRep struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Client is an OAuth client of the realm.
type Client struct {
	ClientID                  string           `json:"clientId"`
	Enabled                   *bool            `json:"enabled"` // Keycloak treats a missing value as enabled
	PublicClient              bool             `json:"publicClient"`
	BearerOnly                bool             `json:"bearerOnly"`
	Secret                    string           `json:"secret"`
	DirectAccessGrantsEnabled bool             `json:"directAccessGrantsEnabled"`
	ServiceAccountsEnabled    bool             `json:"serviceAccountsEnabled"`
	ProtocolMappers           []ProtocolMapper `json:"protocolMappers"`
}

// ProtocolMapper adds claims to tokens; oidc-audience-mapper and
// oidc-group-membership-mapper are the ones honoured here.
type ProtocolMapper struct {
	Name           string            `json:"name"`
	Protocol       string            `json:"protocol"`
	ProtocolMapper string            `json:"protocolMapper"`
	Config         map[string]string `json:"config"`
}

// User is a realm user with its credentials and role mappings.
type User struct {
	ID            string              `json:"id"`
	Username      string              `json:"username"`
	Email         string              `json:"email"`
	EmailVerified bool                `json:"emailVerified"`
	FirstName     string              `json:"firstName"`
	LastName      string              `json:"lastName"`
	Enabled       bool                `json:"enabled"` // Keycloak imports a user without it as disabled
	Credentials   []Credential        `json:"credentials"`
	RealmRoles    []string            `json:"realmRoles"`
	Groups        []string            `json:"groups"` // full paths
	ClientRoles   map[string][]string `json:"clientRoles"`
	// ServiceAccountClientID marks the service-account user of a client
	// (Keycloak's export names it so): the roles and groups its
	// client-credentials tokens carry. It has no password.
	ServiceAccountClientID string `json:"serviceAccountClientId"`
}

// Credential is a user credential; Keycloak hashes a plain "value" on import.
type Credential struct {
	Type      string `json:"type"`
	Value     string `json:"value"`
	Temporary bool   `json:"temporary"`
}

const defaultAccessTokenLifespan = 300

// LoadRealm reads and checks a realm export.
func LoadRealm(path string) (*Realm, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devissuer: %w", err)
	}
	var r Realm
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("devissuer: %s: %w", path, err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("devissuer: %s: %w", path, err)
	}
	return &r, nil
}

// Validate reports the mistakes that would make Keycloak refuse the import or
// make the issuer behave differently from Keycloak: duplicate names and ids,
// role mappings to roles the realm does not define.
func (r *Realm) Validate() error {
	var errs []error
	if r.Realm == "" {
		errs = append(errs, errors.New("realm name is empty"))
	}
	if r.AccessTokenLifespan < 0 {
		errs = append(errs, errors.New("accessTokenLifespan is negative"))
	}
	roles := map[string]bool{}
	for _, role := range r.Roles.Realm {
		if roles[role.Name] {
			errs = append(errs, fmt.Errorf("realm role %q defined twice", role.Name))
		}
		roles[role.Name] = true
	}
	clients := map[string]bool{}
	for _, c := range r.Clients {
		if c.ClientID == "" {
			errs = append(errs, errors.New("a client has no clientId"))
		}
		if clients[c.ClientID] {
			errs = append(errs, fmt.Errorf("client %q defined twice", c.ClientID))
		}
		clients[c.ClientID] = true
		if !c.PublicClient && !c.BearerOnly && c.Secret == "" {
			errs = append(errs, fmt.Errorf("confidential client %q has no secret", c.ClientID))
		}
	}
	for _, c := range r.Clients {
		for _, aud := range c.audiences() {
			if !clients[aud] {
				errs = append(errs, fmt.Errorf("client %q: audience mapper names unknown client %q", c.ClientID, aud))
			}
		}
	}
	groups := map[string]bool{}
	for _, g := range r.Groups {
		g.paths("", groups)
	}
	ids, names := map[string]bool{}, map[string]bool{}
	for _, u := range r.Users {
		name := strings.ToLower(u.Username)
		switch {
		case u.ID == "" || name == "":
			errs = append(errs, fmt.Errorf("user %q needs both id and username", u.Username))
		case ids[u.ID]:
			errs = append(errs, fmt.Errorf("user id %q used twice", u.ID))
		case names[name]:
			errs = append(errs, fmt.Errorf("username %q used twice", u.Username))
		}
		ids[u.ID], names[name] = true, true
		for _, role := range u.RealmRoles {
			if !roles[role] {
				errs = append(errs, fmt.Errorf("user %q: realm role %q is not defined", u.Username, role))
			}
		}
		for _, g := range u.Groups {
			if !groups[g] {
				errs = append(errs, fmt.Errorf("user %q: group %q is not defined (Keycloak names groups by full path)", u.Username, g))
			}
		}
		for client := range u.ClientRoles {
			if !clients[client] {
				errs = append(errs, fmt.Errorf("user %q: client roles for unknown client %q", u.Username, client))
			}
		}
	}
	return errors.Join(errs...)
}

func (r *Realm) lifespan() int {
	if r.AccessTokenLifespan == 0 {
		return defaultAccessTokenLifespan
	}
	return r.AccessTokenLifespan
}

func (r *Realm) client(id string) (*Client, bool) {
	for i := range r.Clients {
		if r.Clients[i].ClientID == id {
			return &r.Clients[i], true
		}
	}
	return nil, false
}

// serviceAccount finds the service-account user of client id.
func (r *Realm) serviceAccount(clientID string) (*User, bool) {
	for i := range r.Users {
		if r.Users[i].ServiceAccountClientID == clientID {
			return &r.Users[i], true
		}
	}
	return nil, false
}

// user finds a user as Keycloak's login does: usernames are case-insensitive
// and an email address works too.
func (r *Realm) user(login string) (*User, bool) {
	for i := range r.Users {
		u := &r.Users[i]
		if strings.EqualFold(u.Username, login) || (u.Email != "" && strings.EqualFold(u.Email, login)) {
			return u, true
		}
	}
	return nil, false
}

func (c *Client) enabled() bool { return c.Enabled == nil || *c.Enabled }

// audiences lists the clients the client's audience mappers put into access
// tokens.
func (c *Client) audiences() []string {
	var auds []string
	for _, m := range c.ProtocolMappers {
		if m.ProtocolMapper != "oidc-audience-mapper" || m.Config["access.token.claim"] != "true" {
			continue
		}
		if a := m.Config["included.client.audience"]; a != "" {
			auds = append(auds, a)
		}
	}
	return auds
}

func (u *User) password() (Credential, bool) {
	for _, c := range u.Credentials {
		if c.Type == "password" {
			return c, true
		}
	}
	return Credential{}, false
}

// groupsClaim is the claim the client's group membership mapper puts into
// access tokens and whether it writes full paths; "" when it has none.
func (c *Client) groupsClaim() (name string, fullPath bool) {
	for _, m := range c.ProtocolMappers {
		if m.ProtocolMapper != "oidc-group-membership-mapper" || m.Config["access.token.claim"] != "true" {
			continue
		}
		name = m.Config["claim.name"]
		if name == "" {
			name = "groups"
		}
		return name, m.Config["full.path"] == "true"
	}
	return "", false
}
