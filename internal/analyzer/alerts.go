package analyzer

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/detect/findingsout"
	"github.com/mcpwatch/mcpwatch/internal/event"
)

// errNotResponding: the API got findings before the respond role's
// producer was up (the API answers 503 and Grafana retries).
var errNotResponding = errors.New("the respond role is not consuming the findings topic yet")

// SubmitFindings implements the API's Findings (POST
// /api/v1/alerts/grafana): each finding goes to the findings topic keyed
// by its incident key, like the ingest and detect roles' findings, so the
// one respond instance owning that key opens or updates the incident and
// starts its playbooks, in order with the key's other findings. It returns
// once Kafka has acknowledged every record.
func (r *IncidentRouter) SubmitFindings(ctx context.Context, fs []event.Finding) error {
	_, send := r.route()
	if send == nil {
		return errNotResponding
	}
	for i := range fs {
		v, err := findingsout.Marshal(fs[i : i+1])
		if err != nil {
			return fmt.Errorf("cannot encode finding %s: %w", fs[i].FindingID, err)
		}
		if err := send(ctx, &kgo.Record{Key: FindingKey(fs[i].Tenant, fs[i].RuleID, fs[i].GroupKey), Value: v}); err != nil {
			return fmt.Errorf("cannot produce finding %s: %w", fs[i].FindingID, err)
		}
	}
	return nil
}
