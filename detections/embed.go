// Package detections holds mcpwatch's rule pack (one rule per YAML file,
// docs/rules.md) and its named lists (lists/*.yaml), embedded for the analyzer.
// Load it with detect.Load(detections.FS, ".").
package detections

import "embed"

// FS holds every rule file and the lists/ folder.
//
//go:embed *.yaml lists/*.yaml
var FS embed.FS
