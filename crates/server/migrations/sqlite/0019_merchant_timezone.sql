-- The time zone a merchant's days are counted in (its daily settlement), set by its owner. When
-- unset, the merchant's first store's zone is used, as before.
ALTER TABLE merchants ADD COLUMN timezone TEXT;
