// Package schema holds mcpwatch's ClickHouse migrations: numbered SQL files,
// applied in order by internal/store. `{db}` stands for the database name.
// Every statement stays inside the portable subset of docs/architecture.md so that it
// runs on ClickHouse 18.16 and on current releases.
package schema

import "embed"

// Files holds the NNNN_name.sql migrations.
//
//go:embed *.sql
var Files embed.FS
