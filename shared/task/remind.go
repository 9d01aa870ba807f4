package task

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
)

// publishAtOnce bounds the publishes in flight after a batch commits.
const publishAtOnce = 8

// Fired counts what one batch of reminders sent.
type Fired struct {
	Reminders int
	Overdue   int
	Tasks     int // rows taken, including any with nothing left to send
}

// FireReminders sends what is due by now for up to batch tasks: for each
// open, live, unarchived task whose next reminder moment (next_remind_at,
// kept by the tasks_next_remind trigger) has come, one event, the latest
// moment passed — a reminder (dev.taskfn.task.reminder.v1) or, at due_at,
// the overdue notice (dev.taskfn.task.overdue.v1) — and moves
// next_remind_at to the task's next moment after now (NULL when none is
// left). A tick that came late sends the latest of the moments it missed,
// not all of them. The version is not bumped: a reminder sent changes
// nothing a reader of the task sees.
//
// The rows are taken FOR UPDATE SKIP LOCKED and moved on in the same
// transaction as their events enter the outbox, so two ticks running at
// once (overlapping, or on two pods) never send one moment twice: the
// second skips what the first holds, and sees it moved on once the first
// commits. A batch smaller than batch means nothing more is due.
func (s *Store) FireReminders(ctx context.Context, now time.Time, batch int) (Fired, error) {
	if batch < 1 {
		return Fired{}, fmt.Errorf("task: reminders: batch %d must be positive", batch)
	}

	var out Fired
	var ids []uuid.UUID
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		out, ids = Fired{}, nil
		rows, err := tx.Query(ctx, fireRemindersSQL, now, batch)
		if err != nil {
			return fmt.Errorf("task: reminders: %w", err)
		}
		// A fire is a due task and what fires: a reminder, or (empty) the
		// overdue notice.
		type fire struct {
			at       time.Time
			reminder string
		}
		var (
			fireAt   pgtype.Timestamptz
			reminder pgtype.Text
			due      []Task
			fires    []fire
		)
		scan := ScanRows()
		for rows.Next() {
			t, err := scan(extraColumns{rows, []any{&fireAt, &reminder}})
			if err != nil {
				rows.Close()
				return fmt.Errorf("task: reminders: %w", err)
			}
			out.Tasks++
			if !fireAt.Valid {
				continue // nothing passed: next_remind_at was ahead of the row
			}
			due, fires = append(due, t), append(fires, fire{fireAt.Time.UTC(), reminder.String})
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("task: reminders: %w", err)
		}
		// The events carry the custom field values by name, as every task
		// event does; tasks without values cost no query.
		if err := s.present(ctx, tx, due); err != nil {
			return err
		}
		batch := make([]events.Event, 0, len(due))
		for i, t := range due {
			var d events.Data = events.TaskOverdueData{DueAt: fires[i].at, Task: t.Snapshot()}
			if fires[i].reminder != "" {
				d = events.TaskReminderData{Reminder: fires[i].reminder, RemindAt: fires[i].at, Task: t.Snapshot()}
				out.Reminders++
			} else {
				out.Overdue++
			}
			ev, err := events.NewTaskEvent(s.topic, t.ID, d)
			if err != nil {
				return err
			}
			batch, ids = append(batch, ev), append(ids, t.ID)
		}
		return outbox.AddMany(ctx, tx, batch) // one statement: a batch is hundreds
	})
	if err != nil {
		return Fired{}, err
	}
	// Published a few at a time: one after another, each a round trip to
	// the database and one to the broker, a batch's last reminders would
	// wait for all the others.
	sem := make(chan struct{}, publishAtOnce)
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.publish(ctx, id)
		})
	}
	wg.Wait()
	return out, nil
}

// fireRemindersSQL takes a batch of what is due ($1 now, $2 batch): see
// FireReminders, and TestListPlans/remind for its plan.
var fireRemindersSQL = `
WITH picked AS (
  SELECT id, due_at, reminders, recurrence_tz
  FROM tasks
  WHERE next_remind_at <= $1
    AND deleted_at IS NULL
    AND archived_at IS NULL
    AND status NOT IN ('done', 'cancelled')
  ORDER BY next_remind_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), fired AS (
  SELECT picked.id, last.fire_at, last.reminder
  FROM picked
  LEFT JOIN LATERAL (
    SELECT fire_at, reminder
    FROM task_reminder_times(picked.due_at, picked.reminders, picked.recurrence_tz)
    WHERE fire_at <= $1
    ORDER BY fire_at DESC, reminder NULLS FIRST
    LIMIT 1
  ) AS last ON true
)
UPDATE tasks AS t
SET next_remind_at = task_next_remind(t.due_at, t.reminders, t.recurrence_tz, $1)
FROM fired
WHERE t.id = fired.id
RETURNING ` + qualifiedColumns + `, fired.fire_at, fired.reminder`
