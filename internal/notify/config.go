// Package notify routes incident changes to receivers (generic webhook,
// Alertmanager, Slack, PagerDuty) through a durable outbox: a message is
// written and fsynced to disk before its first delivery attempt, retried with
// exponential backoff and jitter, and every attempt is recorded in
// ClickHouse `actions`. Delivery is at least once; every request carries an
// idempotency key (Idempotency-Key header, PagerDuty dedup_key) so receivers
// can drop duplicates.
package notify

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Receiver types.
const (
	TypeWebhook      = "webhook"
	TypeAlertmanager = "alertmanager"
	TypeSlack        = "slack"
	TypePagerDuty    = "pagerduty"
)

// Secret is read at send time from an environment variable or a file
// (trailing newline trimmed); it is never stored in the outbox or logged.
type Secret struct {
	Env  string `yaml:"env" json:"env,omitempty"`
	File string `yaml:"file" json:"file,omitempty"`
}

// IsZero reports whether no source is configured.
func (s Secret) IsZero() bool { return s.Env == "" && s.File == "" }

// Value reads the secret.
func (s Secret) Value() (string, error) {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("cannot read secret: env %s is not set", s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("cannot read secret file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}

// ReceiverConfig is one destination.
type ReceiverConfig struct {
	Name string `yaml:"name"`
	// Type: webhook | alertmanager | slack | pagerduty.
	Type string `yaml:"type"`
	// URL: the webhook URL; Alertmanager's base URL (…/api/v2/alerts is
	// appended); the Slack incoming-webhook URL (or URLSecret, since Slack
	// webhook URLs are credentials); PagerDuty's Events v2 endpoint (default
	// https://events.pagerduty.com/v2/enqueue).
	URL       string `yaml:"url"`
	URLSecret Secret `yaml:"url_secret"`
	// Secret: the HMAC key of a webhook; the routing key of PagerDuty.
	Secret Secret `yaml:"secret"`
	// Headers are added to every request (e.g. Authorization for Alertmanager behind a proxy).
	Headers map[string]string `yaml:"headers"`
	// Timeout per attempt, default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// Route sends incidents that match to receivers. Empty match fields match all.
type Route struct {
	Name        string         `yaml:"name"`
	MinSeverity event.Severity `yaml:"min_severity"`
	Tags        []string       `yaml:"tags"` // any of
	Tenants     []string       `yaml:"tenants"`
	RuleIDs     []string       `yaml:"rule_ids"`
	Receivers   []string       `yaml:"receivers"`
	// RateLimit is the most notifications per minute this route sends
	// (resolutions are never limited); 0 = unlimited.
	RateLimit float64 `yaml:"rate_limit_per_minute"`
	// RepeatInterval: an incident that only gained findings is notified
	// again at most this often (default 4h). Opening, escalation, reopening
	// and resolution always notify.
	RepeatInterval time.Duration `yaml:"repeat_interval"`
	// Continue evaluates later routes after this one matched.
	Continue bool `yaml:"continue"`
}

// Links build the URLs put into messages.
type Links struct {
	// Incident is a URL template for a person, {incident_id} replaced, e.g.
	// https://grafana.example/a/mcpwatch-app/incidents/{incident_id}.
	Incident string `yaml:"incident"`
	// API is the analyzer API base URL, e.g. https://mcpwatch.example:8080.
	API string `yaml:"api"`
	// Runbook is a URL template for a rule's runbook, {rule_id} replaced.
	Runbook string `yaml:"runbook"`
}

// Config configures a Notifier.
type Config struct {
	// DataDir holds the outbox (pending/, done/, failed/). Required.
	DataDir   string           `yaml:"data_dir"`
	Receivers []ReceiverConfig `yaml:"receivers"`
	Routes    []Route          `yaml:"routes"`
	Links     Links            `yaml:"links"`
	// Retry: first backoff (default 1s), cap (default 5m), attempts before
	// a message moves to failed/ (default 15).
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
	MaxAttempts    int           `yaml:"max_attempts"`
	// Workers delivering in parallel (default 4).
	Workers int `yaml:"workers"`
	// AlertmanagerFiringTTL is the endsAt sent with a firing alert (now +
	// TTL, refreshed by every change); default 24h.
	AlertmanagerFiringTTL time.Duration `yaml:"alertmanager_firing_ttl"`
}

func (c Config) withDefaults() Config {
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 15
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.AlertmanagerFiringTTL <= 0 {
		c.AlertmanagerFiringTTL = 24 * time.Hour
	}
	for i := range c.Receivers {
		if c.Receivers[i].Timeout <= 0 {
			c.Receivers[i].Timeout = 10 * time.Second
		}
		if c.Receivers[i].Type == TypePagerDuty && c.Receivers[i].URL == "" {
			c.Receivers[i].URL = "https://events.pagerduty.com/v2/enqueue"
		}
	}
	for i := range c.Routes {
		if c.Routes[i].RepeatInterval <= 0 {
			c.Routes[i].RepeatInterval = 4 * time.Hour
		}
	}
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is required (the outbox lives there)"))
	}
	names := map[string]bool{}
	for i, r := range c.Receivers {
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("receivers[%d]: name is required", i))
		} else if names[r.Name] {
			errs = append(errs, fmt.Errorf("receivers[%d]: duplicate name %q", i, r.Name))
		}
		names[r.Name] = true
		if !slices.Contains([]string{TypeWebhook, TypeAlertmanager, TypeSlack, TypePagerDuty}, r.Type) {
			errs = append(errs, fmt.Errorf("receiver %q: type must be webhook, alertmanager, slack or pagerduty, not %q", r.Name, r.Type))
		}
		if r.URL == "" && (r.Type != TypeSlack || r.URLSecret.IsZero()) && r.Type != TypePagerDuty {
			errs = append(errs, fmt.Errorf("receiver %q: url is required", r.Name))
		}
		if r.URL != "" {
			if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("receiver %q: url must be an http(s) URL", r.Name))
			}
		}
		if r.Type == TypePagerDuty && r.Secret.IsZero() {
			errs = append(errs, fmt.Errorf("receiver %q: secret (the routing key) is required", r.Name))
		}
	}
	for i, rt := range c.Routes {
		if rt.MinSeverity != "" && !rt.MinSeverity.Valid() {
			errs = append(errs, fmt.Errorf("routes[%d]: min_severity %q is not a severity", i, rt.MinSeverity))
		}
		if len(rt.Receivers) == 0 {
			errs = append(errs, fmt.Errorf("routes[%d]: receivers is empty", i))
		}
		for _, n := range rt.Receivers {
			if !names[n] {
				errs = append(errs, fmt.Errorf("routes[%d]: unknown receiver %q", i, n))
			}
		}
		if rt.RateLimit < 0 {
			errs = append(errs, fmt.Errorf("routes[%d]: rate_limit_per_minute must be ≥ 0", i))
		}
	}
	return errors.Join(errs...)
}

// matches reports whether the route selects the incident.
func (rt Route) matches(tenant, rule string, sev event.Severity, tags []string) bool {
	if rt.MinSeverity != "" && sev.Rank() < rt.MinSeverity.Rank() {
		return false
	}
	if len(rt.Tenants) > 0 && !slices.Contains(rt.Tenants, tenant) {
		return false
	}
	if len(rt.RuleIDs) > 0 && !slices.Contains(rt.RuleIDs, rule) {
		return false
	}
	if len(rt.Tags) > 0 && !slices.ContainsFunc(rt.Tags, func(t string) bool { return slices.Contains(tags, t) }) {
		return false
	}
	return true
}
