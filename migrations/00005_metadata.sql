-- +goose Up
-- Clients keep their own ids on every request: metadata (string keys to
-- string values, at most 4 KiB, checked by the domain) and an optional
-- reference, unique across all requests of every kind. A NULL metadata
-- means none was given, so the many requests without it store nothing.
-- Adding nullable columns, or one with a constant default, rewrites no rows.
ALTER TABLE transfers
    ADD COLUMN metadata  jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    ADD COLUMN reference text  CHECK (length(reference) BETWEEN 1 AND 128);

-- The second line of idempotency: one request per reference. Partial, so
-- requests without one cost nothing here.
CREATE UNIQUE INDEX transfers_reference_key ON transfers (reference) WHERE reference IS NOT NULL;

ALTER TABLE accounts
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object');

-- +goose Down
ALTER TABLE accounts DROP COLUMN metadata;
DROP INDEX transfers_reference_key;
ALTER TABLE transfers DROP COLUMN reference, DROP COLUMN metadata;
