package events

import "embed"

// Schemas holds a JSON Schema (draft 2020-12) for the data of every event
// type and every command type, named <type>.json, and what they share:
// task.v1.json, comment.v1.json and command.v1.json.
// They are the contract consumers code against; a test checks that what
// this code emits validates.
//
//go:embed schemas/*.json
var Schemas embed.FS

// SchemaBase is the $id prefix of every schema; relative $refs resolve
// against it.
const SchemaBase = "https://taskfn.dev/schemas/events/"

// SchemaFile is the path in Schemas of the data schema of event type typ.
func SchemaFile(typ string) string { return "schemas/" + typ + ".json" }
