-- Codes: printed (merchant-presented) codes resolved by the server, pay codes, and the record of
-- every signed consumer-presented token issued, for single use and store checks.

CREATE TABLE qr_codes (
    id TEXT PRIMARY KEY,
    short TEXT NOT NULL UNIQUE,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    store_id TEXT NOT NULL REFERENCES stores(id),
    table_id TEXT REFERENCES store_tables(id),
    product_id TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('store_pay', 'table', 'product', 'campaign', 'wifi')),
    target TEXT,
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    replaced_by TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX qr_codes_merchant ON qr_codes (merchant_id, id);
CREATE INDEX qr_codes_store ON qr_codes (store_id, kind, status);

CREATE TABLE pay_codes (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    source TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    used_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX pay_codes_user ON pay_codes (user_id, created_at);

CREATE TABLE issued_tokens (
    nonce TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    merchant_id TEXT REFERENCES merchants(id),
    store_id TEXT REFERENCES stores(id),
    user_id TEXT REFERENCES users(id),
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    used_by TEXT,
    created_at BIGINT NOT NULL
);
