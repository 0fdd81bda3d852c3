-- Payments (PostgreSQL) on an exact ledger: accounts and immutable transfers (the book), payments and refunds
-- (the business objects that reference them), the outbox of events, and webhook endpoints with
-- their deliveries. Amounts are minor units (BIGINT), timestamps UTC microseconds.

ALTER TABLE merchants ADD COLUMN fee_bps BIGINT NOT NULL DEFAULT 60;

CREATE TABLE ledger_accounts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner_id TEXT,
    currency TEXT NOT NULL,
    no_overdraft BOOLEAN NOT NULL,
    balance BIGINT NOT NULL,
    pending_out BIGINT NOT NULL,
    pending_in BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ledger_accounts_owner ON ledger_accounts (owner_id);

-- Transfers are never updated or deleted. A post or void of a hold is a new transfer naming the
-- hold in pending_id; the unique index makes a hold resolvable once. The accounts a transfer names
-- exist by construction (the sequencer creates them in the same batch), and verification checks
-- every transfer against its accounts, so no foreign key costs two lookups per transfer.
CREATE TABLE ledger_transfers (
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
);
CREATE UNIQUE INDEX ledger_transfers_resolution ON ledger_transfers (pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account, id);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account, id);

CREATE TABLE payments (
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
    updated_at BIGINT NOT NULL
);
CREATE INDEX payments_merchant ON payments (merchant_id, id);
CREATE INDEX payments_user ON payments (user_id, id);
CREATE INDEX payments_day ON payments (merchant_id, business_day);
CREATE INDEX payments_holds ON payments (hold_expires_at) WHERE status = 'requires_capture';

CREATE TABLE refunds (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments(id),
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    amount BIGINT NOT NULL,
    fee_returned BIGINT NOT NULL,
    currency TEXT NOT NULL,
    reason TEXT,
    status TEXT NOT NULL,
    business_day TEXT NOT NULL,
    staff_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX refunds_payment ON refunds (payment_id);
CREATE INDEX refunds_day ON refunds (merchant_id, business_day);

-- Wallet top-ups and withdrawals through a payment provider (the sandbox bank by default).
CREATE TABLE wallet_movements (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL CHECK (kind IN ('top_up', 'withdrawal')),
    provider TEXT NOT NULL,
    provider_ref TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX wallet_movements_user ON wallet_movements (user_id, id);
CREATE UNIQUE INDEX wallet_movements_provider ON wallet_movements (provider, provider_ref);

-- The outbox: every event is written in the transaction of the change it reports.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    merchant_id TEXT REFERENCES merchants(id),
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_merchant ON events (merchant_id, id);

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id),
    event_id TEXT NOT NULL REFERENCES events(id),
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (endpoint_id, event_id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id),
    attempt BIGINT NOT NULL,
    status BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
