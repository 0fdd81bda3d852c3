-- Foundation (PostgreSQL): consumers, accounts (staff, riders, operators), sessions, one-time codes, the SMS
-- outbox, merchants, API keys, stores, tables, idempotency keys, settings.
-- Portable column types: ids TEXT, money and timestamps (UTC microseconds) BIGINT, JSON as TEXT.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    phone TEXT UNIQUE,
    guest BOOLEAN NOT NULL,
    merged_into TEXT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE merchants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('trading', 'listing')),
    verified BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('staff', 'rider', 'operator')),
    merchant_id TEXT REFERENCES merchants(id),
    role TEXT CHECK (role IN ('owner', 'manager', 'cashier')),
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX accounts_merchant ON accounts (merchant_id, id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    merchant_id TEXT,
    role TEXT,
    guest BOOLEAN NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_subject ON sessions (subject_id);

CREATE TABLE otp_codes (
    id TEXT PRIMARY KEY,
    phone TEXT NOT NULL,
    ip TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX otp_codes_phone ON otp_codes (phone, created_at);
CREATE INDEX otp_codes_ip ON otp_codes (ip, created_at);

CREATE TABLE sms_outbox (
    id TEXT PRIMARY KEY,
    phone TEXT NOT NULL,
    body TEXT NOT NULL,
    code TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX sms_outbox_phone ON sms_outbox (phone, id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    secret_last4 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id, id);

CREATE TABLE stores (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lng DOUBLE PRECISION NOT NULL,
    timezone TEXT NOT NULL,
    opening_hours TEXT NOT NULL,
    delivery_radius_m BIGINT NOT NULL,
    fence_radius_m BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX stores_merchant ON stores (merchant_id, id);
CREATE INDEX stores_lat_lng ON stores (lat, lng);

CREATE TABLE store_tables (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    store_id TEXT NOT NULL REFERENCES stores(id),
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (store_id, label)
);

CREATE TABLE store_visits (
    user_id TEXT NOT NULL REFERENCES users(id),
    store_id TEXT NOT NULL REFERENCES stores(id),
    visited_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, store_id)
);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
