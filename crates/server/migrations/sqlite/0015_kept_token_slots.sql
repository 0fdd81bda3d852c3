-- The one code an order shows (its pickup code, its exit pass) holds the order's slot:
-- `slot` is `<kind>:<order id>` on the token that is the order's current code and NULL on every
-- other token. The unique index lets two requests racing to issue an order's first code (or to
-- replace a used or expired one) insert only one: the loser's insert does nothing and it shows
-- the winner's code. A replaced code gives up the slot in the transaction that takes it.
ALTER TABLE issued_tokens ADD COLUMN slot TEXT;
CREATE UNIQUE INDEX issued_tokens_slot ON issued_tokens (slot);
-- The newest code of each order issued so far holds its order's slot.
UPDATE issued_tokens SET slot = kind || ':' || subject
WHERE kind IN ('pickup', 'exit_pass')
  AND nonce = (
    SELECT t.nonce FROM issued_tokens t
    WHERE t.kind = issued_tokens.kind AND t.subject = issued_tokens.subject
    ORDER BY t.created_at DESC, t.nonce DESC LIMIT 1
  );
