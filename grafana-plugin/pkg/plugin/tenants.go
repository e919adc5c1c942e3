package plugin

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/resource/httpadapter"
)

// AllTenants in a TenantAccess list grants every tenant.
const AllTenants = "*"

// TenantAccess maps Grafana users to the mcpwatch tenants they may read
// (jsonData.tenantAccess). Grafana hands a plugin backend the org id and
// the user's login, email and org role, but not the user's teams
// (backend.PluginContext, backend.User), so the mapping is by org, org
// role and login. A user sees the union of Default and every entry that
// matches them; "*" is every tenant. With no tenantAccess at all, every
// user sees every tenant; with one, a user nothing matches sees none.
type TenantAccess struct {
	// Default tenants of every user of the app instance.
	Default []string `json:"default,omitempty"`
	// Orgs maps a Grafana org id ("1") to tenants.
	Orgs map[string][]string `json:"orgs,omitempty"`
	// Roles maps an org role (Viewer, Editor, Admin) to tenants.
	Roles map[string][]string `json:"roles,omitempty"`
	// Users maps a login (else email) to tenants.
	Users map[string][]string `json:"users,omitempty"`
}

// Validate reports empty tenant names and bad org ids or roles.
func (t *TenantAccess) Validate() error {
	if t == nil {
		return nil
	}
	var bad []string
	check := func(where string, ts []string) {
		for _, tn := range ts {
			if tn == "" || strings.TrimSpace(tn) != tn {
				bad = append(bad, fmt.Sprintf("%s: tenant %q is empty or has surrounding spaces", where, tn))
			}
		}
	}
	check("default", t.Default)
	for org, ts := range t.Orgs {
		if _, err := strconv.ParseInt(org, 10, 64); err != nil {
			bad = append(bad, fmt.Sprintf("orgs: %q is not an org id", org))
		}
		check("orgs."+org, ts)
	}
	for role, ts := range t.Roles {
		if role != "Viewer" && role != "Editor" && role != "Admin" {
			bad = append(bad, fmt.Sprintf("roles: %q is not Viewer, Editor or Admin", role))
		}
		check("roles."+role, ts)
	}
	for user, ts := range t.Users {
		check("users."+user, ts)
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("invalid tenantAccess: %s", strings.Join(bad, "; "))
	}
	return nil
}

// Scope is the tenants a user of org may read: nil = every tenant, else
// the sorted list (empty = none).
func (t *TenantAccess) Scope(org int64, u *backend.User) []string {
	if t == nil {
		return nil
	}
	var got []string
	got = append(got, t.Default...)
	got = append(got, t.Orgs[strconv.FormatInt(org, 10)]...)
	if u != nil {
		got = append(got, t.Roles[u.Role]...)
		if login := userLogin(u); login != "" {
			got = append(got, t.Users[login]...)
		}
	}
	if slices.Contains(got, AllTenants) {
		return nil
	}
	sort.Strings(got)
	return append([]string{}, slices.Compact(got)...)
}

// allows reports whether scope (nil = all) includes tenant.
func allows(scope []string, tenant string) bool {
	return scope == nil || slices.Contains(scope, tenant)
}

type scopeKey struct{}

// withScope answers every resource request within the caller's tenants:
// it stores the scope for the handlers and refuses (403) a tenant=
// parameter outside it.
func (a *App) withScope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pc := backend.PluginConfigFromContext(r.Context())
		u := httpadapter.UserFromContext(r.Context())
		if u == nil {
			u = pc.User
		}
		scope := a.settings.TenantAccess.Scope(pc.OrgID, u)
		if tn := r.URL.Query().Get("tenant"); tn != "" && !allows(scope, tn) {
			writeError(w, http.StatusForbidden, fmt.Errorf("user %q may not read tenant %q", userLogin(u), tn))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), scopeKey{}, scope)))
	})
}

// scopeOf is the request's tenant scope (set by withScope; nil = all).
func scopeOf(ctx context.Context) []string {
	s, _ := ctx.Value(scopeKey{}).([]string)
	return s
}
