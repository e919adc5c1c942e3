package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// Scenario returns the demo corpus with its timestamps moved so that the
// last event happened a minute ago.
func Scenario(seed int64) scenario.Corpus {
	c := scenario.Demo(seed)
	if len(c.Events) == 0 {
		return c
	}
	last := c.Events[len(c.Events)-1].Event.Time
	return c.Shift(time.Now().Add(-time.Minute).Sub(last).Truncate(time.Second))
}

// Run replays the demo scenario through a started stack and collects the
// report.
func (s *Stack) Run(ctx context.Context, seed int64) (*Report, error) {
	if seed == 0 {
		seed = 1
	}
	c := Scenario(seed)
	s.log.Info("replaying the demo scenario over OTLP/HTTP", "events", len(c.Events))
	st, err := s.Replay(ctx, c)
	if err != nil {
		return nil, err
	}
	r := &Report{Replay: st}
	want := st.Events - st.Rejected
	s.log.Info("reading the accepted events back from Kafka", "events", want)
	evs, records, err := s.ReadKafka(ctx, want, time.Minute)
	r.KafkaEvents, r.KafkaRecords = len(evs), records
	if err != nil {
		return r, fmt.Errorf("cannot see every accepted event in Kafka: %w", err)
	}
	Summarize(r, evs)
	if err := s.collectAnalysis(ctx, r); err != nil {
		return r, err
	}
	return r, nil
}
