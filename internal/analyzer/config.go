package analyzer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/calljoin"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// Defaults for Config; each is documented on its field.
const (
	DefaultGroup           = "mcpwatch-analyzer"
	DefaultBatchRows       = 50000
	DefaultBatchBytes      = 32 << 20
	DefaultBatchInterval   = 250 * time.Millisecond
	DefaultRetryInitial    = 200 * time.Millisecond
	DefaultRetryMax        = 5 * time.Second
	DefaultProbeInterval   = time.Second
	DefaultStallTimeout    = 15 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	DefaultAdminAddr       = "127.0.0.1:9464"
)

// Config tunes the consume loop.
type Config struct {
	// Group is the ingest role's Kafka consumer group (events topic).
	// Default "mcpwatch-analyzer".
	Group string `yaml:"group"`
	// RespondGroup and DetectGroup are the respond and detect roles'
	// consumer groups. Defaults: Group + "-respond", Group + "-detect".
	RespondGroup string `yaml:"respond_group"`
	DetectGroup  string `yaml:"detect_group"`
	// Roles this process runs: ingest, detect, respond. Default all three
	// (one process is a whole pipeline); each scales by its topic's
	// partitions (docs/analyzer.md).
	Roles []string `yaml:"roles"`
	// InstanceID, when set, makes this process a static member of every
	// group (KIP-345; "<instance_id>-<role>"): a restart within the
	// session timeout keeps its partitions without a rebalance. Use a
	// stable per-replica name, e.g. the StatefulSet pod name. Default "".
	InstanceID string `yaml:"instance_id"`
	// SessionTimeout is how long a group waits for a member that stopped
	// heartbeating (kill -9, a network cut) before it moves its partitions.
	// Default 45s (Kafka's). Lower it for faster failover; with static
	// membership keep it above a pod's restart time.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// LagInterval is how often the roles' consumer lag is read from the
	// brokers (mcpwatch_analyzer_group_lag). Default 15s.
	LagInterval time.Duration `yaml:"lag_interval"`
	// BatchRows bounds a batch in events (not Kafka records: a record
	// carries many events). A batch never holds more, except a single
	// record that alone exceeds it (a batch of its own). Default 50000.
	BatchRows int `yaml:"batch_rows"`
	// BatchBytes bounds a batch in bytes of encoded Kafka record values,
	// with the same exception. The analyzer holds at most two batches (one
	// being written, one being filled). Default 32 MiB.
	BatchBytes int `yaml:"batch_bytes"`
	// BatchInterval flushes a non-empty batch this long after its first
	// record arrived, full or not. Default 250ms: it bounds how long an
	// event waits before detection and insert (alert latency), at the cost
	// of at most 4 inserts per second per table at moderate rates.
	BatchInterval time.Duration `yaml:"batch_interval"`
	// RetryInitial and RetryMax bound the exponential backoff (with
	// jitter: each wait is drawn from [d/2, 3d/2), capped at RetryMax)
	// between attempts while ClickHouse (or Kafka) is failing; the loop
	// consumes nothing meanwhile. Defaults 200ms and 5s.
	RetryInitial time.Duration `yaml:"retry_initial"`
	RetryMax     time.Duration `yaml:"retry_max"`
	// ProbeInterval is how often ClickHouse is pinged while a failed write
	// waits for its retry: the first answer ends the wait, so recovery
	// starts within about one interval of the server's return. Default 1s.
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// StallTimeout: a ClickHouse write pending longer than this makes the
	// analyzer not ready ("storage stalled") and sets
	// mcpwatch_analyzer_storage_stalled to 1, before the write's own
	// deadline (clickhouse.insert_timeout) fails it. Default 15s.
	StallTimeout time.Duration `yaml:"stall_timeout"`
	// ShutdownTimeout bounds the final flush on shutdown. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// AdminAddr serves /healthz, /readyz, /metrics and the API under /api/.
	// Default "127.0.0.1:9464"; "-" disables it.
	AdminAddr string `yaml:"admin_addr"`
	// Retention of each table, in days.
	Retention RetentionConfig `yaml:"retention"`

	// CallJoinWait is how long the ingest role's call join holds a half
	// of a call (a server or gateway observation that names no agent, or a
	// client observation without server of an agent whose calls paired
	// recently) for its peer before storing it as it is (docs/analyzer.md,
	// "Call join"). Default 10s; 0 disables the join (nothing is diverted).
	CallJoinWait *time.Duration `yaml:"call_join_wait"`
	// CallJoinGroup is the join loop's consumer group (calls topic).
	// Default Group + "-join".
	CallJoinGroup string `yaml:"call_join_group"`
	// CallJoinMaxHeld bounds the observations the join holds per instance;
	// past it the oldest call is stored unpaired. Default 100000.
	CallJoinMaxHeld int `yaml:"call_join_max_held"`
	// CallJoinMaxRemembered bounds the calls whose identity the join
	// remembers after their release (for a late peer). Default 262144.
	CallJoinMaxRemembered int `yaml:"call_join_max_remembered"`
	// CallJoinPairMemory: how long an agent's last paired (its client
	// observations without server wait for their peers) or unpaired (they
	// do not) call decides; calljoin.Pairs. Default 1h.
	CallJoinPairMemory time.Duration `yaml:"call_join_pair_memory"`
}

