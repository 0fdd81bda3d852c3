-- Member programs, stored-value member cards and their movements. A card's money is in two
-- ledger accounts (`card:<crd>:<cur>` for what the consumer paid in, `card_bonus:<crd>:<cur>`
-- for the merchant's top-up bonus), created in the same transaction as the card row; the rows
-- here are the business side (program rules, points, tier, history). Amounts in minor units,
-- times in UTC microseconds, rule lists as JSON text.

CREATE TABLE member_programs (
    merchant_id TEXT PRIMARY KEY REFERENCES merchants(id),
    currency TEXT NOT NULL,
    -- [{"min_top_up": 10000, "bonus": 1000}, ...] ascending by min_top_up
    top_up_bonuses TEXT NOT NULL,
    -- points per yuan (100 minor units) paid from a card's paid part
    points_per_yuan BIGINT NOT NULL,
    -- [{"name": "Gold", "min_spend": 100000, "percent_off": 5}, ...] ascending by min_spend
    tiers TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE member_cards (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'closed')),
    points BIGINT NOT NULL,
    tier TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    closed_at BIGINT,
    -- one card per consumer per merchant (joining again returns, or reopens, the same card)
    UNIQUE (user_id, merchant_id)
);
CREATE INDEX member_cards_merchant ON member_cards (merchant_id, id);

-- Every change of a card's balances, points or tier spend, written by the sequencer in the same
-- batch as the ledger transfers it describes. `paid` and `bonus` are signed changes of the two
-- balances; `spend` counts toward the tier (payments add, refunds subtract).
CREATE TABLE member_card_movements (
    id TEXT PRIMARY KEY,
    card_id TEXT NOT NULL REFERENCES member_cards(id),
    merchant_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('top_up', 'payment', 'refund', 'close')),
    paid BIGINT NOT NULL,
    bonus BIGINT NOT NULL,
    points BIGINT NOT NULL,
    spend BIGINT NOT NULL,
    payment_id TEXT,
    reference TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX member_card_movements_card ON member_card_movements (card_id, id);
CREATE INDEX member_card_movements_payment ON member_card_movements (payment_id);
