package enrich

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for Config; each is documented on its field.
const (
	DefaultSessionGap   = 30 * time.Minute
	DefaultMaxAgents    = 100_000
	DefaultKeepSessions = 8
)

// Limits checked by Validate.
const (
	minSessionGap   = time.Second
	maxSessionGap   = 7 * 24 * time.Hour
	maxKeepSessions = 1024
)

// Config is the analyzer's `enrich:` section.
type Config struct {
	// SessionGap is the idle gap that ends a derived session: an event of
	// an agent and server more than SessionGap (event time) after the last
	// one starts a new session. Between 1s and 168h. Default 30m.
	SessionGap time.Duration `yaml:"session_gap"`
	// MaxAgents bounds the agents whose state is held in memory; the least
	// recently seen agent is dropped beyond it (and loaded again from
	// ClickHouse when it comes back). Agents with changes not yet flushed
	// are kept until the next Flush. Default 100000.
	MaxAgents int `yaml:"max_agents"`
	// KeepSessions is how many derived sessions are remembered per agent
	// and server (the most recent ones), to give late and replayed events
	// the key they had. An event older than all of them opens a session of
	// its own. At most 1024. Default 8.
	KeepSessions int `yaml:"keep_sessions"`
}

// WithDefaults returns c with every unset (zero) field at its default.
func (c Config) WithDefaults() Config {
	if c.SessionGap == 0 {
		c.SessionGap = DefaultSessionGap
	}
	if c.MaxAgents == 0 {
		c.MaxAgents = DefaultMaxAgents
	}
	if c.KeepSessions == 0 {
		c.KeepSessions = DefaultKeepSessions
	}
	return c
}

// Validate reports every problem at once. Zero values are valid (they
// mean the default).
func (c Config) Validate() error {
	var errs []error
	if c.SessionGap != 0 && (c.SessionGap < minSessionGap || c.SessionGap > maxSessionGap) {
		errs = append(errs, fmt.Errorf("enrich.session_gap %s must lie between %s and %s", c.SessionGap, minSessionGap, maxSessionGap))
	}
	if c.MaxAgents < 0 {
		errs = append(errs, errors.New("enrich.max_agents must not be negative"))
	}
	if c.KeepSessions < 0 || c.KeepSessions > maxKeepSessions {
		errs = append(errs, fmt.Errorf("enrich.keep_sessions must lie between 1 and %d", maxKeepSessions))
	}
	return errors.Join(errs...)
}
