package demo

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// Report is what the demo found.
type Report struct {
	Replay       ReplayStats
	KafkaEvents  int   // events on the events topic
	KafkaRecords int64 // the records they came in
	// Calls counts MCP messages by tool (or method) and outcome, as decoded
	// from the Kafka topic.
	Calls []CallRow
	// ToolDefs are the distinct tool definitions seen (a tool with two
	// hashes changed its definition: a rug pull candidate).
	ToolDefs []ToolDefRow
	// Tags counts enrichment tags (e.g. secret:aws_access_key) on messages.
	Tags map[string]int
	// Findings by rule (empty without the analyzer and its detections).
	Findings []FindingRow
	// Incidents found by the analyzer (empty without one).
	Incidents []IncidentRow
	// Webhooks are the notifications the local receiver got; GatewayCalls
	// the playbooks' HTTP steps.
	Webhooks, GatewayCalls []Notification
	// Approvals are playbook steps waiting for a human (from the API).
	Approvals []Approval
	// EventsInClickHouse counts rows in events (0 without the analyzer).
	EventsInClickHouse uint64
}

// CallRow is one line of the calls table.
type CallRow struct {
	Tenant, Server, Tool, Outcome string
	Count                         int
}

// ToolDefRow is one tool definition.
type ToolDefRow struct {
	Tenant, Server, Tool string
	Hashes               []string
}

// FindingRow counts one rule's findings: stored, and the hits suppressed
// into them (one finding per window, docs/rules.md suppress).
type FindingRow struct {
	RuleID, Severity string
	Count            uint64
	Suppressed       uint64
}

// RulesFired returns the set of rule ids with at least one finding.
func (r *Report) RulesFired() map[string]bool {
	out := map[string]bool{}
	for _, f := range r.Findings {
		if f.Count > 0 {
			out[f.RuleID] = true
		}
	}
	return out
}

// IncidentRow is one incident.
type IncidentRow struct {
	ID, RuleID, Severity, Status, Tenant, Agent, Summary string
	Findings                                             uint64
}

