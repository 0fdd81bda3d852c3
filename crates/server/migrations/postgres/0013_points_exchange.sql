-- Points exchange (积分兑换): a coupon template may carry a price in member points. Such a
-- template is not claimed free: a member of its merchant exchanges that many points from their
-- card for one coupon, recorded as a card movement of kind `exchange` (points negative, the
-- coupon as its reference).

ALTER TABLE coupon_templates ADD COLUMN points_price BIGINT CHECK (points_price IS NULL OR points_price > 0);

ALTER TABLE member_card_movements DROP CONSTRAINT member_card_movements_kind_check;
ALTER TABLE member_card_movements ADD CONSTRAINT member_card_movements_kind_check
    CHECK (kind IN ('top_up', 'payment', 'refund', 'close', 'exchange'));
