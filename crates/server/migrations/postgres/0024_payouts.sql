-- A merchant's payout to its bank is recorded as pending, with a hold on its available balance,
-- before the payment provider is asked to make it; the provider's answer posts the hold or
-- releases it (see 0023 for wallet movements).
CREATE TABLE payouts (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    provider TEXT NOT NULL,
    provider_ref TEXT,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    hold_id TEXT NOT NULL,
    request_key TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX payouts_merchant ON payouts (merchant_id, id);
CREATE INDEX payouts_pending ON payouts (created_at) WHERE status = 'pending';
CREATE INDEX payouts_request ON payouts (merchant_id, request_key) WHERE request_key IS NOT NULL;
