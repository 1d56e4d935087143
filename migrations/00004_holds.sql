-- +goose Up
-- held is the sum of the amounts of the account's holds in state 'held'
-- (as sender), written by the same UPDATE that writes the balance, under
-- the same row lock: available = balance - held is exact and needs no
-- aggregate over holds. Like balance it has no index, so the balance update
-- stays HOT. The constraints added to existing tables are NOT VALID: the
-- rows they would scan satisfy them by construction (held and
-- reversed_amount start at 0, old kinds are in the new list), and
-- validating would hold the table's exclusive lock for a full scan.
ALTER TABLE accounts ADD COLUMN held numeric NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD CONSTRAINT accounts_held_check CHECK (held >= 0 AND held <= balance) NOT VALID;

ALTER TABLE transfers DROP CONSTRAINT transfers_kind_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_kind_check
    CHECK (kind IN ('transfer', 'deposit', 'withdrawal', 'hold', 'post', 'void', 'reversal')) NOT VALID;

-- hold_id: the hold a post or void settles. reverses: the request a
-- reversal moves money back for. reversed_amount: the sum of this
-- request's applied reversals, written by the batch that applies one under
-- the lock of this row, so it never passes the amount.
ALTER TABLE transfers
    ADD COLUMN hold_id         uuid,
    ADD COLUMN reverses        uuid,
    ADD COLUMN reversed_amount numeric NOT NULL DEFAULT 0;
ALTER TABLE transfers ADD CONSTRAINT transfers_reversed_amount_check
    CHECK (reversed_amount = 0 OR (status = 'applied' AND reversed_amount > 0 AND reversed_amount <= amount)) NOT VALID;

-- A transfer's reversals, in the order they were decided. Partial: the
-- other requests, nearly all of them, add nothing to it.
CREATE INDEX transfers_reverses_idx ON transfers (reverses, processed_at, id) WHERE reverses IS NOT NULL;

-- One row per applied hold request, with the same id. A rejected hold
-- request has only its transfers row. Like transfers, no foreign keys: the
-- batch locks the accounts it names.
CREATE TABLE holds (
    id            uuid        PRIMARY KEY,
    from_account  uuid        NOT NULL,
    to_account    uuid        NOT NULL,
    amount        numeric     NOT NULL CHECK (amount > 0),
    posted_amount numeric     NOT NULL DEFAULT 0,
    currency      text        NOT NULL,
    state         text        NOT NULL CHECK (state IN ('held', 'posted', 'voided', 'expired')),
    -- NULL: no timeout, held until posted or voided.
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CHECK ((state = 'posted') = (posted_amount > 0) AND posted_amount <= amount)
);

-- A row is written when the hold is created and rewritten once, when it
-- leaves 'held'; both partial indexes below name state, so that rewrite is
-- never HOT, and it is one per hold.
--
-- The sweep: due holds, soonest first. Only live holds with a timeout are in
-- it, so it stays as small as what is reserved.
CREATE INDEX holds_expiry_idx ON holds (expires_at) WHERE state = 'held' AND expires_at IS NOT NULL;
-- An account's holds, oldest first, cursor-paged by (created_at, id)...
CREATE INDEX holds_from_idx ON holds (from_account, created_at, id);
-- ... and its live ones (state=held), the list asked for most, without
-- walking past every settled hold.
CREATE INDEX holds_from_held_idx ON holds (from_account, created_at, id) WHERE state = 'held';

-- +goose Down
DROP TABLE holds;
DROP INDEX transfers_reverses_idx;
ALTER TABLE transfers
    DROP CONSTRAINT transfers_reversed_amount_check,
    DROP COLUMN reversed_amount,
    DROP COLUMN reverses,
    DROP COLUMN hold_id;
ALTER TABLE transfers DROP CONSTRAINT transfers_kind_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN ('transfer', 'deposit', 'withdrawal')) NOT VALID;
ALTER TABLE accounts DROP CONSTRAINT accounts_held_check, DROP COLUMN held;
