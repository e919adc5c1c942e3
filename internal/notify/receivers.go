package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
)

// Headers of the generic webhook.
const (
	HeaderSignature      = "X-Mcpwatch-Signature" // "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body))
	HeaderTimestamp      = "X-Mcpwatch-Timestamp" // unix seconds
	HeaderIdempotencyKey = "Idempotency-Key"
)

// WebhookPayload is the generic webhook's JSON body (docs/notifications.md).
type WebhookPayload struct {
	Version  string              `json:"version"` // "1"
	ID       string              `json:"id"`      // = Idempotency-Key
	Status   string              `json:"status"`  // "firing" | "resolved"
	Change   incident.ChangeKind `json:"change"`
	Incident incident.Incident   `json:"incident"`
	Findings []map[string]any    `json:"findings"` // ClickHouse column names
	Links    map[string]string   `json:"links"`
	Note     string              `json:"note,omitempty"`
	Source   string              `json:"source,omitempty"`
	SentAt   time.Time           `json:"sent_at"`
}

// Sign returns the X-Mcpwatch-Signature value for body sent at ts.
func Sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a webhook request's signature and that its timestamp is
// within tolerance of now (replay protection). It is what a receiver runs.
func Verify(secret []byte, sigHeader, tsHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("cannot parse %s: %w", HeaderTimestamp, err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp outside tolerance (%s)", d)
	}
	if !hmac.Equal([]byte(Sign(secret, tsHeader, body)), []byte(sigHeader)) {
		return fmt.Errorf("signature mismatch")
	}
	return nil
}

func (n *Notifier) links(inc incident.Incident) map[string]string {
	l := map[string]string{}
	if n.cfg.Links.Incident != "" {
		l["incident"] = strings.ReplaceAll(n.cfg.Links.Incident, "{incident_id}", inc.IncidentID)
	}
	if n.cfg.Links.API != "" {
		l["api"] = strings.TrimRight(n.cfg.Links.API, "/") + "/api/v1/incidents/" + inc.IncidentID
	}
	if n.cfg.Links.Runbook != "" {
		l["runbook"] = strings.ReplaceAll(n.cfg.Links.Runbook, "{rule_id}", inc.RuleID)
	}
	return l
}

