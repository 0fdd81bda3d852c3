-- Card coupons: templates a merchant creates (rules as columns, store and channel lists as JSON
-- text, `issued` counted by the sequencer so a flash claim never issues more than the stock),
-- the coupons consumers claimed, and the coupon a payment used.

CREATE TABLE coupon_templates (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount_off BIGINT,
    percent_off BIGINT,
    max_discount BIGINT,
    product_id TEXT,
    min_spend BIGINT NOT NULL,
    currency TEXT NOT NULL,
    store_ids TEXT NOT NULL,
    channels TEXT NOT NULL,
    claim_starts_at BIGINT NOT NULL,
    claim_ends_at BIGINT,
    use_starts_at BIGINT,
    use_ends_at BIGINT,
    valid_days_after_claim BIGINT,
    total_stock BIGINT NOT NULL,
    issued BIGINT NOT NULL,
    per_consumer_limit BIGINT NOT NULL,
    audience TEXT NOT NULL,
    stackable BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX coupon_templates_merchant ON coupon_templates (merchant_id, id);

CREATE TABLE coupons (
    id TEXT PRIMARY KEY,
    template_id TEXT NOT NULL REFERENCES coupon_templates(id),
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_until BIGINT,
    claimed_via TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    used_at BIGINT,
    payment_id TEXT,
    order_id TEXT,
    discount BIGINT NOT NULL
);
CREATE INDEX coupons_user ON coupons (user_id, id);
CREATE INDEX coupons_template_user ON coupons (template_id, user_id);

ALTER TABLE payments ADD COLUMN coupon_id TEXT;
ALTER TABLE payments ADD COLUMN discount BIGINT NOT NULL DEFAULT 0;
