-- Trace claims between replicas (postgres.DB.ClaimTraces, AnswerClaims):
-- a replica restarting after a crash posts the trace ids of its
-- write-ahead log's tail as one round; every other replica answers with
-- the ids it holds (the claimant leaves them to it) and excludes the rest.

-- +goose Up
CREATE TABLE claim_rounds (
    id        bigserial PRIMARY KEY,
    replica   text NOT NULL,
    made_at   timestamptz NOT NULL DEFAULT now(),
    trace_ids bytea NOT NULL -- 16 bytes per trace id
);
CREATE TABLE claim_answers (
    round   bigint NOT NULL REFERENCES claim_rounds (id) ON DELETE CASCADE,
    replica text NOT NULL,
    held    bytea NOT NULL, -- 16 bytes per trace id the replica holds
    PRIMARY KEY (round, replica)
);

-- +goose Down
DROP TABLE claim_answers;
DROP TABLE claim_rounds;
