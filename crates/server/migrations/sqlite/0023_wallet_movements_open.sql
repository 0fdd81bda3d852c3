-- no-transaction
-- A wallet movement is recorded before the provider is asked to make it, as `pending`: a
-- withdrawal holds its money in the ledger first (`hold_id`, the pending transfer), so that the
-- bank never pays out what the wallet does not hold, and a movement the server did not see
-- through (a crash between asking the provider and recording its answer) is found again and
-- settled from the provider's own record. Its `provider_ref` is known only once the provider has
-- answered, and a movement the provider did not make (`failed`) has none. `request_key` is the key
-- it was asked of the provider under: a retry of a request cut off midway finds it by that.
--
-- SQLite rebuilds a table to drop a NOT NULL. Foreign-key enforcement is off while it does (see
-- 0022); no table references this one, and every row is copied.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
DROP TABLE IF EXISTS wallet_movements_open;
CREATE TABLE wallet_movements_open (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL CHECK (kind IN ('top_up', 'withdrawal')),
    provider TEXT NOT NULL,
    provider_ref TEXT,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status = 'pending' OR status = 'succeeded' OR status = 'failed'),
    hold_id TEXT,
    request_key TEXT,
    created_at BIGINT NOT NULL
);
INSERT INTO wallet_movements_open (id, user_id, kind, provider, provider_ref, amount, currency,
        status, hold_id, request_key, created_at)
    SELECT id, user_id, kind, provider, provider_ref, amount, currency, status, NULL, NULL, created_at
    FROM wallet_movements;
DROP TABLE wallet_movements;
ALTER TABLE wallet_movements_open RENAME TO wallet_movements;
CREATE INDEX wallet_movements_user ON wallet_movements (user_id, id);
CREATE UNIQUE INDEX wallet_movements_provider ON wallet_movements (provider, provider_ref);
CREATE INDEX wallet_movements_pending ON wallet_movements (created_at) WHERE status = 'pending';
CREATE INDEX wallet_movements_request ON wallet_movements (user_id, request_key)
    WHERE request_key IS NOT NULL;
COMMIT;
PRAGMA foreign_keys = ON;
