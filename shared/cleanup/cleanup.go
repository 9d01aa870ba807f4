// Package cleanup deletes what taskfn no longer needs, in bounded batches:
// trashed tasks past the trash's retention, read notifications and their emails,
// reports, published outbox rows, processed-event records past the
// redelivery window, and the values of deleted custom fields. Each batch is one short transaction that skips rows
// another holds (FOR UPDATE SKIP LOCKED), so two runs at once share the
// work and neither blocks the API. The SQL stays with each table's
// package; this one only decides what is old and keeps to a time budget.
//
// It deletes nothing a user made that nobody asked to delete: finished
// tasks past their retention are archived (RETENTION_ACTION=archive, the
// default) or, opted into, moved to the trash (trash), where they stay
// restorable for TRASH_RETENTION_DAYS. Purged tasks leave tombstones in
// the task cache, as purge-task's do, so GET /tasks/{id} stops serving
// them at once; archived and trashed ones are refreshed as their routes
// refresh them. Reports whose build was
// lost are failed, so they do not stay unfinished (and count against
// their requester) forever.
package cleanup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/ingest"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/task"
)

// Retention says how long each kind of row is kept, in days.
type Retention struct {
	// Tasks done or cancelled, by the time of their last change, are
	// then archived, or with RetentionAction "trash" moved to the trash.
	TaskDays        int    `envconfig:"RETENTION_DAYS" default:"90"`
	RetentionAction string `envconfig:"RETENTION_ACTION" default:"archive"`
	// Trashed tasks, by when they were trashed, are then purged.
	TrashDays int `envconfig:"TRASH_RETENTION_DAYS" default:"30"`
	// Read notifications, by when they were read; emails by when they
	// were queued.
	NotificationDays int `envconfig:"NOTIFICATION_RETENTION_DAYS" default:"30"`
	// Reports of any state, by when they were requested.
	ReportDays int `envconfig:"REPORT_RETENTION_DAYS" default:"7"`
	// ReportAbandonAfter: a report still pending this long after it was
	// requested, or running this long after its worker's lease ran out,
	// has lost its build (the event was dead-lettered) and is failed.
	// Keep it above the build-report KafkaSource's whole delivery window
	// (4 tries of up to 10 min, about 41 min) plus the consumer lag.
	ReportAbandonAfter time.Duration `envconfig:"REPORT_ABANDON_AFTER" default:"2h"`
	// Published outbox rows, by when they were published.
	OutboxDays int `envconfig:"OUTBOX_RETENTION_DAYS" default:"3"`
	// Processed-event records: longer than any redelivery can come late,
	// i.e. longer than the topics keep events (7 days by default).
	ProcessedEventDays int `envconfig:"PROCESSED_EVENT_RETENTION_DAYS" default:"8"`
	// BatchSize is the most rows one transaction deletes.
	BatchSize int `envconfig:"CLEANUP_BATCH_SIZE" default:"1000"`
	// Budget bounds one run; what is left waits for the next tick.
	Budget time.Duration `envconfig:"CLEANUP_BUDGET" default:"50s"`
}

func (r Retention) validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		days int
	}{
		{"RETENTION_DAYS", r.TaskDays}, {"TRASH_RETENTION_DAYS", r.TrashDays}, {"NOTIFICATION_RETENTION_DAYS", r.NotificationDays},
		{"REPORT_RETENTION_DAYS", r.ReportDays}, {"OUTBOX_RETENTION_DAYS", r.OutboxDays},
		{"PROCESSED_EVENT_RETENTION_DAYS", r.ProcessedEventDays},
	} {
		if d.days < 1 {
			errs = append(errs, fmt.Errorf("%s %d must be at least 1", d.name, d.days))
		}
	}
	if r.RetentionAction != "archive" && r.RetentionAction != "trash" {
		errs = append(errs, fmt.Errorf("RETENTION_ACTION %q must be archive or trash", r.RetentionAction))
	}
	if r.ReportAbandonAfter < time.Minute {
		errs = append(errs, fmt.Errorf("REPORT_ABANDON_AFTER %s must be at least 1m", r.ReportAbandonAfter))
	}
	if r.BatchSize < 1 || r.BatchSize > 100_000 {
		errs = append(errs, fmt.Errorf("CLEANUP_BATCH_SIZE %d must be 1 to 100000", r.BatchSize))
	}
	if r.Budget <= 0 {
		errs = append(errs, fmt.Errorf("CLEANUP_BUDGET %s must be positive", r.Budget))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleanup: invalid config: %w", err)
	}
	return nil
}

// Result counts what one run did. Complete is false when the budget ran
// out with rows left.
type Result struct {
	// ArchivedTasks or TrashedTasks (by RETENTION_ACTION): finished tasks
	// past RETENTION_DAYS; PurgedTasks: trashed past TRASH_RETENTION_DAYS.
	ArchivedTasks int64 `json:"archived_tasks"`
	TrashedTasks  int64 `json:"trashed_tasks"`
	PurgedTasks   int64 `json:"purged_tasks"`
	Notifications int64 `json:"notifications"`
	Emails        int64 `json:"emails"`
	Reports       int64 `json:"reports"`
	// AbandonedReports were failed, not deleted.
	AbandonedReports int64 `json:"abandoned_reports"`
	Outbox           int64 `json:"outbox"`
	ProcessedEvents  int64 `json:"processed_events"`
	CommandReceipts  int64 `json:"command_receipts"` // ingest-events' (docs/producers.md)
	// FieldValues: values of deleted custom fields removed from tasks;
	// DeletedFields: those fields' rows, gone once no task holds a value
	// (docs/custom-fields.md).
	FieldValues   int64 `json:"field_values"`
	DeletedFields int64 `json:"deleted_fields"`
	Complete      bool  `json:"complete"`
}

