-- no-transaction
-- SQLite checks `x IN ('a', 'b', 'c')` with more than two values by building a temporary B-tree of
-- the values, once per statement run: every ledger transfer and every member-card movement the
-- sequencer inserted opened, filled and dropped one (its own pager, page cache and a zeroed page),
-- which cost more instructions than the row's own insert into its table. The same rules written as
-- `x = 'a' OR x = 'b' OR …` are checked by comparisons alone.
--
-- SQLite rebuilds a table to change a CHECK constraint. Foreign-key enforcement is off while it
-- does (it can only be switched outside a transaction, hence no-transaction above), since the old
-- table is dropped before the new one takes its name; no table references these two. Every row is
-- copied, so every reference still holds. Run again after a crash before sqlx records it, it
-- rebuilds once more.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
DROP TABLE IF EXISTS ledger_transfers_checked;
CREATE TABLE ledger_transfers_checked (
    id TEXT PRIMARY KEY,
    debit_account TEXT NOT NULL,
    credit_account TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount >= 0),
    currency TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action = 'post' OR action = 'pending' OR action = 'post_pending'
        OR action = 'void_pending'),
    code TEXT NOT NULL,
    reference TEXT NOT NULL,
    pending_id TEXT,
    expires_at BIGINT,
    created_at BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO ledger_transfers_checked (id, debit_account, credit_account, amount, currency, action,
        code, reference, pending_id, expires_at, created_at)
    SELECT id, debit_account, credit_account, amount, currency, action,
        code, reference, pending_id, expires_at, created_at
    FROM ledger_transfers;
DROP TABLE ledger_transfers;
ALTER TABLE ledger_transfers_checked RENAME TO ledger_transfers;
CREATE UNIQUE INDEX ledger_transfers_resolution ON ledger_transfers (pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account, id);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account, id);

DROP TABLE IF EXISTS member_card_movements_checked;
CREATE TABLE member_card_movements_checked (
    id TEXT PRIMARY KEY,
    card_id TEXT NOT NULL REFERENCES member_cards(id),
    merchant_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind = 'top_up' OR kind = 'payment' OR kind = 'refund'
        OR kind = 'close' OR kind = 'exchange'),
    paid BIGINT NOT NULL,
    bonus BIGINT NOT NULL,
    points BIGINT NOT NULL,
    spend BIGINT NOT NULL,
    payment_id TEXT,
    reference TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO member_card_movements_checked (rowid, id, card_id, merchant_id, kind, paid, bonus,
        points, spend, payment_id, reference, created_at)
    SELECT rowid, id, card_id, merchant_id, kind, paid, bonus, points, spend, payment_id,
        reference, created_at
    FROM member_card_movements ORDER BY rowid;
DROP TABLE member_card_movements;
ALTER TABLE member_card_movements_checked RENAME TO member_card_movements;
CREATE INDEX member_card_movements_card ON member_card_movements (card_id, id);
CREATE INDEX member_card_movements_payment ON member_card_movements (payment_id);
COMMIT;
PRAGMA foreign_keys = ON;
