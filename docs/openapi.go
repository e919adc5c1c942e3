// Package docs embeds the documents the binaries serve: the analyzer API's
// OpenAPI description (served at /api/v1/openapi.yaml).
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