// ReadKafka consumes the events topic from its start until it has decoded
// want events (a record holds one agent's events of one OTLP request) or
// timeout passes, and returns the events and the records they came in.
func (s *Stack) ReadKafka(ctx context.Context, want int, timeout time.Duration) ([]event.Event, int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Kafka.Brokers...), kgo.ConsumeTopics(s.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, 0, fmt.Errorf("cannot create kafka consumer: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out []event.Event
	var records int64
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, records, fmt.Errorf("kafka holds %d events in %d records, want %d: %w", len(out), records, want, err)
		}
		var decodeErr error
		fs.EachRecord(func(r *kgo.Record) {
			records++
			evs, err := event.Unmarshal(r.Value)
			if err != nil && decodeErr == nil {
				decodeErr = fmt.Errorf("cannot decode record %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			out = append(out, evs...)
		})
		if decodeErr != nil {
			return out, records, decodeErr
		}
	}
	return out, records, nil
}

// Summarize tallies decoded events into the report's tables.
func Summarize(r *Report, evs []event.Event) {
	calls := map[CallRow]int{}
	type defKey struct{ tenant, server, tool string }
	defs := map[defKey]map[string]bool{}
	r.Tags = map[string]int{}
	for _, e := range evs {
		switch e.Kind {
		case event.KindToolDefinition:
			k := defKey{e.Tenant, e.ServerName, e.ToolName}
			if defs[k] == nil {
				defs[k] = map[string]bool{}
			}
			defs[k][e.ToolDefinitionHash] = true
		default:
			name := e.ToolName
			if name == "" {
				name = "(" + e.Method + ")"
			}
			calls[CallRow{Tenant: e.Tenant, Server: e.ServerName, Tool: name, Outcome: string(e.Outcome)}]++
			for _, t := range e.Tags {
				r.Tags[t]++
			}
		}
	}
	r.Calls = r.Calls[:0]
	for k, n := range calls {
		k.Count = n
		r.Calls = append(r.Calls, k)
	}
	sort.Slice(r.Calls, func(i, j int) bool {
		a, b := r.Calls[i], r.Calls[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return fmt.Sprint(a) < fmt.Sprint(b)
	})
	r.ToolDefs = r.ToolDefs[:0]
	for k, hs := range defs {
		row := ToolDefRow{Tenant: k.tenant, Server: k.server, Tool: k.tool}
		for h := range hs {
			row.Hashes = append(row.Hashes, h)
		}
		sort.Strings(row.Hashes)
		r.ToolDefs = append(r.ToolDefs, row)
	}
	sort.Slice(r.ToolDefs, func(i, j int) bool {
		a, b := r.ToolDefs[i], r.ToolDefs[j]
		return a.Tenant+a.Server+a.Tool < b.Tenant+b.Server+b.Tool
	})
}

// Print writes the report as readable tables.
func (r *Report) Print(w io.Writer, s *Stack, maxRows int) {
	fmt.Fprintf(w, "\nReplayed %d events (%d MCP messages, %d tool definitions; %d in attack cases) in %d OTLP/HTTP requests, %s.\n",
		r.Replay.Events, r.Replay.Messages, r.Replay.Events-r.Replay.Messages, r.Replay.Attacks, r.Replay.Requests, r.Replay.Took.Round(time.Millisecond))
	fmt.Fprintf(w, "Collector rejected %d; Kafka topic %s holds %d events in %d records.\n", r.Replay.Rejected, s.Topic, r.KafkaEvents, r.KafkaRecords)
	if r.EventsInClickHouse > 0 {
		fmt.Fprintf(w, "ClickHouse %s.events holds %d events.\n", s.CH.Database, r.EventsInClickHouse)
	}

	outcomes := map[string]int{}
	for _, c := range r.Calls {
		outcomes[c.Outcome] += c.Count
	}
	var os []string
	for o, n := range outcomes {
		os = append(os, fmt.Sprintf("%s=%d", o, n))
	}
	sort.Strings(os)
	fmt.Fprintf(w, "\nMCP messages by outcome: %s\n", strings.Join(os, "  "))
	fmt.Fprintf(w, "\nTool calls by tool and outcome (top %d of %d):\n", min(maxRows, len(r.Calls)), len(r.Calls))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TENANT\tSERVER\tTOOL\tOUTCOME\tCALLS")
	for i, c := range r.Calls {
		if i >= maxRows {
			break
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\n", c.Tenant, c.Server, c.Tool, c.Outcome, c.Count)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nTool definitions (%d tools; more than one hash = the definition changed):\n", len(r.ToolDefs))
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TENANT\tSERVER\tTOOL\tVERSIONS\tHASHES")
	for _, d := range r.ToolDefs {
		short := make([]string, len(d.Hashes))
		for i, h := range d.Hashes {
			short[i] = h[:min(12, len(h))]
		}
		mark := ""
		if len(d.Hashes) > 1 {
			mark = "  <- changed"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s%s\n", d.Tenant, d.Server, d.Tool, len(d.Hashes), strings.Join(short, ","), mark)
	}
	tw.Flush()

	if len(r.Tags) > 0 {
		var tags []string
		for t, n := range r.Tags {
			tags = append(tags, fmt.Sprintf("%s=%d", t, n))
		}
		sort.Strings(tags)
		fmt.Fprintf(w, "\nEnrichment tags on messages: %s\n", strings.Join(tags, "  "))
	}

	if s.AnalyzerURL != "" {
		if len(r.Findings) == 0 {
			fmt.Fprintln(w, "\nFindings: none (the analyzer ran no detections or nothing matched).")
		} else {
			fmt.Fprintf(w, "\nFindings by rule (%d rules fired):\n", len(r.Findings))
			tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  RULE\tSEVERITY\tFINDINGS\tSUPPRESSED HITS")
			for _, f := range r.Findings {
				fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\n", f.RuleID, f.Severity, f.Count, f.Suppressed)
			}
			tw.Flush()
		}
	}
	if s.AnalyzerURL != "" {
		fired := r.RulesFired()
		fmt.Fprintln(w, "\nAttacks embedded in the scenario:")
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ATTACK\tRULE\tDETECTED")
		for _, a := range scenario.DemoAttacks {
			rule, variant, _ := strings.Cut(a, "/")
			got := "no"
			if fired[rule] {
				got = "yes"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", variant, rule, got)
		}
		tw.Flush()
	}
	if len(r.Incidents) > 0 {
		fmt.Fprintf(w, "\nIncidents (%d):\n", len(r.Incidents))
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SEVERITY\tRULE\tTENANT\tAGENT\tFINDINGS\tSTATUS\tSUMMARY")
		for _, in := range r.Incidents {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\t%s\n", in.Severity, in.RuleID, in.Tenant, in.Agent, in.Findings, in.Status, truncate(in.Summary, 80))
		}
		tw.Flush()
	}

	if s.AnalyzerURL != "" {
		valid := 0
		for _, n := range r.Webhooks {
			if n.SignatureOK {
				valid++
			}
		}
		fmt.Fprintf(w, "\nNotifications: %d webhook deliveries to the local receiver (%d with a valid HMAC signature); %d playbook calls to the stand-in gateway.\n",
			len(r.Webhooks), valid, len(r.GatewayCalls))
		if len(r.Approvals) > 0 {
			fmt.Fprintf(w, "\nPlaybook steps waiting for a human (%d):\n", len(r.Approvals))
			tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  INCIDENT\tPLAYBOOK\tSTEP\tPROMPT")
			for _, a := range r.Approvals {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.IncidentID, a.Playbook, a.Step, truncate(a.Prompt, 70))
			}
			tw.Flush()
			a := r.Approvals[0]
			fmt.Fprintf(w, "Approve one (with --keep; the playbook then calls the stand-in gateway):\n  curl -X POST -H 'Authorization: Bearer %s' -H 'X-Mcpwatch-Actor: you' -d '{\"note\":\"ok\"}' %s\n",
				s.APIToken, a.ApproveURL(s.AnalyzerURL))
		}
	}

	fmt.Fprintln(w, "\nWhere to look next:")
	var toks []string
	for tenant, tok := range s.Tokens {
		toks = append(toks, tenant+"="+tok)
	}
	sort.Strings(toks)
	fmt.Fprintf(w, "  OTLP endpoints     %s/v1/traces  (gRPC %s)\n", s.OTLPHTTP, s.OTLPGRPC)
	fmt.Fprintf(w, "  sender tokens      %s  (demo only; Authorization: Bearer <token>)\n", strings.Join(toks, "  "))
	fmt.Fprintf(w, "  collector admin    %s/metrics  %s/readyz\n", s.CollectorAdm, s.CollectorAdm)
	fmt.Fprintf(w, "  Kafka              %s  topic %s (OTLP logs protobuf, one agent's events per record)\n", strings.Join(s.Kafka.Brokers, ","), s.Topic)
	fmt.Fprintf(w, "  ClickHouse         clickhouse-client --port %s --database %s   (tables: events, tool_definitions, findings, incidents, actions, calls_per_minute)\n", portOf(s.CH.Addr), s.CH.Database)
	if s.AnalyzerURL != "" {
		fmt.Fprintf(w, "  analyzer API       curl -H 'Authorization: Bearer %s' %s/api/v1/incidents\n", s.APIToken, s.AnalyzerURL)
		fmt.Fprintf(w, "  analyzer admin     %s/metrics  %s/readyz\n", s.AnalyzerURL, s.AnalyzerURL)
	}
	fmt.Fprintf(w, "  webhook receiver   %s (%d requests received)\n", s.Webhook.URL, len(s.Webhook.Received()))
	fmt.Fprintf(w, "  logs               %s/*.log\n", s.Dir)
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
