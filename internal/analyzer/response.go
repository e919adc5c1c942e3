package analyzer

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/backtest"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/notify"
	"github.com/mcpwatch/mcpwatch/internal/playbook"
)

// ResponseConfig is the analyzer config section for incidents,
// notifications, playbooks and the API (YAML; docs/api.md,
// docs/notifications.md, docs/playbooks.md).
type ResponseConfig struct {
	// DataDir holds the notification outbox (outbox/). Must be on
	// persistent storage. (Playbook runs are in ClickHouse playbook_runs.)
	DataDir string `yaml:"data_dir"`
	// ReopenWithin: a finding this long after resolution reopens the incident (default 24h).
	ReopenWithin time.Duration `yaml:"reopen_within"`
	// PlaybooksDir holds playbook YAML files; "" = no playbooks.
	PlaybooksDir string        `yaml:"playbooks_dir"`
	Notify       notify.Config `yaml:"notify"`
	// Tokens for the API; each value from env or file.
	Tokens []TokenConfig `yaml:"api_tokens"`
}

// TokenConfig is an API token whose value is read from env or a file.
type TokenConfig struct {
	Name string   `yaml:"name"`
	Role api.Role `yaml:"role"`
	Env  string   `yaml:"env"`
	File string   `yaml:"file"`
	// Tenants the token may read and act on; absent = every tenant.
	Tenants []string `yaml:"tenants"`
	// ForwardActor marks a trusted forwarder (the Grafana plugin's token):
	// it may name the acting person in X-Mcpwatch-Actor. Default false:
	// the header is refused (403) and the actor is the token.
	ForwardActor bool `yaml:"forward_actor"`
}

// ResponderOptions are the runtime parts the analyzer supplies.
type ResponderOptions struct {
	Conn     driver.Conn // clickhouse-go native connection
	Database string
	// DedupWindow per rule id from the rule pack (nil = 1h for all).
	DedupWindow func(ruleID string) time.Duration
	// Pack, when set (e.g. engine.Pack), fills DedupWindow and Rules when
	// those are nil.
	Pack  func() *detect.Pack
	Rules func(ctx context.Context) (any, error)
	// Events, when set (the analyzer's *store.Store), serves backtests of
	// Pack's rules over the stored events in the API.
	Events  backtest.Source
	Ready   func(ctx context.Context) error
	Metrics http.Handler
	Logger  *slog.Logger
	// Registerer receives the incident, notification and playbook metrics
	// (e.g. the analyzer's registry); nil = not registered.
	Registerer prometheus.Registerer
}

// Responder is the respond role's parts wired together: Manager owns the
// incidents (the findings consumer feeds it), Handler serves the API; Run
// drives notifications, playbooks and suppression expiry.
type Responder struct {
	Manager  *incident.Manager
	Store    *incident.CHStore
	Notifier *notify.Notifier
	Runner   *playbook.Runner
	Handler  *api.Server
	// Router makes the API's incident changes and playbook decisions
	// through their owner (analyzer Options.Router); Runner is Options.Playbooks.
	Router *IncidentRouter
}

// NewResponder loads state and wires the respond role.
func NewResponder(ctx context.Context, cfg ResponseConfig, o ResponderOptions) (*Responder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot build incident response: %w", err)
	}
	if o.Pack != nil {
		if o.DedupWindow == nil {
			o.DedupWindow = DedupFromPack(o.Pack)
		}
		if o.Rules == nil {
			o.Rules = api.RulesFromPack(o.Pack)
		}
	}
	mgr, store, err := NewIncidentManager(ctx, o, cfg.ReopenWithin)
	if err != nil {
		return nil, err
	}
	ncfg := cfg.Notify
	if ncfg.DataDir == "" {
		ncfg.DataDir = filepath.Join(cfg.DataDir, "outbox")
	}
	n, err := notify.New(ncfg, notify.Options{Recorder: mgr, Logger: o.Logger, Registerer: o.Registerer})
	if err != nil {
		return nil, err
	}
	var pbs []*playbook.Playbook
	if cfg.PlaybooksDir != "" {
		if pbs, err = playbook.LoadDir(cfg.PlaybooksDir); err != nil {
			return nil, err
		}
	}
	runs, err := playbook.NewCHStore(o.Conn, o.Database)
	if err != nil {
		return nil, err
	}
	// Runs an earlier release kept in files: into the store, once.
	if n, err := playbook.ImportFiles(ctx, filepath.Join(cfg.DataDir, "playbooks"), runs, mgr); err != nil {
		o.logger().Warn("playbook run files not all imported; retried at the next start", "imported", n, "err", err)
	} else if n > 0 {
		o.logger().Info("playbook run files imported into ClickHouse", "runs", n)
	}
	runner, err := playbook.New(playbook.Config{Playbooks: pbs, Store: runs,
		Notifier: n, Incidents: mgr, Recorder: mgr, Logger: o.Logger, Registerer: o.Registerer})
	if err != nil {
		return nil, err
	}
	var tokens []api.Token
	for i, tc := range cfg.Tokens {
		v, err := notify.Secret{Env: tc.Env, File: tc.File}.Value()
		if err != nil {
			return nil, fmt.Errorf("cannot read api_tokens[%d] (%s): %w", i, tc.Name, err)
		}
		tokens = append(tokens, api.Token{Name: tc.Name, Role: tc.Role, Value: v, Tenants: tc.Tenants, ForwardsActor: tc.ForwardActor})
	}
	router := &IncidentRouter{Manager: mgr, Store: store, Runner: runner, RunStore: runs}
	srv, err := api.New(api.Config{Tokens: tokens, Incidents: router, Queries: store, Playbooks: router, Rules: o.Rules, Alerts: router,
		Backtest: api.BacktestConfig{Source: o.Events, Pack: o.Pack},
		Ready:    o.Ready, Metrics: o.Metrics, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	mgr.Subscribe(n)
	mgr.Subscribe(runner)
	return &Responder{Manager: mgr, Store: store, Notifier: n, Runner: runner, Handler: srv, Router: router}, nil
}

func (o ResponderOptions) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// NewIncidentManager is the respond role's incident owner on ClickHouse.
// It does not store findings: the respond loop stores them once, after the
// manager has set their incident ids.
func NewIncidentManager(ctx context.Context, o ResponderOptions, reopenWithin time.Duration) (*incident.Manager, *incident.CHStore, error) {
	if o.Pack != nil && o.DedupWindow == nil {
		o.DedupWindow = DedupFromPack(o.Pack)
	}
	store, err := incident.NewCHStore(o.Conn, o.Database)
	if err != nil {
		return nil, nil, err
	}
	mgr, err := incident.NewManager(ctx, incident.Config{Store: store, DedupWindow: o.DedupWindow,
		ReopenWithin: reopenWithin, Logger: o.Logger, Registerer: o.Registerer})
	return mgr, store, err
}

// Run delivers notifications, drives playbooks and expires suppressions
// until ctx ends; it returns when all three have stopped.
func (s *Responder) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range []func(context.Context) error{s.Notifier.Run, s.Runner.Run,
		func(ctx context.Context) error { return s.Manager.Run(ctx, 30*time.Second) }} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f(ctx) }()
	}
	wg.Wait()
	return nil
}

// DedupFromPack returns each rule's dedup window from the current pack
// (0 for unknown rules: the manager's default).
func DedupFromPack(pack func() *detect.Pack) func(string) time.Duration {
	return func(id string) time.Duration {
		if p := pack(); p != nil {
			if r := p.Rule(id); r != nil {
				return r.DedupWindow()
			}
		}
		return 0
	}
}
