package analyzer

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/playbook"
)

// Validate reports every problem of the response section at once, so
// `analyzer run -check-config` finds what NewResponder would refuse at
// start (token values are not read: secrets may be absent where the check
// runs).
func (c ResponseConfig) Validate() error {
	var errs []error
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("response.data_dir is required (the notification outbox lives there)"))
	}
	if c.ReopenWithin < 0 {
		errs = append(errs, fmt.Errorf("response.reopen_within: %s is negative", c.ReopenWithin))
	}
	n := c.Notify
	if n.DataDir == "" {
		n.DataDir = filepath.Join(c.DataDir, "outbox")
	}
	if err := n.Validate(); err != nil {
		errs = append(errs, prefixed("response.notify", err))
	}
	receivers := map[string]bool{}
	for _, r := range c.Notify.Receivers {
		receivers[r.Name] = true
	}
	if c.PlaybooksDir != "" {
		pbs, err := playbook.LoadDir(c.PlaybooksDir)
		if err != nil {
			errs = append(errs, prefixed("response.playbooks_dir", err))
		}
		for _, pb := range pbs {
			for _, s := range pb.Steps {
				if s.Notify != nil && !receivers[s.Notify.Receiver] {
					errs = append(errs, fmt.Errorf("response.playbooks_dir: playbook %q step %q: unknown receiver %q", pb.Name, s.Name, s.Notify.Receiver))
				}
			}
		}
	}
	names := map[string]bool{}
	for i, t := range c.Tokens {
		at := fmt.Sprintf("response.api_tokens[%d] (%s)", i, t.Name)
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is required (it is recorded as the actor)", at))
		} else if names[t.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate name", at))
		}
		names[t.Name] = true
		switch t.Role {
		case api.RoleViewer, api.RoleResponder, api.RoleAdmin:
		default:
			errs = append(errs, fmt.Errorf("%s: role %q is not viewer, responder or admin", at, t.Role))
		}
		if (t.Env == "") == (t.File == "") {
			errs = append(errs, fmt.Errorf("%s: exactly one of env or file is required", at))
		}
		if t.Tenants != nil && len(t.Tenants) == 0 {
			errs = append(errs, fmt.Errorf("%s: tenants is empty; omit it for every tenant", at))
		}
		for _, tn := range t.Tenants {
			if tn == "" || strings.TrimSpace(tn) != tn {
				errs = append(errs, fmt.Errorf("%s: tenant %q is empty or has surrounding spaces", at, tn))
			}
		}
	}
	return errors.Join(errs...)
}

// prefixed puts where before each line of a joined error.
func prefixed(where string, err error) error {
	var out []error
	for _, line := range strings.Split(err.Error(), "\n") {
		out = append(out, fmt.Errorf("%s: %s", where, line))
	}
	return errors.Join(out...)
}
