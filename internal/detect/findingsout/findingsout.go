// Package findingsout publishes findings to Kafka (topic
// mcpwatch.findings.v1) as OTLP logs, for SIEMs: one record per finding,
// key = tenant + "/" + rule id + "/" + group key (so a group's findings stay
// ordered), value = an OTLP ExportLogsServiceRequest (protobuf) holding one
// log record with event.name "mcpwatch.finding".
package findingsout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// EventName marks finding log records.
const EventName = "mcpwatch.finding"

var severityNumber = map[event.Severity]plog.SeverityNumber{
	event.SeverityInfo:     plog.SeverityNumberInfo,
	event.SeverityLow:      plog.SeverityNumberInfo2,
	event.SeverityMedium:   plog.SeverityNumberWarn,
	event.SeverityHigh:     plog.SeverityNumberError,
	event.SeverityCritical: plog.SeverityNumberFatal,
}

// ToLogs converts findings to OTLP logs (one resource "mcpwatch-analyzer").
// Attribute names: mcpwatch.finding.* plus the finding's ClickHouse column
// names under mcpwatch.finding. (e.g. mcpwatch.finding.rule_id).
func ToLogs(fs []event.Finding) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "mcpwatch-analyzer")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("github.com/mcpwatch/mcpwatch/internal/detect")
	for i := range fs {
		f := &fs[i]
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(f.Time))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		lr.SetEventName(EventName)
		lr.SetSeverityText(string(f.Severity))
		lr.SetSeverityNumber(severityNumber[f.Severity])
		lr.Body().SetStr(f.Summary)
		a := lr.Attributes()
		a.PutStr("event.name", EventName)
		put := func(k, v string) {
			if v != "" {
				a.PutStr("mcpwatch.finding."+k, v)
			}
		}
		put("finding_id", f.FindingID)
		put("tenant", f.Tenant)
		put("rule_id", f.RuleID)
		put("rule_version", f.RuleVersion)
		put("rule_title", f.RuleTitle)
		put("rule_kind", f.RuleKind)
		put("severity", string(f.Severity))
		put("group_key", f.GroupKey)
		put("agent_id", f.AgentID)
		put("user_id", f.UserID)
		put("session_key", f.SessionKey)
		put("server_name", f.ServerName)
		put("tool_name", f.ToolName)
		put("evidence", f.Evidence)
		put("incident_id", f.IncidentID)
		put("suppress_key", f.SuppressKey)
		if f.SuppressWindow > 0 {
			a.PutInt("mcpwatch.finding.suppress_window_s", int64(f.SuppressWindow/time.Second))
		}
		if f.SuppressPos != 0 {
			a.PutInt("mcpwatch.finding.suppress_pos", f.SuppressPos)
		}
		tags := a.PutEmptySlice("mcpwatch.finding.tags")
		for _, t := range f.Tags {
			tags.AppendEmpty().SetStr(t)
		}
		ids := a.PutEmptySlice("mcpwatch.finding.event_ids")
		for _, id := range f.EventIDs {
			ids.AppendEmpty().SetStr(id)
		}
	}
	return ld
}

// Marshal encodes findings as an OTLP ExportLogsServiceRequest (protobuf).
func Marshal(fs []event.Finding) ([]byte, error) {
	b, err := plogotlp.NewExportRequestFromLogs(ToLogs(fs)).MarshalProto()
	if err != nil {
		return nil, fmt.Errorf("cannot encode findings: %w", err)
	}
	return b, nil
}

// Unmarshal decodes a record value back into findings (for tests and consumers).
func Unmarshal(b []byte) ([]event.Finding, error) {
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		return nil, fmt.Errorf("cannot decode findings: %w", err)
	}
	var out []event.Finding
	rls := req.Logs().ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				a := lr.Attributes()
				get := func(n string) string {
					if v, ok := a.Get("mcpwatch.finding." + n); ok {
						return v.Str()
					}
					return ""
				}
				list := func(n string) []string {
					v, ok := a.Get("mcpwatch.finding." + n)
					if !ok {
						return nil
					}
					var s []string
					for x := 0; x < v.Slice().Len(); x++ {
						s = append(s, v.Slice().At(x).Str())
					}
					return s
				}
				out = append(out, event.Finding{
					FindingID: get("finding_id"), Tenant: get("tenant"), Time: lr.Timestamp().AsTime().UTC(),
					RuleID: get("rule_id"), RuleVersion: get("rule_version"), RuleTitle: get("rule_title"), RuleKind: get("rule_kind"),
					Severity: event.Severity(get("severity")), Tags: list("tags"), GroupKey: get("group_key"), Summary: lr.Body().Str(),
					AgentID: get("agent_id"), UserID: get("user_id"), SessionKey: get("session_key"), ServerName: get("server_name"),
					ToolName: get("tool_name"), EventIDs: list("event_ids"), Evidence: get("evidence"), IncidentID: get("incident_id"),
					SuppressKey: get("suppress_key"),
				})
				if v, ok := a.Get("mcpwatch.finding.suppress_window_s"); ok {
					out[len(out)-1].SuppressWindow = time.Duration(v.Int()) * time.Second
				}
				if v, ok := a.Get("mcpwatch.finding.suppress_pos"); ok {
					out[len(out)-1].SuppressPos = v.Int()
				}
			}
		}
	}
	return out, nil
}

// Publisher produces findings to a topic. It implements the analyzer's
// FindingSink; HandleFindings returns after every record is acknowledged.
type Publisher struct {
	cl    *kgo.Client
	topic string
}

// NewPublisher publishes with cl (configured with kafka.ProducerOpts) to topic.
func NewPublisher(cl *kgo.Client, topic string) *Publisher {
	return &Publisher{cl: cl, topic: topic}
}

// HandleFindings produces one record per finding and waits for the acks.
func (p *Publisher) HandleFindings(ctx context.Context, fs []event.Finding) error {
	if len(fs) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, 0, len(fs))
	for i := range fs {
		v, err := Marshal(fs[i : i+1])
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: p.topic, Key: []byte(fs[i].Tenant + "/" + fs[i].RuleID + "/" + fs[i].GroupKey), Value: v})
	}
	var errs []error
	for _, r := range p.cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cannot publish %d findings: %w", len(errs), err)
	}
	return nil
}
