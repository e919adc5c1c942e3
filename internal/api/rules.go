package api

import (
	"context"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/detect"
)

// RuleInfo is one rule as GET /api/v1/rules shows it.
type RuleInfo struct {
	ID           string   `json:"id"`
	Title        string   `json:"title"`
	Description  string   `json:"description"`
	Severity     string   `json:"severity"`
	Status       string   `json:"status"`
	Kind         string   `json:"kind"`
	Tags         []string `json:"tags"`
	By           []string `json:"by"`
	DedupSeconds int64    `json:"dedup_seconds"`
	Runbook      string   `json:"runbook"`
	Version      string   `json:"version"`
	File         string   `json:"file"`
	// YAML is the rule file as loaded: what a backtest edits.
	YAML string `json:"yaml"`
}

// RulesFromPack serves the current rule pack (pack is e.g. engine.Pack, so
// a hot reload shows at once).
func RulesFromPack(pack func() *detect.Pack) func(context.Context) (any, error) {
	return func(context.Context) (any, error) {
		out := []RuleInfo{}
		p := pack()
		if p == nil {
			return out, nil
		}
		for _, r := range p.Rules {
			tags, by := r.Tags, r.By
			if tags == nil {
				tags = []string{}
			}
			if by == nil {
				by = []string{}
			}
			out = append(out, RuleInfo{ID: r.ID, Title: r.Title, Description: r.Description, Severity: r.Severity,
				Status: r.Status, Kind: r.Kind, Tags: tags, By: by, DedupSeconds: int64(r.DedupWindow() / time.Second),
				Runbook: r.Runbook, Version: r.Version, File: r.File, YAML: string(r.Source)})
		}
		return out, nil
	}
}
