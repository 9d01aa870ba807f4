-- +goose Up
-- project_analytics (issue #19): a project's throughput, cycle time and
-- open work over a period, as json or as svg/png charts. Both constraints
-- are replaced as 00023 did: NOT VALID under a moment's lock, then
-- VALIDATE under a lock that lets writes go on; every existing row passes.
ALTER TABLE reports
    DROP CONSTRAINT IF EXISTS reports_kind_valid,
    ADD CONSTRAINT reports_kind_valid CHECK (kind IN ('status_summary', 'tasks_export', 'project_analytics')) NOT VALID,
    DROP CONSTRAINT IF EXISTS reports_format_valid,
    ADD CONSTRAINT reports_format_valid CHECK (
        (kind = 'tasks_export' AND format IN ('csv', 'jsonl', 'xlsx'))
        OR (kind IN ('status_summary', 'project_analytics') AND format IN ('json', 'svg', 'png'))
    ) NOT VALID;
ALTER TABLE reports VALIDATE CONSTRAINT reports_kind_valid;
ALTER TABLE reports VALIDATE CONSTRAINT reports_format_valid;

-- +goose Down
DELETE FROM reports WHERE kind = 'project_analytics';
ALTER TABLE reports
    DROP CONSTRAINT IF EXISTS reports_kind_valid,
    ADD CONSTRAINT reports_kind_valid CHECK (kind IN ('status_summary', 'tasks_export')),
    DROP CONSTRAINT IF EXISTS reports_format_valid,
    ADD CONSTRAINT reports_format_valid CHECK (
        (kind = 'tasks_export' AND format IN ('csv', 'jsonl', 'xlsx'))
        OR (kind = 'status_summary' AND format IN ('json', 'svg', 'png'))
    );
