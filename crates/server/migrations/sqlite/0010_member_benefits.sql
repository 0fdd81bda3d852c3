-- Member benefits: a tier's percent off applied to card payments (what it took off, and the
-- tier, kept on the payment), the birthday a consumer gives (month-day, `MM-DD`), and the coupon
-- a member program gives on a member's birthday. A tier's upgrade coupon is a field of the
-- program's tiers JSON.

ALTER TABLE payments ADD COLUMN member_discount BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN member_tier TEXT;
ALTER TABLE users ADD COLUMN birthday TEXT;
CREATE INDEX users_birthday ON users (birthday);
ALTER TABLE member_programs ADD COLUMN birthday_coupon_template_id TEXT;