// JoinEnabled reports whether the call join runs (CallJoinWait > 0).
func (c Config) JoinEnabled() bool { return c.CallJoinWait != nil && *c.CallJoinWait > 0 }

// maxCallJoinWait bounds call_join_wait: a held half is stored that much
// later than its peer.
const maxCallJoinWait = 10 * time.Minute

// RetentionConfig drops daily partitions older than N days per table. 0
// means the default; a negative value keeps the table forever.
type RetentionConfig struct {
	Events         int           `yaml:"events_days"`           // default 30
	CallsPerMinute int           `yaml:"calls_per_minute_days"` // default 30; also the sealed counts (calls_sealed*)
	Findings       int           `yaml:"findings_days"`         // default 365
	Incidents      int           `yaml:"incidents_days"`        // default 365 (monthly partitions)
	Actions        int           `yaml:"actions_days"`          // default 365
	Interval       time.Duration `yaml:"interval"`              // default 1h; first run at start
	Disabled       bool          `yaml:"disabled"`              // default false
}

// Days maps table → retention days. The sealed call counts derived from
// calls_per_minute (store.SealedCallTables) keep its retention, the
// per-event indexes of events (store.EventIndexTables) the events'.
func (r RetentionConfig) Days() map[string]int {
	m := map[string]int{
		"events": r.Events, "calls_per_minute": r.CallsPerMinute, "findings": r.Findings,
		"incidents": r.Incidents, "actions": r.Actions,
	}
	for _, t := range store.SealedCallTables() {
		m[t] = r.CallsPerMinute
	}
	for _, t := range store.EventIndexTables() {
		m[t] = r.Events
	}
	return m
}

