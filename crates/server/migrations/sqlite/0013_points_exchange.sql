-- Points exchange (积分兑换): a coupon template may carry a price in member points. Such a
-- template is not claimed free: a member of its merchant exchanges that many points from their
-- card for one coupon, recorded as a card movement of kind `exchange` (points negative, the
-- coupon as its reference).

ALTER TABLE coupon_templates ADD COLUMN points_price BIGINT CHECK (points_price IS NULL OR points_price > 0);

-- SQLite cannot change a CHECK constraint in place: the movements table is rebuilt with the new
-- kind allowed (nothing references it).
CREATE TABLE member_card_movements_new (
    id TEXT PRIMARY KEY,
    card_id TEXT NOT NULL REFERENCES member_cards(id),
    merchant_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('top_up', 'payment', 'refund', 'close', 'exchange')),
    paid BIGINT NOT NULL,
    bonus BIGINT NOT NULL,
    points BIGINT NOT NULL,
    spend BIGINT NOT NULL,
    payment_id TEXT,
    reference TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO member_card_movements_new (id, card_id, merchant_id, kind, paid, bonus, points, spend, payment_id, reference, created_at)
    SELECT id, card_id, merchant_id, kind, paid, bonus, points, spend, payment_id, reference, created_at FROM member_card_movements;
DROP TABLE member_card_movements;
ALTER TABLE member_card_movements_new RENAME TO member_card_movements;
CREATE INDEX member_card_movements_card ON member_card_movements (card_id, id);
CREATE INDEX member_card_movements_payment ON member_card_movements (payment_id);
