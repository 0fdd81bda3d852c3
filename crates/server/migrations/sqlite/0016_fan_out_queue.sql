-- Events waiting for the webhook fan-out are listed in a narrow queue of their own, filled by a
-- trigger as each event is inserted (whoever writes it) and emptied by the fan-out. The event
-- rows themselves are written once and never rewritten: marking each event done rewrote its
-- whole row (the order or payment it carries) a second time.
CREATE TABLE events_to_fan_out (
    id TEXT PRIMARY KEY
) WITHOUT ROWID;
INSERT INTO events_to_fan_out (id) SELECT id FROM events WHERE fanned_out_at IS NULL;
CREATE TRIGGER events_queue_fan_out AFTER INSERT ON events
BEGIN
    INSERT INTO events_to_fan_out (id) VALUES (NEW.id);
END;
DROP INDEX events_awaiting_fan_out;
ALTER TABLE events DROP COLUMN fanned_out_at;
