package analyzer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/detect/findingsout"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestForwardedIncidentChange: an instance's API changes an incident it
// does not own by sending the change to the owner through the findings
// topic. The owner (a respond role) applies it, so its memory — from which
// the incident's next versions are built — has the change, and the API
// answers with the stored version. A change the incident no longer allows
// is refused before anything is sent.
func TestForwardedIncidentChange(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 3, Topic: "fw-ev", FindingsTopic: "fw-findings", DeadLetterTopic: "fw-dlq"}
	ctx := context.Background()
	owner, store, err := NewIncidentManager(ctx, ResponderOptions{Conn: st.Conn(), Database: st.Database()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = running(t, Options{Kafka: kc, Store: st, Sink: owner, Router: &IncidentRouter{Manager: owner, Store: store},
		Config: Config{Roles: []string{RoleRespond}}})

	// A finding opens an incident on the owner.
	cl, err := kafka.NewClient(kc, kgo.RecordPartitioner(kafka.KeyPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f := event.Finding{FindingID: "fw-1", Tenant: "acme", Time: time.Now().UTC(), RuleID: "mcp-ssrf-internal-address",
		Severity: event.SeverityHigh, GroupKey: "acme|a1", AgentID: "a1", EventIDs: []string{"e1"}}
	v, _ := findingsout.Marshal([]event.Finding{f})
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "fw-findings", Key: FindingKey(f.Tenant, f.RuleID, f.GroupKey), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var inc incident.Incident
	testbed.WaitUntil(t, "the incident", time.Minute, func() (bool, string) {
		incs, _, err := store.ListIncidents(ctx, incident.Filter{Tenant: "acme", Limit: 10})
		if err != nil || len(incs) != 1 {
			return false, fmt.Sprint(len(incs), err)
		}
		inc = incs[0]
		return true, ""
	})

	// Another instance's API: it owns nothing and forwards.
	other, _, err := NewIncidentManager(ctx, ResponderOptions{Conn: st.Conn(), Database: st.Database()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	r := &IncidentRouter{Manager: other, Store: store, Confirm: time.Minute}
	r.bind(func([]byte) bool { return false }, func(ctx context.Context, rec *kgo.Record) error {
		sent++
		rec.Topic = "fw-findings"
		return cl.ProduceSync(ctx, rec).FirstErr()
	})
	got, err := r.Acknowledge(ctx, inc.IncidentID, incident.Update{Actor: "alice", Note: "looking"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != incident.StatusAcknowledged || got.Version <= inc.Version || got.UpdatedBy != "alice" || sent != 1 {
		t.Fatalf("forwarded acknowledge: %+v (sent %d)", got, sent)
	}
	if mine, err := owner.Get(ctx, inc.IncidentID); err != nil || mine.Status != incident.StatusAcknowledged {
		t.Fatalf("the owner's incident: %+v %v", mine, err)
	}
	if _, err := r.Resolve(ctx, inc.IncidentID, incident.Update{Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	_, err = r.Resolve(ctx, inc.IncidentID, incident.Update{Actor: "bob"})
	if !errors.Is(err, incident.ErrIllegalTransition) || sent != 2 {
		t.Fatalf("resolving twice: %v (sent %d, want the second refused before sending)", err, sent)
	}
}
