-- Search over requests and accounts, and balances at a point in time.
--
-- Every index here is paid for by every insert into transfers, the hot
-- table, so each one serves a query no other index can, and the partial
-- ones skip the rows they would not find. The search lists requests newest
-- first by decision time, (processed_at, id), so each index ends in those
-- columns and a page is a short walk backwards from the cursor, never a
-- sort of every match. Filters without an index of their own (kind, status
-- applied, the time window) are checked while walking the index of another
-- filter, or the time index; kind and status take a handful of values each,
-- so an index on them would cost every insert and save little. The test
-- TestSearchPlansUseIndexes in internal/postgres checks that no filter
-- combination the API allows reads transfers sequentially.
--
-- Built concurrently so that an existing ledger keeps taking writes.

-- +goose NO TRANSACTION
-- +goose Up

-- All requests newest first, and any filter without a better index (kind,
-- status, the time window) walking it. processed_at is written once, at
-- the decision, from the batch's clock, so inserts append at the right edge.
CREATE INDEX CONCURRENTLY transfers_processed_idx ON transfers (processed_at, id);

-- One account's requests, either side: the search merges a walk of each
-- (the rows naming the account as sender, then those naming it as receiver
-- only), so a page of a busy account reads about a page of rows. Partial:
-- deposits have no sender and withdrawals no receiver.
CREATE INDEX CONCURRENTLY transfers_from_idx ON transfers (from_account, processed_at, id) WHERE from_account IS NOT NULL;
CREATE INDEX CONCURRENTLY transfers_to_idx ON transfers (to_account, processed_at, id) WHERE to_account IS NOT NULL;

-- Metadata containment (metadata @> '{"order_id":"A-1"}'). jsonb_path_ops
-- keeps one hash per key-value pair, smaller and faster to update than the
-- default operator class, and @> is the only operator the search uses.
-- Partial: requests without metadata store NULL and add nothing.
CREATE INDEX CONCURRENTLY transfers_metadata_idx ON transfers USING gin (metadata jsonb_path_ops) WHERE metadata IS NOT NULL;

-- Rejected requests, newest first: what support looks for, and rare enough
-- that walking the time index for them would read many applied rows per
-- row found. Applied rows, nearly all of them, are not in it.
CREATE INDEX CONCURRENTLY transfers_rejected_idx ON transfers (processed_at, id) WHERE status = 'rejected';

-- Reference lookups use transfers_reference_key (00005): at most one row.

-- Accounts by metadata. An account's metadata changes only when a client
-- patches it, so balance updates, which do not touch it, stay HOT.
-- Partial: accounts without metadata ('{}', the default) are not in it.
CREATE INDEX CONCURRENTLY accounts_metadata_idx ON accounts USING gin (metadata jsonb_path_ops) WHERE metadata <> '{}';

-- entries_version_at returns the version of account's last entry created
-- at or before at: 0 before the first, NULL for an unknown account. It
-- binary-searches the primary key (account_id, version), so it needs no
-- index on (account_id, created_at), which every entry would pay for. A
-- batch writes an account's entries in version order with its decision
-- time, so created_at does not decrease along an account's versions while
-- the workers' clocks do not step back (see docs/api.md). Each probe is one
-- primary-key lookup; a million entries take 21. STABLE: it reads with the
-- snapshot of the statement calling it.
-- +goose StatementBegin
CREATE FUNCTION entries_version_at(account uuid, at timestamptz) RETURNS bigint
LANGUAGE plpgsql STABLE STRICT AS $$
DECLARE
    lo  bigint := 0;
    hi  bigint;
    mid bigint;
    t   timestamptz;
BEGIN
    SELECT version INTO hi FROM accounts WHERE id = account;
    IF hi IS NULL THEN
        RETURN NULL;
    END IF;
    -- The usual question is about a recent instant: the newest entry.
    SELECT created_at INTO t FROM entries WHERE account_id = account AND version = hi;
    IF t <= at THEN
        RETURN hi;
    END IF;
    hi := hi - 1;
    -- Invariant: version lo is at or before at (0: none is), every
    -- version above hi is after it.
    WHILE lo < hi LOOP
        mid := (lo + hi + 1) / 2;
        SELECT created_at INTO t FROM entries WHERE account_id = account AND version = mid;
        IF t <= at THEN
            lo := mid;
        ELSE
            hi := mid - 1;
        END IF;
    END LOOP;
    RETURN lo;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION entries_version_at(uuid, timestamptz);
DROP INDEX CONCURRENTLY accounts_metadata_idx;
DROP INDEX CONCURRENTLY transfers_rejected_idx;
DROP INDEX CONCURRENTLY transfers_metadata_idx;
DROP INDEX CONCURRENTLY transfers_to_idx;
DROP INDEX CONCURRENTLY transfers_from_idx;
DROP INDEX CONCURRENTLY transfers_processed_idx;
