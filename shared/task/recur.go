package task

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/recurrence"
)

// Why CreateNext filed no occurrence.
const (
	NextFiled    = "filed"
	NextGone     = "gone"     // the task is purged or in the trash
	NextOpen     = "open"     // not done (reopened before the event came)
	NextNoRule   = "no-rule"  // its recurrence was removed
	NextEnded    = "ended"    // COUNT or UNTIL ended the series
	NextExisting = "existing" // an earlier delivery or done filed it
)

// CreateNext files the occurrence after the recurring task id, which is
// done: a new task with its fields, status todo, due at the rule's next
// occurrence after its due_at, in its zone, the rule's COUNT one less,
// linked to the series (series_id, the first task's id) and to id
// (recurs_from). The system (actor "") makes it, with its history line
// and task.created event.
//
// It runs on every status change to done that the recur function hears
// of, in whatever order and however often they come, and files at most
// one occurrence per task: the unique index on recurs_from makes the
// second insert a no-op. Reading the task as it is now, under a share
// lock that a concurrent reopen waits for, means a task reopened before
// the event came gets none, and its next done files it. why says what
// happened; the Task is set only when filed.
func (s *Store) CreateNext(ctx context.Context, id uuid.UUID) (next Task, why string, err error) {
	const q = `
INSERT INTO tasks (id, title, description, status, priority, due_at, owner_id, assignee_id, labels, project,
                   recurrence, recurrence_tz, reminders, series_id, recurs_from, fields)
VALUES ($1, $2, $3, 'todo', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb)
ON CONFLICT (recurs_from) WHERE recurs_from IS NOT NULL DO NOTHING
RETURNING ` + Columns
	newID, err := uuid.NewV7()
	if err != nil {
		return Task{}, "", fmt.Errorf("task: next occurrence: %w", err)
	}
	err = pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		next, why = Task{}, ""
		rows, _ := tx.Query(ctx, `SELECT `+Columns+` FROM tasks WHERE id = $1 AND deleted_at IS NULL FOR SHARE`, id)
		cur, err := collectOne(rows, "next occurrence")
		switch {
		case errors.Is(err, ErrNotFound):
			why = NextGone
			return nil
		case err != nil:
			return err
		case cur.Status != StatusDone:
			why = NextOpen
			return nil
		case cur.Recurrence == nil || cur.DueAt == nil:
			why = NextNoRule
			return nil
		}
		due, rule, ok, err := recurrence.Next(*cur.Recurrence, cur.RecurrenceTZ, *cur.DueAt)
		if err != nil {
			// The write path validated it; a rule that no longer passes
			// (a stricter check since) ends the series rather than
			// failing every redelivery.
			why = NextNoRule
			return nil
		}
		if !ok {
			why = NextEnded
			return nil
		}
		series := cur.ID
		if cur.SeriesID != nil {
			series = *cur.SeriesID
		}
		rows, _ = tx.Query(ctx, q, newID, cur.Title, cur.Description, cur.Priority, due, cur.OwnerID, cur.AssigneeID,
			nonNil(cur.Labels), cur.Project, rule, zoneArg(cur.RecurrenceTZ), nonNil(cur.Reminders), series, cur.ID,
			storedArg(cur.StoredFields)) // the occurrence keeps the series' values
		next, err = pgx.CollectOneRow(rows, ScanRows())
		if errors.Is(err, pgx.ErrNoRows) {
			why = NextExisting
			return nil
		}
		if err != nil {
			return noProject(fmt.Errorf("task: next occurrence: %w", err))
		}
		if next, err = s.presentOne(ctx, tx, next); err != nil {
			return err
		}
		why = NextFiled
		if err := activity.Add(ctx, tx, next.ID, "", activity.Created, activityChanges(nil, next)); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, next.ID, events.TaskCreatedData{Task: next.Snapshot()})
	})
	if err != nil {
		return Task{}, "", err
	}
	if why == NextFiled {
		s.publish(ctx, next.ID)
	}
	return next, why, nil
}
