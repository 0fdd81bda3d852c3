-- The key that signed each issued token, so a code a consumer shows (a pickup code, an exit
-- pass) can be rebuilt byte for byte from its row instead of signed anew at every view: the same
-- QR on every reload until it is used or expires. Tokens issued before this have no key_id and
-- are signed anew once when next needed.
ALTER TABLE issued_tokens ADD COLUMN key_id BIGINT;
-- An order's codes are found by the order's id.
CREATE INDEX issued_tokens_subject ON issued_tokens (subject, kind, created_at);
