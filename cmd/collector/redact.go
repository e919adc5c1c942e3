package main

import "github.com/mcpwatch/mcpwatch/internal/collector"

// newRedactor builds the redactor from cfg. TEMPORARY: returns nil until
// internal/redact lands.
func newRedactor(cfg collector.Config) (collector.Redactor, error) { return nil, nil }
