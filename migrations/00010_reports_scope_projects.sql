-- +goose Up
-- A report covers the tasks its requester could list when asking. Since
-- projects, that is the projects they held a role in, kept here, and the
-- tasks assigned to them (scope_subject). Reports asked for before hold
-- NULL: their requester's personal project stands for the tasks they owned.
ALTER TABLE reports ADD COLUMN IF NOT EXISTS scope_projects text[];

-- +goose Down
ALTER TABLE reports DROP COLUMN IF EXISTS scope_projects;
