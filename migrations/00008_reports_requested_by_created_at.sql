-- +goose NO TRANSACTION
-- +goose Up

-- POST /reports now checks two more limits of the requester (report.Limits),
-- under the requester's lock: the reports they requested in the last 24
-- hours (REPORT_DAILY_MAX), and the content of their succeeded reports
-- still kept (REPORT_STORED_BYTES_MAX, over REPORT_RETENTION_DAYS). Neither
-- had an index to use: the first was a bitmap scan of everyone's last day
-- on reports_created_at_idx, the second a scan of the whole table. With
-- 700,000 reports of 20,000 requesters over 7 days (PostgreSQL 15, 2 cores,
-- 128 MB shared_buffers, three runs each): 110-167 ms and 87-131 ms per
-- request, growing with every requester's use. On (requested_by,
-- created_at) both read one requester's rows only: 0.2-0.4 ms (an
-- index-only scan) and 0.5-0.9 ms. The index is 27 MB beside the table's
-- 99 MB; reports_created_at_idx stays for cleanup, which deletes by age
-- whoever asked.
--
-- CONCURRENTLY: requests are not blocked while it builds. A failed build
-- leaves an invalid index behind, so it is dropped first and the migration
-- can simply run again.
DROP INDEX CONCURRENTLY IF EXISTS reports_requested_by_created_at_idx;
CREATE INDEX CONCURRENTLY reports_requested_by_created_at_idx ON reports (requested_by, created_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS reports_requested_by_created_at_idx;