// buildRequest renders m for its receiver. Secrets are read here.
func (n *Notifier) buildRequest(ctx context.Context, r ReceiverConfig, m *Message) (*http.Request, error) {
	var body []byte
	var err error
	target := r.URL
	if !r.URLSecret.IsZero() {
		if target, err = r.URLSecret.Value(); err != nil {
			return nil, err
		}
	}
	switch r.Type {
	case TypeWebhook:
		body, err = json.Marshal(n.webhookPayload(m))
	case TypeAlertmanager:
		target = strings.TrimRight(target, "/") + "/api/v2/alerts"
		body, err = json.Marshal([]AMAlert{n.amAlert(m)})
	case TypeSlack:
		body, err = json.Marshal(n.slackMessage(m))
	case TypePagerDuty:
		key, kerr := r.Secret.Value()
		if kerr != nil {
			return nil, kerr
		}
		body, err = json.Marshal(n.pdEvent(m, key))
	default:
		return nil, fmt.Errorf("cannot send to receiver type %q", r.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot encode %s payload: %w", r.Type, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("cannot build request for receiver %s: %w", r.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mcpwatch-notify/1")
	req.Header.Set(HeaderIdempotencyKey, m.ID)
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	if r.Type == TypeWebhook && !r.Secret.IsZero() {
		secret, err := r.Secret.Value()
		if err != nil {
			return nil, err
		}
		ts := strconv.FormatInt(n.now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign([]byte(secret), ts, body))
	}
	return req, nil
}

func status(m *Message) string {
	if m.Action == "resolve" {
		return "resolved"
	}
	return "firing"
}

func (n *Notifier) webhookPayload(m *Message) WebhookPayload {
	fs := incident.FindingsJSON(m.Findings)
	return WebhookPayload{Version: "1", ID: m.ID, Status: status(m), Change: m.Change, Incident: m.Incident,
		Findings: fs, Links: n.links(m.Incident), Note: m.Note, Source: m.Source, SentAt: n.now().UTC()}
}

// AMAlert is one element of Alertmanager's POST /api/v2/alerts body.
type AMAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// amAlert maps an incident to an alert. Labels: alertname = rule id (so
// Alertmanager groups by rule), severity, tenant, incident_id, agent_id,
// server_name, tool_name (empty ones omitted: an empty label is no label).
func (n *Notifier) amAlert(m *Message) AMAlert {
	inc := m.Incident
	labels := map[string]string{"alertname": inc.RuleID, "severity": string(inc.Severity), "tenant": inc.Tenant,
		"incident_id": inc.IncidentID, "agent_id": inc.AgentID, "server_name": inc.ServerName, "tool_name": inc.ToolName,
		"source": "mcpwatch"}
	for k, v := range labels {
		if v == "" {
			delete(labels, k)
		}
	}
	links := n.links(inc)
	ann := map[string]string{"summary": firstNonEmpty(inc.Title, inc.RuleID), "description": describe(inc)}
	if l := links["runbook"]; l != "" {
		ann["runbook_url"] = l
	}
	if l := links["incident"]; l != "" {
		ann["incident_url"] = l
	}
	a := AMAlert{Labels: labels, Annotations: ann, StartsAt: inc.FirstSeen.UTC(), GeneratorURL: firstNonEmpty(links["incident"], links["api"])}
	if m.Action == "resolve" {
		a.EndsAt = inc.UpdatedAt.UTC()
	} else {
		a.EndsAt = n.now().UTC().Add(n.cfg.AlertmanagerFiringTTL)
	}
	if a.EndsAt.Before(a.StartsAt) {
		a.EndsAt = a.StartsAt
	}
	return a
}

func describe(inc incident.Incident) string {
	var b strings.Builder
	if inc.Summary != "" {
		b.WriteString(inc.Summary)
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%d finding(s) from %s to %s; status %s", inc.FindingCount,
		inc.FirstSeen.UTC().Format(time.RFC3339), inc.LastSeen.UTC().Format(time.RFC3339), inc.Status)
	return b.String()
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// slackMessage is an incoming-webhook body: text (the fallback shown in
// notifications) and Block Kit blocks.
func (n *Notifier) slackMessage(m *Message) map[string]any {
	inc := m.Incident
	icon := map[event.Severity]string{event.SeverityCritical: ":red_circle:", event.SeverityHigh: ":large_orange_circle:",
		event.SeverityMedium: ":large_yellow_circle:"}[inc.Severity]
	if icon == "" {
		icon = ":large_blue_circle:"
	}
	state := "FIRING"
	if m.Action == "resolve" {
		state, icon = "RESOLVED", ":white_check_mark:"
	}
	title := fmt.Sprintf("[%s] %s — %s", state, strings.ToUpper(string(inc.Severity)), firstNonEmpty(inc.Title, inc.RuleID))
	fields := []map[string]any{}
	add := func(k, v string) {
		if v != "" {
			fields = append(fields, map[string]any{"type": "mrkdwn", "text": "*" + k + "*\n" + slackEscape(v)})
		}
	}
	add("Tenant", inc.Tenant)
	add("Rule", inc.RuleID)
	add("Agent", inc.AgentID)
	add("Server / tool", strings.Trim(inc.ServerName+" / "+inc.ToolName, " /"))
	add("Findings", strconv.Itoa(int(inc.FindingCount)))
	add("Status", string(inc.Status))
	if len(fields) > 10 { // Slack allows at most 10 fields per section
		fields = fields[:10]
	}
	blocks := []map[string]any{
		{"type": "header", "text": map[string]any{"type": "plain_text", "text": truncate(icon+" "+title, 150), "emoji": true}},
	}
	if s := firstNonEmpty(m.Note, inc.Summary); s != "" {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": truncate(slackEscape(s), 3000)}})
	}
	blocks = append(blocks, map[string]any{"type": "section", "fields": fields})
	var buttons []map[string]any
	links := n.links(inc)
	for _, k := range []string{"incident", "runbook", "api"} {
		if l := links[k]; l != "" {
			buttons = append(buttons, map[string]any{"type": "button", "text": map[string]any{"type": "plain_text", "text": map[string]string{
				"incident": "Open incident", "runbook": "Runbook", "api": "API"}[k]}, "url": l})
		}
	}
	if len(buttons) > 0 {
		blocks = append(blocks, map[string]any{"type": "actions", "elements": buttons})
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []map[string]any{{"type": "mrkdwn",
		"text": fmt.Sprintf("mcpwatch incident `%s` · first seen %s", inc.IncidentID, inc.FirstSeen.UTC().Format(time.RFC3339))}}})
	text := title
	if l := links["incident"]; l != "" {
		text += " <" + l + "|open>"
	}
	return map[string]any{"text": text, "blocks": blocks}
}

func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// PDEvent is a PagerDuty Events API v2 event.
type PDEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"` // trigger | acknowledge | resolve
	DedupKey    string     `json:"dedup_key"`    // the incident id
	Payload     *PDPayload `json:"payload,omitempty"`
	Client      string     `json:"client,omitempty"`
	ClientURL   string     `json:"client_url,omitempty"`
	Links       []PDLink   `json:"links,omitempty"`
}

