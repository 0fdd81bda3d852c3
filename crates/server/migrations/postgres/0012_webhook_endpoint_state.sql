-- Why and when a webhook endpoint was disabled, so a merchant can see it and enable it again.
-- disabled_reason: 'gone' (it answered 410 Gone). Both are NULL while the endpoint is enabled.
ALTER TABLE webhook_endpoints ADD COLUMN disabled_at BIGINT;
ALTER TABLE webhook_endpoints ADD COLUMN disabled_reason TEXT;
