package playbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ImportFiles moves the runs an earlier release kept as files
// (dir/runs/<run_id>.json, dir = response.data_dir/playbooks) into st, so
// the unfinished ones are resumed by their incident's owner: each run
// whose id st does not know is stored with its incident's key (from
// incidents); every imported or already known file is renamed to
// <run_id>.json.imported. A run whose incident cannot be read stays a file
// (reported in the error) and is tried again at the next start. A missing
// dir is not an error.
func ImportFiles(ctx context.Context, dir string, st Store, incidents Incidents) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "runs", "*.json"))
	if err != nil {
		return 0, fmt.Errorf("cannot list playbook run files: %w", err)
	}
	n := 0
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read playbook run file: %w", err))
			continue
		}
		var run Run
		if err := json.Unmarshal(b, &run); err != nil || run.RunID == "" {
			errs = append(errs, fmt.Errorf("cannot decode playbook run file %s: %v", filepath.Base(f), err))
			continue
		}
		_, err = st.GetRun(ctx, run.RunID)
		switch {
		case errors.Is(err, ErrNotFound):
			inc, err := incidents.Get(ctx, run.IncidentID)
			if err != nil {
				errs = append(errs, fmt.Errorf("cannot read incident %s of playbook run %s: %w", run.IncidentID, run.RunID, err))
				continue
			}
			run.RuleID, run.GroupKey, run.Version = inc.RuleID, inc.GroupKey, 1
			if err := st.SaveRun(ctx, run); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		case err != nil:
			errs = append(errs, err)
			continue
		}
		if err := os.Rename(f, f+".imported"); err != nil {
			errs = append(errs, fmt.Errorf("cannot mark playbook run file imported: %w", err))
		}
	}
	return n, errors.Join(errs...)
}
