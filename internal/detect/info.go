package detect

import "time"

// RuleInfo describes a loaded rule (for the API's GET /api/v1/rules and for
// incidents: Dedup).
type RuleInfo struct {
	ID             string        `json:"id"`
	Title          string        `json:"title"`
	Description    string        `json:"description,omitempty"`
	Severity       string        `json:"severity"`
	Status         string        `json:"status"`
	Kind           string        `json:"kind"`
	Tags           []string      `json:"tags"`
	Version        string        `json:"version"`
	File           string        `json:"file"`
	Dedup          time.Duration `json:"-"`
	DedupSeconds   int64         `json:"dedup_seconds"`
	Runbook        string        `json:"runbook"`
	FalsePositives []string      `json:"false_positives"`
	References     []string      `json:"references,omitempty"`
}

// Rules lists the rules in use, in load order.
func (e *Engine) Rules() []RuleInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]RuleInfo, 0, len(e.rules))
	for _, rs := range e.rules {
		r := rs.rule
		out = append(out, RuleInfo{
			ID: r.ID, Title: r.Title, Description: r.Description, Severity: r.Severity, Status: r.Status,
			Kind: r.Kind, Tags: r.Tags, Version: r.Version, File: r.File, Dedup: r.DedupWindow(),
			DedupSeconds: int64(r.DedupWindow() / time.Second), Runbook: r.Runbook,
			FalsePositives: r.FalsePositives, References: r.References,
		})
	}
	return out
}
