// Package migrations embeds the numbered SQL files that build the schema, so
// every binary can migrate the database it is pointed at.
package migrations

import "embed"

// FS holds the migration files, applied in order by goose.
//
//go:embed *.sql
var FS embed.FS
