// Package kafka holds mcpwatch's franz-go setup: the client options shared by
// the collector's producer and the analyzer's consumer, and topic creation.
package kafka

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for Config; each is documented on its field.
const (
	DefaultEventsTopic   = "mcpwatch.events.v1"
	DefaultFindingsTopic = "mcpwatch.findings.v1"
	DefaultDetectTopic   = "mcpwatch.detect.v1"
	DefaultDetectState   = "mcpwatch.detect.state.v1"
	DefaultDetectSteps   = "mcpwatch.detect.steps.v1"
	DefaultDeadLetter    = "mcpwatch.events.dlq.v1"
	DefaultCallsTopic    = "mcpwatch.calls.v1"
	DefaultPartitions    = 12
)

// Config is how a mcpwatch process reaches Kafka.
type Config struct {
	// Brokers is the seed broker list (host:port). Required.
	Brokers []string `yaml:"brokers"`
	// Topic carries canonical events. Default mcpwatch.events.v1.
	Topic string `yaml:"topic"`
	// FindingsTopic carries findings from the ingest and detect roles to the
	// respond role (and to SIEMs), keyed by the incident key
	// tenant/rule/group. Default mcpwatch.findings.v1.
	FindingsTopic string `yaml:"findings_topic"`
	// DetectTopic carries the inputs of stateful rules whose group is wider
	// than one agent from the ingest role to the detect role, keyed by
	// tenant/rule/group. Default mcpwatch.detect.v1.
	DetectTopic string `yaml:"detect_topic"`
	// DetectStateTopic is the detect role's compacted changelog: the state
	// of the groups of detect partition p is in its partition p. Default
	// mcpwatch.detect.state.v1.
	DetectStateTopic string `yaml:"detect_state_topic"`
	// DetectStepsTopic carries the first steps of the repartitioned
	// sequences (one partition; every ingest instance reads all of it), so
	// that the ingest role forwards a later step only within a first
	// step's window (docs/analyzer.md, "Roles"). Default
	// mcpwatch.detect.steps.v1, or DetectTopic + ".steps" when DetectTopic
	// is not the default. If it does not exist (create_topics off), every
	// later step is forwarded.
	DetectStepsTopic string `yaml:"detect_steps_topic"`
	// CallsTopic carries the halves of calls whose client and server
	// observations were exported separately, keyed by tenant/call_id, from
	// the ingest role to its join loop, which completes their identity and
	// produces them back to Topic (docs/analyzer.md, "Call join"). Default
	// mcpwatch.calls.v1, or Topic + ".calls" when Topic is not the default;
	// partitions as Topic.
	CallsTopic string `yaml:"calls_topic"`
	// DeadLetterTopic receives records the analyzer cannot decode.
	// Default mcpwatch.events.dlq.v1.
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// ClientID names this process to the brokers. Default "mcpwatch".
	ClientID string `yaml:"client_id"`
	// CreateTopics creates missing topics with Partitions partitions and
	// ReplicationFactor replicas at start. Default true.
	CreateTopics      *bool `yaml:"create_topics"`
	Partitions        int32 `yaml:"partitions"`         // default 12
	ReplicationFactor int16 `yaml:"replication_factor"` // default -1: the broker's default
	// SASL PLAIN/SCRAM credentials; the password is read from PasswordFile or
	// the environment, never logged.
	SASL SASLConfig `yaml:"sasl"`
	// TLS to the brokers.
	TLS TLSConfig `yaml:"tls"`
	// DialTimeout bounds one connection attempt. Default 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Producer bounds the collector's producer (see ProducerConfig); the
	// analyzer ignores it.
	Producer ProducerConfig `yaml:"producer"`
}

// SASLConfig selects SASL authentication; Mechanism "" disables it.
type SASLConfig struct {
	Mechanism    string `yaml:"mechanism"` // "", PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// TLSConfig enables TLS to the brokers.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// WithDefaults returns c with every unset field at its documented default.
func (c Config) WithDefaults() Config {
	if c.Topic == "" {
		c.Topic = DefaultEventsTopic
	}
	if c.FindingsTopic == "" {
		c.FindingsTopic = DefaultFindingsTopic
	}
	if c.DetectTopic == "" {
		c.DetectTopic = DefaultDetectTopic
	}
	if c.DetectStateTopic == "" {
		c.DetectStateTopic = DefaultDetectState
	}
	if c.DetectStepsTopic == "" {
		c.DetectStepsTopic = DefaultDetectSteps
		if c.DetectTopic != DefaultDetectTopic {
			c.DetectStepsTopic = c.DetectTopic + ".steps"
		}
	}
	if c.CallsTopic == "" {
		c.CallsTopic = DefaultCallsTopic
		if c.Topic != DefaultEventsTopic {
			c.CallsTopic = c.Topic + ".calls"
		}
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = DefaultDeadLetter
	}
	if c.ClientID == "" {
		c.ClientID = "mcpwatch"
	}
	if c.CreateTopics == nil {
		t := true
		c.CreateTopics = &t
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	return c
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers: at least one broker is required"))
	}
	switch c.SASL.Mechanism {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		errs = append(errs, fmt.Errorf("kafka.sasl.mechanism: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.SASL.Mechanism))
	}
	if c.SASL.Mechanism != "" && c.SASL.Username == "" {
		errs = append(errs, errors.New("kafka.sasl.username: required when sasl.mechanism is set"))
	}
	if c.SASL.Password != "" && c.SASL.PasswordFile != "" {
		errs = append(errs, errors.New("kafka.sasl: set password or password_file, not both"))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("kafka.tls: cert_file and key_file go together"))
	}
	if c.CallsTopic != "" && c.CallsTopic == c.Topic {
		errs = append(errs, fmt.Errorf("kafka.calls_topic: %q must not be the events topic", c.CallsTopic))
	}
	if c.Partitions < 0 {
		errs = append(errs, fmt.Errorf("kafka.partitions: %d must be positive", c.Partitions))
	}
	return errors.Join(errs...)
}
