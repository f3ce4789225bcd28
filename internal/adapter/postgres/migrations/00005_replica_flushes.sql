-- Each replica's last successful flush of its analysis state
-- (postgres.Windows.SaveWindows), by its own clock: the leader finalizes a
-- closed window only once every live replica has flushed after it stopped
-- counting into it (postgres.Windows.FinalizeClosed).

-- +goose Up
CREATE TABLE replica_flushes (
    replica    text PRIMARY KEY,
    flushed_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE replica_flushes;
