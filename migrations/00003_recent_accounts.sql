-- The original API lists the 100 most recently updated accounts. Ordering
-- accounts by updated_at read and sorted the whole table on every call, and
-- an index on accounts.updated_at would make every balance update non-HOT
-- (see 00001). Entries are written in the same transaction as the balance
-- update, with the same timestamp, and are never updated: an index on their
-- created_at finds the recently updated accounts from the newest entries.
-- It costs one append at the right edge of the index per entry.
-- Built concurrently so that an existing ledger keeps taking writes.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY entries_created_idx ON entries (created_at);

-- +goose Down
DROP INDEX CONCURRENTLY entries_created_idx;
