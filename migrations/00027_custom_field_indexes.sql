-- +goose NO TRANSACTION
-- +goose Up

-- Custom field filters (GET /tasks?project=K&field.<name>=v, docs/custom-fields.md).
--
-- Equality is fields @> '{"<id>": value}': a GIN index in jsonb_path_ops
-- (hashes of each path and value, a third of jsonb_ops' size, and only
-- @> to serve) over live tasks, with the same literal predicate as the
-- list indexes of migration 17, so a selective value is found in the
-- index and the project's rows are never walked. An unselective value
-- (a checkbox, a select of three options) is better served by the walk
-- of tasks_live_project_status_created_at_id_idx in the page's order,
-- the jsonb condition a filter over about a page of rows: the planner
-- chooses per value from this index's statistics
-- (TestFieldFilterPlans, 1,000,000 tasks, a 100,000-task project).
--
-- Ranges ([gte], [lte] on number, date, datetime) need no index of their
-- own: they are served by that ordered walk too. A range that keeps
-- very few of a big project's tasks reads more of the walk; an
-- expression index for one hot field is the remedy, not a default.
--
-- CONCURRENTLY, so no write waits; a failed build leaves an invalid
-- index, dropped first when the migration runs again.
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_fields_idx;
CREATE INDEX CONCURRENTLY tasks_live_fields_idx ON tasks USING gin (fields jsonb_path_ops)
    WHERE deleted_at IS NULL AND archived_at IS NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_fields_idx;
