-- no-transaction
-- Payments and ledger transfers are kept in their key's own B-tree (WITHOUT ROWID). A table with
-- a text key otherwise keeps two: the rows by a hidden rowid, and the key in an index beside them,
-- so every payment and every transfer was inserted twice.
-- SQLite rebuilds a table to change this. Foreign-key enforcement is off while it does (it can
-- only be switched outside a transaction, hence no-transaction above): refunds name payments, and
-- the old table is dropped before the new one takes its name. Every row is copied, so every
-- reference still holds. Run again after a crash before sqlx records it, it rebuilds once more.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
DROP TABLE IF EXISTS ledger_transfers_keyed;
CREATE TABLE ledger_transfers_keyed (
    id TEXT PRIMARY KEY,
    debit_account TEXT NOT NULL,
    credit_account TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount >= 0),
    currency TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('post', 'pending', 'post_pending', 'void_pending')),
    code TEXT NOT NULL,
    reference TEXT NOT NULL,
    pending_id TEXT,
    expires_at BIGINT,
    created_at BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO ledger_transfers_keyed (id, debit_account, credit_account, amount, currency, action,
        code, reference, pending_id, expires_at, created_at)
    SELECT id, debit_account, credit_account, amount, currency, action,
        code, reference, pending_id, expires_at, created_at
    FROM ledger_transfers;
DROP TABLE ledger_transfers;
ALTER TABLE ledger_transfers_keyed RENAME TO ledger_transfers;
CREATE UNIQUE INDEX ledger_transfers_resolution ON ledger_transfers (pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account, id);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account, id);

DROP TABLE IF EXISTS payments_keyed;
CREATE TABLE payments_keyed (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    store_id TEXT REFERENCES stores(id),
    user_id TEXT REFERENCES users(id),
    method TEXT NOT NULL,
    source TEXT NOT NULL,
    qr_id TEXT,
    order_id TEXT,
    status TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    amount_captured BIGINT NOT NULL,
    amount_refunded BIGINT NOT NULL,
    fee BIGINT NOT NULL,
    fee_refunded BIGINT NOT NULL,
    fee_bps BIGINT NOT NULL,
    hold_id TEXT,
    hold_expires_at BIGINT,
    business_day TEXT NOT NULL,
    staff_id TEXT,
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    coupon_id TEXT,
    discount BIGINT NOT NULL DEFAULT 0,
    member_discount BIGINT NOT NULL DEFAULT 0,
    member_tier TEXT
) WITHOUT ROWID;
INSERT INTO payments_keyed (id, merchant_id, store_id, user_id, method, source, qr_id, order_id,
        status, amount, currency, amount_captured, amount_refunded, fee, fee_refunded, fee_bps,
        hold_id, hold_expires_at, business_day, staff_id, description, created_at, updated_at,
        coupon_id, discount, member_discount, member_tier)
    SELECT id, merchant_id, store_id, user_id, method, source, qr_id, order_id,
        status, amount, currency, amount_captured, amount_refunded, fee, fee_refunded, fee_bps,
        hold_id, hold_expires_at, business_day, staff_id, description, created_at, updated_at,
        coupon_id, discount, member_discount, member_tier
    FROM payments;
DROP TABLE payments;
ALTER TABLE payments_keyed RENAME TO payments;
CREATE INDEX payments_merchant ON payments (merchant_id, id);
CREATE INDEX payments_user ON payments (user_id, id);
CREATE INDEX payments_day ON payments (merchant_id, business_day);
CREATE INDEX payments_holds ON payments (hold_expires_at) WHERE status = 'requires_capture';
COMMIT;
PRAGMA foreign_keys = ON;
