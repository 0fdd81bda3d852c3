-- Orders: one model for four channels (dine-in at a table, pickup, delivery, scan-and-go).
-- An order's lines, discounts and delivery address are JSON text on its row: the order is read
-- and written whole (by the sequencer, which owns every change of an order), and one row per
-- order keeps a batch of orders to one keyed write. Amounts in minor units, times in UTC
-- microseconds.

CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    store_id TEXT NOT NULL REFERENCES stores(id),
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    table_id TEXT,
    -- The table while this is its open order (cleared when paid, completed or canceled): one
    -- open order per table, however many phones add to it at once.
    active_table TEXT UNIQUE,
    user_id TEXT,
    currency TEXT NOT NULL,
    items TEXT NOT NULL,
    discounts TEXT NOT NULL,
    subtotal BIGINT NOT NULL,
    discount_total BIGINT NOT NULL,
    delivery_fee BIGINT NOT NULL,
    total BIGINT NOT NULL,
    amount_paid BIGINT NOT NULL,
    amount_refunded BIGINT NOT NULL,
    payments TEXT NOT NULL,
    delivery TEXT,
    pickup_at BIGINT,
    promised_at BIGINT,
    pickup_number TEXT,
    note TEXT,
    reserve_until BIGINT,
    cancel_reason TEXT,
    placed_at BIGINT,
    paid_at BIGINT,
    ready_at BIGINT,
    completed_at BIGINT,
    canceled_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX orders_store ON orders (store_id, created_at);
CREATE INDEX orders_user ON orders (user_id, id);
CREATE INDEX orders_reserve ON orders (reserve_until) WHERE reserve_until IS NOT NULL;

-- A store's ordering settings (absent: the defaults in the orders capability).
CREATE TABLE order_settings (
    store_id TEXT PRIMARY KEY REFERENCES stores(id),
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    delivery_fee BIGINT NOT NULL,
    min_order BIGINT NOT NULL,
    promise_minutes BIGINT,
    prep_minutes BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