// Cleaner runs the deletes.
type Cleaner struct {
	db      *pg.DB
	tasks   *task.Store
	inbox   *notify.Store
	reports *report.Store
	fields  *field.Store
	cache   *cache.Cache
	cfg     Retention
}

// New returns a Cleaner on db that drops the tasks it deletes from
// taskCache (a disabled cache is fine; nil is not, so the wiring cannot
// forget it).
func New(db *pg.DB, cfg Retention, taskCache *cache.Cache) (*Cleaner, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if taskCache == nil {
		return nil, errors.New("cleanup: New needs the task cache")
	}
	tasks, err := task.NewStore(db)
	if err != nil {
		return nil, err
	}
	inbox, err := notify.NewStore(db)
	if err != nil {
		return nil, err
	}
	reports, err := report.NewStore(db)
	if err != nil {
		return nil, err
	}
	fields, err := field.NewStore(db)
	if err != nil {
		return nil, err
	}
	return &Cleaner{db: db, tasks: tasks, inbox: inbox, reports: reports, fields: fields, cache: taskCache, cfg: cfg}, nil
}

// retireTasks archives (or trashes) a batch of finished tasks and
// refreshes each in the cache, as update-task (or delete-task) does: the
// generation is noted before the write, and an entry that cannot be
// written makes this process invalidate the whole cache once Redis
// answers (see cache.Write).
func (c *Cleaner) retireTasks(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	cw := c.cache.BeginWrite(ctx)
	// The rows are written once the statement returns, even if the budget
	// ends now: their entries must still be refreshed.
	wctx := context.WithoutCancel(ctx)
	if c.cfg.RetentionAction == "trash" {
		trashed, parents, err := c.tasks.TrashFinishedBefore(ctx, cutoff, batch)
		for _, t := range trashed {
			cw.Trashed(wctx, t.ID, t.Version)
		}
		cw.StoredMany(wctx, parents)
		return int64(len(trashed)), err
	}
	archived, err := c.tasks.ArchiveFinishedBefore(ctx, cutoff, batch)
	cw.StoredMany(wctx, archived)
	return int64(len(archived)), err
}

// purgeTrash purges a batch of tasks trashed before cutoff and tombstones
// each in the cache, as purge-task does.
func (c *Cleaner) purgeTrash(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	cw := c.cache.BeginWrite(ctx)
	ids, err := c.tasks.PurgeTrashedBefore(ctx, cutoff, batch)
	wctx := context.WithoutCancel(ctx)
	for _, id := range ids {
		cw.Deleted(wctx, id)
	}
	return int64(len(ids)), err
}

// batchFunc deletes up to batch rows older than cutoff.
type batchFunc func(ctx context.Context, cutoff time.Time, batch int) (int64, error)

// Run deletes everything older than its retention at now, until done or
// the budget is spent.
func (c *Cleaner) Run(ctx context.Context, now time.Time) (Result, error) {
	var res Result
	bctx, cancel := context.WithTimeout(ctx, c.cfg.Budget)
	defer cancel()
	days := func(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }
	retired := &res.ArchivedTasks
	if c.cfg.RetentionAction == "trash" {
		retired = &res.TrashedTasks
	}
	steps := []struct {
		name   string
		cutoff time.Time
		purge  batchFunc
		count  *int64
	}{
		{"processed events", days(c.cfg.ProcessedEventDays), c.inbox.PurgeProcessed, &res.ProcessedEvents},
		{"command receipts", days(c.cfg.ProcessedEventDays), func(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
			return ingest.PurgeReceipts(ctx, c.db, cutoff, batch)
		}, &res.CommandReceipts},
		{"notifications", days(c.cfg.NotificationDays), c.inbox.PurgeRead, &res.Notifications},
		{"emails", days(c.cfg.NotificationDays), c.inbox.PurgeEmails, &res.Emails},
		{"abandoned reports", now.Add(-c.cfg.ReportAbandonAfter), c.reports.FailAbandoned, &res.AbandonedReports},
		{"reports", days(c.cfg.ReportDays), c.reports.PurgeBefore, &res.Reports},
		{"outbox", days(c.cfg.OutboxDays), func(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
			return outbox.PurgePublished(ctx, c.db.Primary, cutoff, batch)
		}, &res.Outbox},
		{"trash", days(c.cfg.TrashDays), c.purgeTrash, &res.PurgedTasks},
		// Deleted at once by their route; no age to wait for. Hidden
		// already, so no cache entry needs refreshing (field.PurgeDeleted).
		{"deleted custom fields", now, func(ctx context.Context, _ time.Time, batch int) (int64, error) {
			p, err := c.fields.PurgeDeleted(ctx, batch)
			res.DeletedFields += p.Definitions
			return p.Values, err
		}, &res.FieldValues},
		{"finished tasks", days(c.cfg.TaskDays), c.retireTasks, retired},
	}
	for _, s := range steps {
		for {
			n, err := s.purge(bctx, s.cutoff, c.cfg.BatchSize)
			*s.count += n
			if err != nil {
				if ctx.Err() == nil && bctx.Err() != nil {
					return res, nil // budget spent: the next tick goes on
				}
				return res, fmt.Errorf("cleanup: %s: %w", s.name, err)
			}
			if n < int64(c.cfg.BatchSize) {
				break
			}
			if bctx.Err() != nil {
				return res, nil
			}
		}
	}
	res.Complete = true
	return res, nil
}
