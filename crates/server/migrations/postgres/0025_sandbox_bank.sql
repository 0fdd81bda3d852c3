-- The sandbox bank's own statement: every charge and payout it made, kept in the database rather
-- than in the process, so that it outlives a restart and is one record for every node, as a real
-- bank's is. o2o settles a movement it did not see through from this record (see 0023); it is
-- written apart from o2o's own records, as a bank's would be. A charge is made once per o2o
-- reference (WeChat Pay's `out_trade_no`) and once per idempotency key while the key is kept.
CREATE TABLE sandbox_charges (
    provider_ref TEXT PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    direction TEXT NOT NULL,
    status TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX sandbox_charges_account ON sandbox_charges (account, reference);
