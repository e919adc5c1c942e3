package plugin

import (
	"encoding/json"
	"fmt"
	"slices"
)

// DefinitionFacts are what a tool definition says about its reach, as the
// analyzer records them in tool_definitions.facts (schema 0023; the
// analyzer's internal/detect/defdiff writes them): parameter names, hosts,
// email addresses and paths named in its text, prompt-injection markers,
// annotation hints.
type DefinitionFacts struct {
	Params       []string        `json:"params"`
	Hosts        []string        `json:"hosts"`
	Emails       []string        `json:"emails"`
	Paths        []string        `json:"paths"`
	Instructions []string        `json:"instructions"`
	Hints        map[string]bool `json:"hints"`
}

// parseFacts reads the stored form; nil when the row has none (written
// before schema 0023) or it does not parse.
func parseFacts(s string) *DefinitionFacts {
	var raw struct {
		P []string        `json:"p"`
		H []string        `json:"h"`
		E []string        `json:"e"`
		F []string        `json:"f"`
		I []string        `json:"i"`
		A map[string]bool `json:"a"`
	}
	if s == "" || json.Unmarshal([]byte(s), &raw) != nil {
		return nil
	}
	return &DefinitionFacts{Params: raw.P, Hosts: raw.H, Emails: raw.E, Paths: raw.F, Instructions: raw.I, Hints: raw.A}
}

// DefinitionDiff is what a definition changed from the tool's previous one:
// the figures the analyzer's mcp-tool-definition-changed rule judges (its
// finding carries the graded diff; this one is for reading).
type DefinitionDiff struct {
	PreviousHash      string   `json:"previous_hash"`
	PreviousVersion   string   `json:"previous_version"`
	VersionBump       bool     `json:"version_bump"`
	ParamsAdded       []string `json:"params_added"`
	ParamsRemoved     []string `json:"params_removed"`
	HostsAdded        []string `json:"hosts_added"`
	EmailsAdded       []string `json:"emails_added"`
	PathsAdded        []string `json:"paths_added"`
	InstructionsAdded []string `json:"instructions_added"`
	HintsChanged      []string `json:"hints_changed"`
}

// diffDefinitions is cur's diff against prev; nil when either has no facts.
func diffDefinitions(prev, cur *ToolDefinition) *DefinitionDiff {
	if prev.Facts == nil || cur.Facts == nil {
		return nil
	}
	p, c := prev.Facts, cur.Facts
	d := &DefinitionDiff{
		PreviousHash: prev.Hash, PreviousVersion: prev.ServerVersion,
		VersionBump:       prev.ServerVersion != "" && cur.ServerVersion != "" && prev.ServerVersion != cur.ServerVersion,
		ParamsAdded:       setMinus(c.Params, p.Params),
		ParamsRemoved:     setMinus(p.Params, c.Params),
		HostsAdded:        setMinus(c.Hosts, p.Hosts),
		EmailsAdded:       setMinus(c.Emails, p.Emails),
		PathsAdded:        setMinus(c.Paths, p.Paths),
		InstructionsAdded: setMinus(c.Instructions, p.Instructions),
		HintsChanged:      []string{},
	}
	for _, k := range []string{"readOnlyHint", "destructiveHint", "openWorldHint", "idempotentHint"} {
		pv, pok := p.Hints[k]
		cv, cok := c.Hints[k]
		if pok != cok || pv != cv {
			d.HintsChanged = append(d.HintsChanged, fmt.Sprintf("%s: %s → %s", k, hintState(pv, pok), hintState(cv, cok)))
		}
	}
	return d
}

func hintState(v, ok bool) string {
	if !ok {
		return "absent"
	}
	return fmt.Sprint(v)
}

// setMinus is a − b, never nil (the page lists it as is).
func setMinus(a, b []string) []string {
	out := []string{}
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
