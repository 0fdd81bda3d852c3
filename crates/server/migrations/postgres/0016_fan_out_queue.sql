-- Events waiting for the webhook fan-out are listed in a narrow queue of their own, filled by a
-- trigger as events are inserted (whoever writes them, one statement at a time) and emptied by
-- the fan-out. The event rows themselves are written once and never rewritten: marking each
-- event done rewrote its whole row (the order or payment it carries) a second time.
-- No event may be committed between the copy of those waiting and the trigger taking over
-- (another node may be running): inserts wait for this migration.
LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE events_to_fan_out (
    id TEXT PRIMARY KEY
);
INSERT INTO events_to_fan_out (id) SELECT id FROM events WHERE fanned_out_at IS NULL;
CREATE FUNCTION events_queue_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events_to_fan_out (id) SELECT id FROM inserted_events;
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_queue_fan_out AFTER INSERT ON events
    REFERENCING NEW TABLE AS inserted_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_queue_fan_out();
DROP INDEX events_awaiting_fan_out;
ALTER TABLE events DROP COLUMN fanned_out_at;
