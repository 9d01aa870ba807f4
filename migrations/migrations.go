// Package migrations holds the database schema as numbered goose SQL files.
// They are applied by pg.Migrate: by the deploy Job in a cluster, and by the
// dev runner locally; services never migrate at start.
package migrations

import "embed"

// FS holds every migration, named NNNNN_what.sql so goose orders them.
//
//go:embed *.sql
var FS embed.FS
