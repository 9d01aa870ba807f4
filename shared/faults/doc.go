// Package faults holds the fault-injection tests of the real function
// binaries: PostgreSQL and PgBouncer restarted under write load, and
// create-task and update-task killed with SIGKILL mid-write. Each test
// starts a PostgreSQL instance of its own (initdb on a free loopback port),
// builds and runs the functions as processes, drives writes through them
// and then checks the database, the outbox and the cache against every
// answer the clients got.
//
// They need initdb, postgres and pgbouncer, start servers and processes of
// their own and measure a recovery time, which `go test ./...` running
// every package at once on two cores would distort: so they carry the
// build tag "faults" and run alone with `make faults` (CI runs it after
// `make test`), some 20 seconds each. The figures of a run are in
// docs/operations.md, "Faults, measured".
package faults
