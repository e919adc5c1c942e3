package backtest

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// EventsPerMinute is the replay rate of the report.
func (r *Report) EventsPerMinute() float64 {
	if r.ElapsedMs <= 0 {
		return 0
	}
	return float64(r.Events) / (float64(r.ElapsedMs) / 60000)
}

// WriteText prints the report for a terminal.
func (r *Report) WriteText(w io.Writer) error {
	tenant := r.Tenant
	if tenant == "" {
		tenant = "all tenants"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "backtest of %s over %s .. %s (%s)\n", r.RuleID, r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339), tenant)
	trunc := ""
	if r.Truncated {
		trunc = fmt.Sprintf(" — stopped early (%s) after the event at %s", r.Stopped, r.LastEvent.Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "events replayed: %d in %s (%.0f events/min)%s\n", r.Events, time.Duration(r.ElapsedMs)*time.Millisecond, r.EventsPerMinute(), trunc)
	fmt.Fprintf(tw, "new      (version %s, %s): %d findings in %d groups\n", r.New.Version, r.New.Kind, r.New.Findings, r.New.Groups)
	if r.Deployed != nil {
		fmt.Fprintf(tw, "deployed (version %s, %s): %d findings in %d groups\n", r.Deployed.Version, r.Deployed.Kind, r.Deployed.Findings, r.Deployed.Groups)
	} else {
		fmt.Fprintln(tw, "deployed: no rule with this id in the configured pack")
	}
	fmt.Fprintf(tw, "diff: %d only in new, %d only in deployed, %d in both\n", r.Diff.OnlyNew, r.Diff.OnlyDeployed, r.Diff.Both)
	if len(r.New.Top) > 0 {
		fmt.Fprintln(tw, "\ntop groups (new)\ttenant\tfindings")
		for _, g := range r.New.Top {
			fmt.Fprintf(tw, "  %s\t%s\t%d\n", g.GroupKey, g.Tenant, g.Findings)
		}
	}
	if len(r.Diff.Rows) > 0 {
		fmt.Fprintln(tw, "\nclass\ttime\ttenant\tgroup\tevent\tseverity\tsummary")
		for _, d := range r.Diff.Rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Class, d.Time.Format(time.RFC3339), d.Tenant, d.GroupKey, d.EventID, d.Severity, d.Summary)
		}
	}
	return tw.Flush()
}
