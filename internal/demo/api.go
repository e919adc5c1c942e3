package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Approval is a playbook step waiting for a human, as the analyzer API
// reports it.
type Approval struct {
	IncidentID, RunID, Playbook, Step, Prompt string
}

// ApproveURL is the API endpoint that approves the step.
func (a Approval) ApproveURL(base string) string {
	return fmt.Sprintf("%s/api/v1/incidents/%s/playbook-runs/%s/steps/%s/approve", base,
		url.PathEscape(a.IncidentID), url.PathEscape(a.RunID), url.PathEscape(a.Step))
}

// waitingApprovals asks the analyzer API, for each incident, which playbook
// steps wait for approval.
func (s *Stack) waitingApprovals(ctx context.Context, incidents []IncidentRow) ([]Approval, error) {
	var out []Approval
	for _, in := range incidents {
		var body struct {
			Runs []struct {
				RunID    string `json:"run_id"`
				Playbook string `json:"playbook"`
				Steps    []struct {
					Step   string `json:"step"`
					Type   string `json:"type"`
					Status string `json:"status"`
					Prompt string `json:"prompt"`
				} `json:"steps"`
			} `json:"playbook_runs"`
		}
		if err := s.apiGet(ctx, "/api/v1/incidents/"+url.PathEscape(in.ID), &body); err != nil {
			return out, err
		}
		for _, r := range body.Runs {
			for _, st := range r.Steps {
				if st.Status == "waiting_approval" {
					out = append(out, Approval{IncidentID: in.ID, RunID: r.RunID, Playbook: r.Playbook, Step: st.Step, Prompt: st.Prompt})
				}
			}
		}
	}
	return out, nil
}

func (s *Stack) apiGet(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.AnalyzerURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.APIToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot call the analyzer API: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("analyzer API GET %s: %s %s", path, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("cannot decode analyzer API answer for %s: %w", path, err)
	}
	return nil
}
