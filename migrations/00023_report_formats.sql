-- +goose Up
-- Reports people look at (issue #19): a tasks_export as xlsx, a
-- status_summary drawn as svg or png charts. The format now depends on the
-- kind, as request-report checks it. NOT VALID adds the constraint under a
-- moment's lock without reading the table; VALIDATE then reads it under a
-- lock that lets writes go on. Every existing row passes: the old formats
-- are each of one kind.
ALTER TABLE reports
    DROP CONSTRAINT IF EXISTS reports_format_valid,
    ADD CONSTRAINT reports_format_valid CHECK (
        (kind = 'tasks_export' AND format IN ('csv', 'jsonl', 'xlsx'))
        OR (kind = 'status_summary' AND format IN ('json', 'svg', 'png'))
    ) NOT VALID;
ALTER TABLE reports VALIDATE CONSTRAINT reports_format_valid;

-- +goose Down
-- Reports in the new formats cannot stay under the old constraint.
DELETE FROM reports WHERE format IN ('xlsx', 'svg', 'png');
ALTER TABLE reports
    DROP CONSTRAINT IF EXISTS reports_format_valid,
    ADD CONSTRAINT reports_format_valid CHECK (format IN ('json', 'csv', 'jsonl'));
