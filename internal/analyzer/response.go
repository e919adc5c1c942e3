package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/notify"
	"github.com/mcpwatch/mcpwatch/internal/playbook"
)

// ResponseConfig is the analyzer config section for incidents,
// notifications, playbooks and the API (YAML; docs/api.md,
// docs/notifications.md, docs/playbooks.md).
type ResponseConfig struct {
	// DataDir holds the notification outbox (outbox/) and playbook run
	// state (playbooks/). Must be on persistent storage.
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
	Name string `yaml:"name"`
	Role Role   `yaml:"role"`
	Env  string `yaml:"env"`
	File string `yaml:"file"`
}

// StackOptions are the runtime parts the analyzer supplies.
type StackOptions struct {
	Conn     driver.Conn // clickhouse-go native connection
	Database string
	// DedupWindow per rule id from the rule pack (nil = 1h for all).
	DedupWindow func(ruleID string) time.Duration
	// SkipFindingInsert stops the incident manager from storing findings
	// again with their incident_id. Leave it false with internal/analyzer,
	// which stores findings before the sink sees them (so their first copy
	// has no incident_id); set it only when the caller inserts findings
	// after HandleFindings.
	SkipFindingInsert bool
	// Pack, when set (e.g. engine.Pack), fills DedupWindow and Rules when
	// those are nil.
	Pack    func() *detect.Pack
	Rules   func(ctx context.Context) (any, error)
	Ready   func(ctx context.Context) error
	Metrics http.Handler
	Logger  *slog.Logger
	// Registerer receives the incident, notification and playbook metrics
	// (e.g. the analyzer's registry); nil = not registered.
	Registerer prometheus.Registerer
}

// Stack is everything wired together: Manager is the analyzer's
// FindingSink, Handler serves the API; Run drives notifications, playbooks
// and suppression expiry.
type Stack struct {
	Manager  *incident.Manager
	Store    *incident.CHStore
	Notifier *notify.Notifier
	Runner   *playbook.Runner
	Handler  *Server
}

// NewStack loads state and builds the stack.
func NewStack(ctx context.Context, cfg ResponseConfig, o StackOptions) (*Stack, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("cannot build incident response: data_dir is required")
	}
	if o.Pack != nil {
		if o.DedupWindow == nil {
			o.DedupWindow = DedupFromPack(o.Pack)
		}
		if o.Rules == nil {
			o.Rules = RulesFromPack(o.Pack)
		}
	}
	store, err := incident.NewCHStore(o.Conn, o.Database)
	if err != nil {
		return nil, err
	}
	mgr, err := incident.NewManager(ctx, incident.Config{Store: store, DedupWindow: o.DedupWindow,
		ReopenWithin: cfg.ReopenWithin, InsertFindings: !o.SkipFindingInsert, Logger: o.Logger, Registerer: o.Registerer})
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
	runner, err := playbook.New(playbook.Config{Playbooks: pbs, DataDir: filepath.Join(cfg.DataDir, "playbooks"),
		Notifier: n, Incidents: mgr, Recorder: mgr, Logger: o.Logger, Registerer: o.Registerer})
	if err != nil {
		return nil, err
	}
	var tokens []Token
	for i, tc := range cfg.Tokens {
		v, err := notify.Secret{Env: tc.Env, File: tc.File}.Value()
		if err != nil {
			return nil, fmt.Errorf("cannot read api_tokens[%d] (%s): %w", i, tc.Name, err)
		}
		tokens = append(tokens, Token{Name: tc.Name, Role: tc.Role, Value: v})
	}
	srv, err := New(Config{Tokens: tokens, Incidents: mgr, Queries: store, Playbooks: runner, Rules: o.Rules,
		Ready: o.Ready, Metrics: o.Metrics, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	mgr.Subscribe(n)
	mgr.Subscribe(runner)
	return &Stack{Manager: mgr, Store: store, Notifier: n, Runner: runner, Handler: srv}, nil
}

// Run delivers notifications, drives playbooks and expires suppressions
// until ctx ends; it returns when all three have stopped.
func (s *Stack) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range []func(context.Context) error{s.Notifier.Run, s.Runner.Run,
		func(ctx context.Context) error { return s.Manager.Run(ctx, 30*time.Second) }} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f(ctx) }()
	}
	wg.Wait()
	return nil
}
