-- Followers, messages and the inbox (a merchant's "service window"), and free-WiFi login.
-- Portable column types: ids TEXT, timestamps (UTC microseconds) BIGINT, JSON as TEXT.

-- Who follows a merchant now. A follow exists only by the consumer's explicit consent; the
-- channel and time of that consent are kept with it. Unfollowing deletes the row (the consent
-- log below keeps the history). `id` (fol_) orders followers by when they followed.
CREATE TABLE followers (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    channel TEXT NOT NULL CHECK (channel IN ('page', 'wifi', 'campaign', 'api')),
    store_id TEXT REFERENCES stores(id),
    consented_at BIGINT NOT NULL,
    UNIQUE (merchant_id, user_id)
);
CREATE INDEX followers_merchant ON followers (merchant_id, id);
CREATE INDEX followers_user ON followers (user_id, id);

-- Every follow and unfollow, append-only: the record of consent given and withdrawn.
CREATE TABLE follow_consents (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    action TEXT NOT NULL CHECK (action IN ('follow', 'unfollow')),
    channel TEXT NOT NULL,
    store_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX follow_consents_user ON follow_consents (user_id, merchant_id, id);

-- Consumers who muted a merchant: nothing from it reaches their inbox (follow or not).
CREATE TABLE merchant_mutes (
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, user_id)
);

-- A merchant's message to an audience. Delivery is resumable: `audience_at` fixes who the
-- audience is when sending starts, `delivered_through` is the last follower id delivered to, and
-- `delivered` counts inbox rows written, all advanced in the transaction that writes a chunk.
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    audience TEXT NOT NULL,
    coupon_template_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent')),
    recipients BIGINT,
    delivered BIGINT NOT NULL,
    audience_at BIGINT,
    delivered_through TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX messages_merchant ON messages (merchant_id, id);
CREATE INDEX messages_merchant_created ON messages (merchant_id, created_at);
CREATE INDEX messages_unsent ON messages (id) WHERE status <> 'sent';

-- One message in one consumer's inbox. The id is `inb_` + the message id's body + the user
-- id's body: it sorts by message (newest first is id order) and a chunk written twice (after a
-- restart) makes no second row.
CREATE TABLE inbox_items (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    message_id TEXT NOT NULL REFERENCES messages(id),
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    created_at BIGINT NOT NULL,
    read_at BIGINT
);
CREATE INDEX inbox_items_user ON inbox_items (user_id, id);
CREATE INDEX inbox_items_unread ON inbox_items (user_id) WHERE read_at IS NULL;

-- A store's WiFi key: its router authenticates to the grant check with it. Stored hashed;
-- rotating replaces it. `auth_url` is where the login page sends the client back to the router.
CREATE TABLE wifi_keys (
    store_id TEXT PRIMARY KEY REFERENCES stores(id),
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    secret_hash TEXT NOT NULL UNIQUE,
    secret_last4 TEXT NOT NULL,
    auth_url TEXT,
    created_at BIGINT NOT NULL
);

-- Internet access granted to a consumer's device at a store, until `expires_at`.
CREATE TABLE wifi_grants (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    store_id TEXT NOT NULL REFERENCES stores(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    client_mac TEXT,
    client_ip TEXT,
    gateway_id TEXT,
    tok_hash TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX wifi_grants_device ON wifi_grants (store_id, client_mac, expires_at);
