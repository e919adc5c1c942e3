// Package plugin is mcpwatch's Grafana app plugin backend: resources for the
// app pages, a data source query handler for dashboards, a health check and
// incident actions proxied to the analyzer API.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/resource/httpadapter"
)

// ID is the plugin id (plugin.json).
const ID = "mcpwatch-mcpwatch-app"

// Make sure App implements the handlers Grafana calls.
var (
	_ backend.CallResourceHandler   = (*App)(nil)
	_ backend.QueryDataHandler      = (*App)(nil)
	_ backend.CheckHealthHandler    = (*App)(nil)
	_ instancemgmt.InstanceDisposer = (*App)(nil)
)

// App is one instance of the app (per org settings).
type App struct {
	backend.CallResourceHandler
	settings Settings
	store    *Store
	analyzer *Analyzer
	now      func() time.Time
	// routeList is every resource pattern (Routes).
	routeList []string
}

// NewApp is the app.InstanceFactoryFunc.
func NewApp(_ context.Context, s backend.AppInstanceSettings) (instancemgmt.Instance, error) {
	st, err := LoadSettings(s)
	if err != nil {
		return nil, err
	}
	return New(st)
}

// New builds an App from parsed settings.
func New(st Settings) (*App, error) {
	store, err := OpenStore(st)
	if err != nil {
		return nil, err
	}
	a := &App{settings: st, store: store, analyzer: NewAnalyzer(st.AnalyzerURL, st.AnalyzerToken), now: time.Now}
	a.CallResourceHandler = httpadapter.New(a.routes())
	return a, nil
}

// Routes lists the registered resource patterns ("METHOD /path").
func (a *App) Routes() []string { return append([]string(nil), a.routeList...) }

// Store exposes the query layer (dashboards test, benchmark).
func (a *App) Store() *Store { return a.store }

// Dispose closes the ClickHouse connection when settings change.
func (a *App) Dispose() { _ = a.store.Close() }

var requiredTables = []string{"events", "tool_definitions", "findings", "incidents", "actions", "calls_per_minute", "calls_sealed", "calls_sealed_totals", "calls_sealed_hourly", "calls_seal_state"}

// CheckHealth says exactly what is wrong: cannot connect, authentication,
// database missing, tables missing, analyzer API unreachable.
func (a *App) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fail := func(msg string) (*backend.CheckHealthResult, error) {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: msg}, nil
	}
	st := a.settings
	if err := a.store.conn.Ping(ctx); err != nil {
		return fail(describeCHError(st, err))
	}
	var n uint64
	if err := a.store.conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", st.Database).Scan(&n); err != nil {
		return fail(describeCHError(st, err))
	}
	if n == 0 {
		return fail(fmt.Sprintf("ClickHouse database %q does not exist on %s (run `analyzer migrate` or fix the database setting)", st.Database, st.ClickHouseAddress))
	}
	rows, err := a.store.conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND has(?, name)", st.Database, requiredTables)
	if err != nil {
		return fail(describeCHError(st, err))
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fail(describeCHError(st, err))
		}
		have[name] = true
	}
	rows.Close()
	var missing []string
	for _, t := range requiredTables {
		if !have[t] {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fail(fmt.Sprintf("ClickHouse database %q is missing tables: %s (run `analyzer migrate`)", st.Database, strings.Join(missing, ", ")))
	}
	msg := fmt.Sprintf("ClickHouse %s database %q: OK", st.ClickHouseAddress, st.Database)
	if st.AnalyzerURL == "" {
		return &backend.CheckHealthResult{Status: backend.HealthStatusOk, Message: msg + "; analyzer API URL not set, incident actions are disabled"}, nil
	}
	if err := a.analyzer.Health(ctx); err != nil {
		return fail(msg + "; " + err.Error())
	}
	return &backend.CheckHealthResult{Status: backend.HealthStatusOk, Message: msg + "; analyzer API " + st.AnalyzerURL + ": OK"}, nil
}

// describeCHError turns a driver error into what the operator must fix.
func describeCHError(st Settings, err error) string {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case 192, 193, 194, 516: // UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTHENTICATION_FAILED
			return fmt.Sprintf("ClickHouse authentication failed for user %q on %s: check user and password (code %d)", st.Username, st.ClickHouseAddress, ex.Code)
		case 81:
			return fmt.Sprintf("ClickHouse database %q does not exist on %s", st.Database, st.ClickHouseAddress)
		case 497:
			return fmt.Sprintf("ClickHouse user %q lacks permissions on %s: %s", st.Username, st.ClickHouseAddress, ex.Message)
		}
		return fmt.Sprintf("ClickHouse error on %s: %s (code %d)", st.ClickHouseAddress, ex.Message, ex.Code)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("cannot connect to ClickHouse at %s (native protocol): %v", st.ClickHouseAddress, err)
	}
	return fmt.Sprintf("cannot query ClickHouse at %s: %v", st.ClickHouseAddress, err)
}

// role helpers -------------------------------------------------------------

// canAct reports whether the Grafana user may change incidents.
func canAct(u *backend.User) bool {
	if u == nil {
		return false
	}
	return u.Role == "Editor" || u.Role == "Admin"
}

func userLogin(u *backend.User) string {
	if u == nil {
		return ""
	}
	if u.Login != "" {
		return u.Login
	}
	return u.Email
}

func httpUser(r *http.Request) *backend.User { return httpadapter.UserFromContext(r.Context()) }
