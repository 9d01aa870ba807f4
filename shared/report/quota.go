package report

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/errs"
)

// The limits' defaults, for settings below 1.
const (
	// DefaultMaxActive: reports one requester may have pending or running.
	DefaultMaxActive = 5
	// DefaultDailyMax: a person's day of reports, with room to spare, while
	// a script requesting in a loop stops at it.
	DefaultDailyMax = 50
	// DefaultStoredBytesMax: 1 GiB, four of the largest exports (a
	// million-row CSV is about 230 MiB, docs/reports.md).
	DefaultStoredBytesMax = 1 << 30
	// DefaultRetentionDays is cleanup's REPORT_RETENTION_DAYS default.
	DefaultRetentionDays = 7
)

// Limits bound what one requester may ask of the report pipeline. All are
// checked when a report is requested, in the transaction that records it
// and under a lock per requester, so two requests at once cannot both
// pass a count.
type Limits struct {
	// MaxActive: unfinished reports per requester.
	MaxActive int `envconfig:"REPORT_MAX_ACTIVE" default:"5"`
	// DailyMax: reports one requester may request in any 24 hours (a
	// rolling window, whatever became of them).
	DailyMax int `envconfig:"REPORT_DAILY_MAX" default:"50"`
	// StoredBytesMax: once the content a requester's succeeded, unexpired
	// reports keep exceeds this, they may request no more until enough of
	// it expires. Content still being built is not known yet, so a
	// requester can end above it by what their unfinished reports hold.
	StoredBytesMax int64 `envconfig:"REPORT_STORED_BYTES_MAX" default:"1073741824"`
	// RetentionDays is how long cleanup keeps a report (the same setting
	// cleanup reads): content older than that no longer counts, and tells
	// when stored content frees.
	RetentionDays int `envconfig:"REPORT_RETENTION_DAYS" default:"7"`
}

// orDefaults is l with each setting below 1 at its default.
func (l Limits) orDefaults() Limits {
	if l.MaxActive < 1 {
		l.MaxActive = DefaultMaxActive
	}
	if l.DailyMax < 1 {
		l.DailyMax = DefaultDailyMax
	}
	if l.StoredBytesMax < 1 {
		l.StoredBytesMax = DefaultStoredBytesMax
	}
	if l.RetentionDays < 1 {
		l.RetentionDays = DefaultRetentionDays
	}
	return l
}

// The problem types of the limits beside MaxActive's too-many-reports.
const (
	slugDaily   = "too-many-reports-per-day"
	slugStorage = "report-storage-full"
)

// withinLimits returns nil if requestedBy may request another report, in
// tx, which holds the requester's lock. Otherwise it returns the limit
// reached that frees last, so that a client retrying after its
// Retry-After is not turned away at once by another.
func withinLimits(ctx context.Context, tx pgx.Tx, requestedBy string, l Limits) error {
	var reached []*errs.Error
	for _, check := range []func(context.Context, pgx.Tx, string, Limits) (*errs.Error, error){
		activeLimit, dailyLimit, storageLimit,
	} {
		e, err := check(ctx, tx, requestedBy, l)
		if err != nil {
			return fmt.Errorf("report: create: limits: %w", err)
		}
		if e != nil {
			reached = append(reached, e)
		}
	}
	var last *errs.Error
	for _, e := range reached {
		if last == nil || e.RetryAfter > last.RetryAfter {
			last = e
		}
	}
	if last == nil {
		return nil
	}
	return last
}

// activeLimit is ErrTooMany if requestedBy has MaxActive unfinished
// reports.
func activeLimit(ctx context.Context, tx pgx.Tx, requestedBy string, l Limits) (*errs.Error, error) {
	const q = `
SELECT count(*)
FROM reports
WHERE requested_by = $1
  AND status IN ('pending', 'running')`
	var active int
	if err := tx.QueryRow(ctx, q, requestedBy).Scan(&active); err != nil {
		return nil, err
	}
	if active >= l.MaxActive {
		return ErrTooMany, nil
	}
	return nil, nil
}

// dailyLimit is a too-many-reports-per-day problem if requestedBy asked
// for DailyMax reports in the last 24 hours; it frees 24 hours after the
// DailyMax-th newest of them, when only DailyMax-1 are left in the window.
func dailyLimit(ctx context.Context, tx pgx.Tx, requestedBy string, l Limits) (*errs.Error, error) {
	// 24 hours, not '1 day': that is 23 or 25 hours across a DST change
	// in the session's time zone.
	const q = `
SELECT created_at + interval '24 hours',
       now()
FROM reports
WHERE requested_by = $1
  AND created_at > now() - interval '24 hours'
ORDER BY created_at DESC
LIMIT 1
OFFSET $2`
	var frees, now time.Time
	err := tx.QueryRow(ctx, q, requestedBy, l.DailyMax-1).Scan(&frees, &now)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	detail := fmt.Sprintf("you may request %d reports in 24 hours and have reached that; the next may be requested at %s",
		l.DailyMax, frees.UTC().Format(time.RFC3339))
	return errs.New(errs.TooMany, "report daily limit reached", detail).
		Problem(slugDaily, "Too many reports in 24 hours").After(max(frees.Sub(now), time.Second)), nil
}

// storageLimit is a report-storage-full problem if the content of
// requestedBy's succeeded, unexpired reports exceeds StoredBytesMax. It
// frees when enough of it expired, oldest first, to be within the limit
// again: when the oldest report whose newer ones hold at most the limit
// expires.
func storageLimit(ctx context.Context, tx pgx.Tx, requestedBy string, l Limits) (*errs.Error, error) {
	const q = `
SELECT coalesce(sum(content_bytes), 0)::bigint,
       min(created_at) FILTER (WHERE newer <= $3) + $2 * interval '24 hours',
       now()
FROM (
  SELECT created_at,
         content_bytes,
         sum(content_bytes) OVER (ORDER BY created_at DESC, id DESC)::bigint - content_bytes AS newer
  FROM reports
  WHERE requested_by = $1
    AND status = 'succeeded'
    AND created_at > now() - $2 * interval '24 hours'
) AS kept`
	var (
		stored int64
		frees  *time.Time
		now    time.Time
	)
	if err := tx.QueryRow(ctx, q, requestedBy, l.RetentionDays, l.StoredBytesMax).Scan(&stored, &frees, &now); err != nil {
		return nil, err
	}
	if stored <= l.StoredBytesMax || frees == nil {
		return nil, nil
	}
	detail := fmt.Sprintf("your reports hold %d bytes of content, over the %d allowed; enough of it expires at %s (reports are kept %d days)",
		stored, l.StoredBytesMax, frees.UTC().Format(time.RFC3339), l.RetentionDays)
	return errs.New(errs.TooMany, "report storage full", detail).
		Problem(slugStorage, "Report storage full").After(max(frees.Sub(now), time.Second)), nil
}
