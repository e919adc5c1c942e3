package collector

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/otlpin"
	"github.com/mcpwatch/mcpwatch/internal/redact"
)

// Config is the collector's configuration (YAML; see docs/collector.md).
type Config struct {
	// Receiver: OTLP listeners, auth, limits.
	Receiver otlpin.Config `yaml:"receiver"`
	// Kafka: brokers, topic, producer bounds.
	Kafka kafka.Config `yaml:"kafka"`
	// Redact: secret detectors, size caps for arguments and results
	// (every built-in detector on, 64 KiB caps by default) and the
	// fingerprint key (key_file or key_env; default none: a random key per
	// process, with a warning — see docs/collector.md).
	Redact redact.Config `yaml:"redact"`
	// Identity: how an event gets its agent when it names none
	// (docs/event.md, "Identity and correlation").
	Identity IdentityConfig `yaml:"identity"`
	// Admin serves /healthz, /readyz and /metrics.
	Admin AdminConfig `yaml:"admin"`
	// ProduceTimeout bounds how long a request waits for Kafka's acks
	// before it is answered 503 / UNAVAILABLE. Default 10s.
	ProduceTimeout time.Duration `yaml:"produce_timeout"`
	// ReadinessInterval is how often Kafka is pinged for /readyz. Default 2s.
	ReadinessInterval time.Duration `yaml:"readiness_interval"`
	// ShutdownTimeout bounds the graceful shutdown. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Runtime tunes the Go runtime (applied by cmd/collector; the GOGC and
	// GOMEMLIMIT environment variables win when set).
	Runtime RuntimeConfig `yaml:"runtime"`
	// Log: level (debug, info, warn, error; default info) and format
	// (json, text; default json).
	Log LogConfig `yaml:"log"`
}

// IdentityConfig configures the agent identity chain of the mapping.
type IdentityConfig struct {
	// AgentResourceAttributes: groups of resource attributes that name an
	// event's agent when the event has no gen_ai.agent.id, tried in order.
	// A group is attribute names joined with "+"; it applies when its first
	// attribute is set, and the agent is the group's set values joined
	// with "/" (e.g. "checkout-agent/7f3c…"). After the groups: user.id +
	// "@" + client name, else "unknown". At most 8 groups of 4 attributes;
	// an empty list skips the resource. Default
	// [service.name+service.instance.id, host.name].
	AgentResourceAttributes []string `yaml:"agent_resource_attributes"`
}

// MapOptions are the mapping options the identity config sets (the
// receiver adds the tenant and the receive time). Call on a validated config.
func (c IdentityConfig) MapOptions() event.MapOptions {
	groups, _ := event.ParseAgentResourceAttributes(c.AgentResourceAttributes)
	return event.MapOptions{AgentResourceAttributes: groups}
}

// RuntimeConfig tunes the Go garbage collector.
type RuntimeConfig struct {
	// GCPercent is the GC target percentage (GOGC). Default 200: OTLP
	// decoding allocates heavily, and a larger target measurably lowers CPU
	// per span (BenchmarkEndToEnd) at the cost of a larger heap.
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimitBytes is a soft memory limit (GOMEMLIMIT); the GC works
	// harder near it. Default 0 = none. Set it to ~90% of the container limit.
	MemoryLimitBytes int64 `yaml:"memory_limit_bytes"`
}

// AdminConfig is the admin listener.
type AdminConfig struct {
	// Endpoint host:port. Default ":8888".
	Endpoint string `yaml:"endpoint"`
	// Pprof serves Go's /debug/pprof/ on the admin listener. Default false.
	Pprof bool `yaml:"pprof"`
}

// LogConfig configures slog.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// WithDefaults returns c with unset fields at their documented defaults.
func (c Config) WithDefaults() Config {
	c.Receiver = c.Receiver.WithDefaults()
	c.Kafka = c.Kafka.WithDefaults()
	if c.ProduceTimeout == 0 {
		c.ProduceTimeout = 10 * time.Second
	}
	if c.Kafka.Producer.DeliveryTimeout == 0 {
		c.Kafka.Producer.DeliveryTimeout = c.ProduceTimeout
	}
	c.Kafka.Producer = c.Kafka.Producer.WithDefaults()
	if c.Identity.AgentResourceAttributes == nil {
		c.Identity.AgentResourceAttributes = event.FormatAgentResourceAttributes(event.DefaultAgentResourceAttributes)
	}
	if c.Admin.Endpoint == "" {
		c.Admin.Endpoint = ":8888"
	}
	if c.ReadinessInterval == 0 {
		c.ReadinessInterval = 2 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Runtime.GCPercent == 0 {
		c.Runtime.GCPercent = 200
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	return c
}

// Validate reports every problem at once. Call it on WithDefaults().
func (c Config) Validate() error {
	errs := []error{c.Receiver.Validate(), c.Kafka.Validate(), c.Kafka.Producer.Validate()}
	if _, err := redact.New(c.Redact); err != nil {
		errs = append(errs, fmt.Errorf("redact: %w", err))
	}
	if k := c.Redact.KeyEnv; k != "" && strings.TrimSpace(os.Getenv(k)) == "" {
		errs = append(errs, fmt.Errorf("redact.key_env: environment variable %s is empty", k))
	}
	if _, err := event.ParseAgentResourceAttributes(c.Identity.AgentResourceAttributes); err != nil {
		errs = append(errs, fmt.Errorf("identity.agent_resource_attributes: %w", err))
	}
	if _, _, err := net.SplitHostPort(c.Admin.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("admin.endpoint: %q is not host:port", c.Admin.Endpoint))
	}
	if c.ProduceTimeout < 0 {
		errs = append(errs, fmt.Errorf("produce_timeout: %s must be positive", c.ProduceTimeout))
	}
	if c.ReadinessInterval < 0 {
		errs = append(errs, fmt.Errorf("readiness_interval: %s must be positive", c.ReadinessInterval))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: %s must be positive", c.ShutdownTimeout))
	}
	if c.Kafka.Producer.DeliveryTimeout > 0 && c.ProduceTimeout > 0 && c.Kafka.Producer.DeliveryTimeout > 2*c.ProduceTimeout {
		errs = append(errs, fmt.Errorf("kafka.producer.delivery_timeout %s is far above produce_timeout %s: records would outlive the requests waiting for them", c.Kafka.Producer.DeliveryTimeout, c.ProduceTimeout))
	}
	if c.Runtime.GCPercent < -1 || c.Runtime.MemoryLimitBytes < 0 {
		errs = append(errs, errors.New("runtime: gc_percent must be ≥ -1 (-1 = off) and memory_limit_bytes ≥ 0"))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not one of json, text", c.Log.Format))
	}
	return errors.Join(errs...)
}
