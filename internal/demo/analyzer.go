package demo

import (
	"context"
)

// startAnalyzer starts cmd/analyzer against the stack's Kafka and ClickHouse.
// TEMPORARY: wired once cmd/analyzer's config lands; until then the demo
// reports what reached Kafka.
func (s *Stack) startAnalyzer(ctx context.Context, bin, root string) error {
	_, _, _ = ctx, bin, root
	s.log.Warn("analyzer wiring pending: events stay in Kafka")
	return nil
}

// collectAnalysis fills in what the analyzer produced (ClickHouse rows,
// incidents). TEMPORARY: no-op until the analyzer is wired.
func (s *Stack) collectAnalysis(ctx context.Context, r *Report) error {
	_, _ = ctx, r
	return nil
}
