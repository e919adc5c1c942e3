// Package playbooks holds the example response playbooks (docs/playbooks.md).
package playbooks

import "embed"

// Files holds the *.yaml playbooks.
//
//go:embed *.yaml
var Files embed.FS
