// Package eventstest checks event payloads against the JSON Schemas in
// package events, for tests of code that emits or consumes events.
package eventstest

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/taskfn/taskfn/shared/events"
)

var compiled = sync.OnceValues(compile)

// compile loads every embedded schema under its $id and compiles one per
// event type, asserting formats (uuid, date-time), which draft 2020-12
// leaves as annotations unless asked.
func compile() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	names, err := fs.Glob(events.Schemas, "schemas/*.json")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		b, err := events.Schemas.ReadFile(n)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if err := c.AddResource(events.SchemaBase+path.Base(n), doc); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
	}
	out := map[string]*jsonschema.Schema{}
	for _, typ := range append(slices.Clone(events.Types), events.CommandTypes...) {
		s, err := c.Compile(events.SchemaBase + strings.TrimPrefix(events.SchemaFile(typ), "schemas/"))
		if err != nil {
			return nil, fmt.Errorf("schema of %s: %w", typ, err)
		}
		out[typ] = s
	}
	return out, nil
}

// Validate checks data, an event's JSON payload, against the schema of
// event type typ.
func Validate(typ string, data []byte) error {
	schemas, err := compiled()
	if err != nil {
		return err
	}
	s, ok := schemas[typ]
	if !ok {
		return fmt.Errorf("eventstest: no schema for event type %q", typ)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("eventstest: %s data is not JSON: %w", typ, err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("eventstest: %s data: %w", typ, err)
	}
	return nil
}

// Snapshot is a valid task snapshot with a fresh id, for events in tests.
func Snapshot() events.TaskSnapshot {
	now := time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC)
	return events.TaskSnapshot{
		ID: uuid.Must(uuid.NewV7()), Title: "Write docs", Description: "", Status: "todo", Priority: "medium",
		OwnerID: "alice", Labels: []string{}, CreatedAt: now, UpdatedAt: now, Version: 1,
	}
}
