-- The leader's window plan: the analysis windows every replica counts into
-- (postgres.DB.PublishPlan). One row; term fences an old leader's writes,
-- generation orders the plans.

-- +goose Up
CREATE TABLE window_plan (
    id         int PRIMARY KEY CHECK (id = 1),
    term       bigint NOT NULL, -- taken by each new leader (TakeTerm)
    leader     text NOT NULL,   -- the replica that took term
    generation bigint NOT NULL, -- increases by one per published plan
    body       json             -- the plan; null before the first
);
INSERT INTO window_plan VALUES (1, 0, '', 0, NULL);

-- +goose Down
DROP TABLE window_plan;
