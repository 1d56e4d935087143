-- +goose Up
CREATE TABLE currencies (
    code      text     PRIMARY KEY CHECK (code = upper(code) AND code ~ '^[A-Z0-9]{2,12}$'),
    precision smallint NOT NULL CHECK (precision BETWEEN 0 AND 18)
);

INSERT INTO currencies (code, precision) VALUES
    ('USD', 2), ('EUR', 2), ('BTC', 8), ('JPY', 0), ('KWD', 3), ('ETH', 18);

CREATE TABLE accounts (
    id         uuid        PRIMARY KEY,
    currency   text        NOT NULL REFERENCES currencies (code),
    -- Unconstrained numeric keeps every precision exact; the domain rounds.
    balance    numeric     NOT NULL DEFAULT 0 CHECK (balance >= 0),
    -- version counts the account's entries: entry N has version N.
    version    bigint      NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);

-- Listing in a stable cursor order. There is deliberately no index on
-- updated_at: every batch rewrites updated_at, and an index on it would
-- turn each balance update into a non-HOT update that touches every index.
-- Free space left by the fillfactor keeps balance updates HOT.
CREATE INDEX accounts_created_idx ON accounts (created_at, id);

-- One row per decided request id; the primary key is the idempotency key.
-- The hot tables carry no foreign keys: ApplyBatch locks and reads every
-- account it posts to in the same transaction, and the invariants the keys
-- would guard are checked by the store's tests (see docs/performance.md).
CREATE TABLE transfers (
    id           uuid        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('transfer', 'deposit', 'withdrawal')),
    status       text        NOT NULL CHECK (status IN ('applied', 'rejected')),
    reason       text        CHECK ((status = 'rejected') = (reason IS NOT NULL)),
    from_account uuid,
    to_account   uuid,
    amount       numeric     NOT NULL,
    currency     text        NOT NULL,
    fingerprint  bytea       NOT NULL CHECK (length(fingerprint) = 32),
    submitted_at timestamptz NOT NULL,
    processed_at timestamptz NOT NULL
);

-- The original service's "transfer parts": one row per account an applied
-- transfer touches, with the balance it left.
CREATE TABLE entries (
    account_id    uuid        NOT NULL,
    version       bigint      NOT NULL CHECK (version > 0),
    transfer_id   uuid        NOT NULL,
    kind          text        NOT NULL,
    direction     text        NOT NULL CHECK (direction IN ('credit', 'debit')),
    amount        numeric     NOT NULL CHECK (amount > 0),
    balance_after numeric     NOT NULL CHECK (balance_after >= 0),
    counterparty  uuid,
    currency      text        NOT NULL,
    created_at    timestamptz NOT NULL,
    -- (account, version) is the statement order, newest first by scanning
    -- backwards, and makes a lost update impossible to store.
    PRIMARY KEY (account_id, version)
);

-- +goose Down
DROP TABLE entries;
DROP TABLE transfers;
DROP TABLE accounts;
DROP TABLE currencies;
