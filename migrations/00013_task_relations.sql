-- +goose Up
-- How tasks relate: task_id <kind> other_id ("A subtask_of B": B is A's
-- parent; "A blocks B"). Both ends cascade: deleting a task removes its
-- relations, so its subtasks lose their parent.
CREATE TABLE task_relations (
    task_id    uuid        NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    kind       text        NOT NULL
        CONSTRAINT task_relations_kind_valid CHECK (kind IN ('subtask_of', 'blocks', 'relates_to', 'duplicates')),
    other_id   uuid        NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, kind, other_id),
    CONSTRAINT task_relations_not_self CHECK (task_id <> other_id)
);

-- A task has at most one parent.
CREATE UNIQUE INDEX task_relations_one_parent_idx ON task_relations (task_id) WHERE kind = 'subtask_of';
-- The other direction: a task's subtasks, what it is blocked by; also
-- what the cascade from other_id finds.
CREATE INDEX task_relations_other_id_kind_idx ON task_relations (other_id, kind);

-- +goose Down
DROP TABLE IF EXISTS task_relations;
