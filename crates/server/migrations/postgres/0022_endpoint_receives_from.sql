-- From when an endpoint receives events: its creation (NULL), or the moment it was last enabled
-- again. An event that happened while it was disabled is never delivered to it, even when the
-- fan-out takes that event only after the endpoint was enabled.
ALTER TABLE webhook_endpoints ADD COLUMN receives_from BIGINT;
