-- no-transaction
-- On SQLite the webhook fan-out follows the outbox in the order it was committed, from a cursor,
-- instead of a queue filled by a trigger. SQLite commits one writer at a time and events are never
-- deleted, so a reader always sees every event up to some `seq` and none after it.
--
-- Why: the queue cost every batch of payments a trigger and a second insert per event, and the
-- fan-out's delete from it was a commit by another connection every fraction of a second, after
-- which the payments sequencer's connection had to drop its whole page cache. With a cursor the
-- fan-out writes only when an event has a delivery to make (and the cursor now and then).
--
-- `seq` is an INTEGER PRIMARY KEY, the table's own rowid, which VACUUM keeps. The table is rebuilt
-- for it, with foreign-key enforcement off (it can only be switched outside a transaction, hence
-- no-transaction above): webhook deliveries name events, and the old table is dropped before the
-- new one takes its name. Every row is copied in its old order, so every reference still holds.
-- Run again after a crash before sqlx records it, it rebuilds once more and keeps the cursor.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
DROP TRIGGER IF EXISTS events_queue_fan_out;
-- Events still queued when this runs are fanned out from the cursor: it starts just before the
-- first of them (or after the last event when none waits).
CREATE TABLE IF NOT EXISTS events_to_fan_out (id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fan_out_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    event_seq BIGINT NOT NULL
);
INSERT OR IGNORE INTO fan_out_cursor (id, event_seq) VALUES (1, COALESCE(
    (SELECT MIN(e.rowid) - 1 FROM events e JOIN events_to_fan_out q ON q.id = e.id),
    (SELECT MAX(rowid) FROM events),
    0));
DROP TABLE events_to_fan_out;
DROP TABLE IF EXISTS events_in_order;
CREATE TABLE events_in_order (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    merchant_id TEXT REFERENCES merchants(id),
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO events_in_order (seq, id, merchant_id, type, data, created_at)
    SELECT rowid, id, merchant_id, type, data, created_at FROM events ORDER BY rowid;
DROP TABLE events;
ALTER TABLE events_in_order RENAME TO events;
COMMIT;
PRAGMA foreign_keys = ON;
