-- A wallet movement is recorded before the provider is asked to make it, as `pending`: a
-- withdrawal holds its money in the ledger first (`hold_id`, the pending transfer), so that the
-- bank never pays out what the wallet does not hold, and a movement the server did not see
-- through (a crash between asking the provider and recording its answer) is found again and
-- settled from the provider's own record. Its `provider_ref` is known only once the provider has
-- answered, and a movement the provider did not make (`failed`) has none. `request_key` is the key
-- it was asked of the provider under: a retry of a request cut off midway finds it by that.
ALTER TABLE wallet_movements ALTER COLUMN provider_ref DROP NOT NULL;
ALTER TABLE wallet_movements ADD COLUMN hold_id TEXT;
ALTER TABLE wallet_movements ADD COLUMN request_key TEXT;
ALTER TABLE wallet_movements ADD CONSTRAINT wallet_movements_status
    CHECK (status IN ('pending', 'succeeded', 'failed'));
CREATE INDEX wallet_movements_pending ON wallet_movements (created_at) WHERE status = 'pending';
CREATE INDEX wallet_movements_request ON wallet_movements (user_id, request_key)
    WHERE request_key IS NOT NULL;