// WithDefaults returns c with every unset field at its documented default.
func (c Config) WithDefaults() Config {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.RespondGroup == "" {
		c.RespondGroup = c.Group + "-respond"
	}
	if c.DetectGroup == "" {
		c.DetectGroup = c.Group + "-detect"
	}
	if c.CallJoinGroup == "" {
		c.CallJoinGroup = c.Group + "-join"
	}
	if c.CallJoinWait == nil {
		w := calljoin.DefaultWait
		c.CallJoinWait = &w
	}
	if c.CallJoinMaxHeld == 0 {
		c.CallJoinMaxHeld = calljoin.DefaultMaxHeld
	}
	if c.CallJoinMaxRemembered == 0 {
		c.CallJoinMaxRemembered = calljoin.DefaultMaxRemembered
	}
	if c.CallJoinPairMemory == 0 {
		c.CallJoinPairMemory = calljoin.DefaultPairMemory
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 45 * time.Second
	}
	if c.LagInterval == 0 {
		c.LagInterval = 15 * time.Second
	}
	if len(c.Roles) == 0 {
		c.Roles = append([]string(nil), AllRoles...)
	}
	if c.BatchRows == 0 {
		c.BatchRows = DefaultBatchRows
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.BatchInterval == 0 {
		c.BatchInterval = DefaultBatchInterval
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = DefaultRetryInitial
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.AdminAddr == "" {
		c.AdminAddr = DefaultAdminAddr
	}
	r := &c.Retention
	for _, p := range []struct {
		v   *int
		def int
	}{{&r.Events, 30}, {&r.CallsPerMinute, 30}, {&r.Findings, 365}, {&r.Incidents, 365}, {&r.Actions, 365}} {
		if *p.v == 0 {
			*p.v = p.def
		}
	}
	if r.Interval == 0 {
		r.Interval = time.Hour
	}
	return c
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.BatchRows < 1 {
		errs = append(errs, fmt.Errorf("analyzer.batch_rows: %d must be at least 1", c.BatchRows))
	}
	if c.BatchBytes < 1 {
		errs = append(errs, fmt.Errorf("analyzer.batch_bytes: %d must be at least 1", c.BatchBytes))
	}
	if c.ProbeInterval <= 0 {
		errs = append(errs, errors.New("analyzer.probe_interval: must be positive"))
	}
	if c.StallTimeout <= 0 {
		errs = append(errs, errors.New("analyzer.stall_timeout: must be positive"))
	}
	if c.BatchInterval <= 0 {
		errs = append(errs, errors.New("analyzer.batch_interval: must be positive"))
	}
	if c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial {
		errs = append(errs, errors.New("analyzer.retry_initial/retry_max: need 0 < retry_initial <= retry_max"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("analyzer.shutdown_timeout: must be positive"))
	}
	if c.Retention.Interval <= 0 {
		errs = append(errs, errors.New("analyzer.retention.interval: must be positive"))
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 30*time.Minute {
		errs = append(errs, fmt.Errorf("analyzer.session_timeout: %s must be between 6s and 30m (the brokers' group.min/max.session.timeout.ms defaults)", c.SessionTimeout))
	}
	if c.LagInterval <= 0 {
		errs = append(errs, errors.New("analyzer.lag_interval: must be positive"))
	}
	seen := map[string]bool{}
	for _, r := range c.Roles {
		if !slices.Contains(AllRoles, r) {
			errs = append(errs, fmt.Errorf("analyzer.roles: unknown role %q (want %s)", r, strings.Join(AllRoles, ", ")))
		} else if seen[r] {
			errs = append(errs, fmt.Errorf("analyzer.roles: %q listed twice", r))
		}
		seen[r] = true
	}
	if c.Group == c.RespondGroup || c.Group == c.DetectGroup || c.RespondGroup == c.DetectGroup {
		errs = append(errs, errors.New("analyzer.group/respond_group/detect_group: each role needs its own consumer group"))
	}
	if g := c.CallJoinGroup; g != "" && (g == c.Group || g == c.RespondGroup || g == c.DetectGroup) {
		errs = append(errs, fmt.Errorf("analyzer.call_join_group: %q is another role's consumer group", g))
	}
	if w := c.CallJoinWait; w != nil && (*w < 0 || *w > maxCallJoinWait) {
		errs = append(errs, fmt.Errorf("analyzer.call_join_wait: %s must be between 0 (off) and %s", *w, maxCallJoinWait))
	}
	if c.CallJoinMaxHeld < 0 {
		errs = append(errs, fmt.Errorf("analyzer.call_join_max_held: %d must be positive", c.CallJoinMaxHeld))
	}
	if c.CallJoinMaxRemembered < 0 || c.CallJoinMaxRemembered == 1 {
		errs = append(errs, fmt.Errorf("analyzer.call_join_max_remembered: %d must be at least 2", c.CallJoinMaxRemembered))
	}
	if c.CallJoinPairMemory < 0 {
		errs = append(errs, errors.New("analyzer.call_join_pair_memory: must not be negative"))
	}
	return errors.Join(errs...)
}

// The analyzer's roles (docs/architecture.md: one binary, each role scaled by its topic).
const (
	RoleIngest  = "ingest"
	RoleDetect  = "detect"
	RoleRespond = "respond"
)

// AllRoles is the default: every role in one process.
var AllRoles = []string{RoleIngest, RoleDetect, RoleRespond}

// Has reports whether role is among c's roles.
func (c Config) Has(role string) bool { return slices.Contains(c.Roles, role) }
