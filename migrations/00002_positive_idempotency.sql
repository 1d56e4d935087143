-- +goose Up
-- The 2020 API is positive-idempotent: a rejected id may be decided again by
-- a new attempt. attempt names the attempt that made the stored decision
-- (NULL for requests without one), decisions counts the decisions made under
-- the id, and superseded lists the attempts whose rejections were replaced,
-- so that a redelivery of one of them replays instead of deciding again.
-- Existing rows keep their meaning: one decision, no attempt.
ALTER TABLE transfers
    ADD COLUMN attempt    uuid,
    ADD COLUMN decisions  integer NOT NULL DEFAULT 1 CHECK (decisions >= 1),
    ADD COLUMN superseded uuid[]  CHECK (cardinality(superseded) <= 64);

-- +goose Down
ALTER TABLE transfers
    DROP COLUMN superseded,
    DROP COLUMN decisions,
    DROP COLUMN attempt;