// PDPayload is the payload of a trigger event.
type PDPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"` // critical | error | warning | info
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// PDLink is a link shown on the PagerDuty incident.
type PDLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// PDSeverity maps mcpwatch severities onto PagerDuty's four.
func PDSeverity(s event.Severity) string {
	switch s {
	case event.SeverityCritical:
		return "critical"
	case event.SeverityHigh:
		return "error"
	case event.SeverityMedium:
		return "warning"
	}
	return "info"
}

func (n *Notifier) pdEvent(m *Message, routingKey string) PDEvent {
	inc := m.Incident
	e := PDEvent{RoutingKey: routingKey, EventAction: "trigger", DedupKey: inc.IncidentID, Client: "mcpwatch"}
	links := n.links(inc)
	if l := links["incident"]; l != "" {
		e.ClientURL = l
		e.Links = append(e.Links, PDLink{Href: l, Text: "mcpwatch incident"})
	}
	if l := links["runbook"]; l != "" {
		e.Links = append(e.Links, PDLink{Href: l, Text: "Runbook"})
	}
	if m.Action == "resolve" || m.Action == "acknowledge" {
		e.EventAction = m.Action
		return e
	}
	e.Payload = &PDPayload{
		Summary:   truncate(fmt.Sprintf("[%s] %s: %s", inc.Tenant, firstNonEmpty(inc.Title, inc.RuleID), firstNonEmpty(inc.Summary, inc.GroupKey)), 1024),
		Source:    firstNonEmpty(inc.AgentID, inc.ServerName, "mcpwatch"),
		Severity:  PDSeverity(inc.Severity),
		Timestamp: inc.LastSeen.UTC().Format(time.RFC3339),
		Component: firstNonEmpty(inc.ServerName, inc.ToolName),
		Group:     inc.Tenant,
		Class:     inc.RuleID,
		CustomDetails: map[string]any{"incident_id": inc.IncidentID, "rule_id": inc.RuleID, "severity": inc.Severity,
			"status": inc.Status, "finding_count": inc.FindingCount, "agent_id": inc.AgentID, "session_key": inc.SessionKey,
			"server_name": inc.ServerName, "tool_name": inc.ToolName, "tags": inc.Tags, "note": m.Note},
	}
	return e
}
