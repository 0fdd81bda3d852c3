-- Webhook fan-out: each outbox event is marked once its deliveries exist (in the same
-- transaction as the delivery rows), so the dispatcher finds the events still to fan out
-- through a small partial index, whatever order concurrent writers committed them in.

ALTER TABLE events ADD COLUMN fanned_out_at BIGINT;
-- No endpoint existed before this migration, so every earlier event is already fanned out.
UPDATE events SET fanned_out_at = created_at;
CREATE INDEX events_awaiting_fan_out ON events (id) WHERE fanned_out_at IS NULL;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
